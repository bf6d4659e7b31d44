import { quotaRuleFor } from '../../common/policies.js';
import { RegistryError } from '../errors.js';
import { checkQuota } from '../policy/quota.js';
import { assertName, parseDigest, type Digest } from '../reference.js';
import { declaredLength, hasBody, location, query, send, type Ctx } from './context.js';

function uploadHeaders(ctx: Ctx, name: string, id: string, offset: number): Record<string, string | number> {
  return {
    Location: location(ctx.req, `/v2/${name}/blobs/uploads/${id}`),
    Range: `0-${Math.max(0, offset - 1)}`,
    'Docker-Upload-UUID': id,
  };
}

function blobCreated(ctx: Ctx, name: string, digest: string): void {
  send(ctx, 201, { Location: location(ctx.req, `/v2/${name}/blobs/${digest}`), 'Docker-Content-Digest': digest });
}

/** `Content-Range: <start>-<end>` (also accepts the `bytes <start>-<end>/<total>` form). */
export function parseContentRange(header: string | undefined): { start: number; end: number } | undefined {
  if (header === undefined) return undefined;
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(\d+|\*))?$/.exec(header.trim());
  if (!m) throw new RegistryError('RANGE_INVALID', { contentRange: header });
  const range = { start: Number(m[1]), end: Number(m[2]) };
  // A declared total smaller than the range itself is contradictory.
  if (m[3] !== undefined && m[3] !== '*' && Number(m[3]) <= range.end)
    throw new RegistryError('RANGE_INVALID', { contentRange: header });
  return range;
}

function checkLength(
  ctx: Ctx,
  range: { start: number; end: number } | undefined,
  id: string,
  offset: () => Promise<number>,
): Promise<void> | void {
  const len = ctx.req.headers['content-length'];
  if (range && len !== undefined && Number(len) !== range.end - range.start + 1) {
    return offset().then((o) => {
      throw new RegistryError(
        'RANGE_INVALID',
        { reason: 'Content-Length does not match Content-Range' },
        { headers: { Range: `0-${Math.max(0, o - 1)}`, 'Docker-Upload-UUID': id } },
      );
    });
  }
}

/**
 * Quotas (policy/quota.ts), before a byte is stored: when the request declares its Content-Length, the blob's size
 * is what the upload holds already plus that; refused if it would exceed the repository's quota (unless the blob
 * named, when it is named, is held already). Without a Content-Length the manifest PUT checks.
 */
async function checkUploadQuota(ctx: Ctx, name: string, digest: Digest | undefined, soFar: () => Promise<number>) {
  const policies = ctx.policies?.current;
  const len = ctx.req.headers['content-length'];
  if (!policies || len === undefined || !quotaRuleFor(policies, name)) return;
  const size = (await soFar()) + Number(len);
  if (digest) await checkQuota(policies, ctx.store.index, name, [{ digest: digest.value, size }]);
  else await checkQuota(policies, ctx.store.index, name, [], size);
}

/**
 * end-4a / end-4b / end-11: POST /v2/<name>/blobs/uploads/
 * `?digest=` uploads the body in one request; `?mount=&from=` links a blob from another repository (201) or
 * falls back to a new session (202); `?mount=` alone links any stored blob for users who may pull every
 * repository; otherwise starts a session.
 */
export async function startUpload(ctx: Ctx): Promise<void> {
  const name = ctx.params.name as string;
  const mount = query(ctx, 'mount');
  const from = query(ctx, 'from');
  if (mount !== undefined && from !== undefined) {
    const digest = parseDigest(mount);
    assertName(from);
    const mounted = await ctx.store.linked.mount(name, from, digest);
    if (mounted) {
      blobCreated(ctx, name, digest.value);
      return;
    }
  } else if (mount !== undefined && ctx.mountAnywhere) {
    const digest = parseDigest(mount);
    if (await ctx.store.linked.link(name, digest)) {
      blobCreated(ctx, name, digest.value);
      return;
    }
  }
  const digestParam = query(ctx, 'digest');
  if (digestParam !== undefined) {
    const digest = parseDigest(digestParam);
    await checkUploadQuota(ctx, name, digest, async () => 0);
    const body = hasBody(ctx.req) ? ctx.req : undefined;
    const length = body && declaredLength(ctx.req);
    if (body && length !== undefined && (await ctx.store.uploads.putWhole(name, digest, body, length))) {
      blobCreated(ctx, name, digest.value);
      return;
    }
    const id = await ctx.store.uploads.start(name);
    await ctx.store.uploads.complete(name, id, digest, body, undefined, length);
    blobCreated(ctx, name, digest.value);
    return;
  }
  if (hasBody(ctx.req)) ctx.req.resume();
  const id = await ctx.store.uploads.start(name);
  send(ctx, 202, uploadHeaders(ctx, name, id, 0));
}

/** end-5: PATCH /v2/<name>/blobs/uploads/<reference> — appends a chunk. */
export async function patchUpload(ctx: Ctx): Promise<void> {
  const name = ctx.params.name as string;
  const id = ctx.params.id as string;
  const range = parseContentRange(ctx.req.headers['content-range']);
  await checkLength(ctx, range, id, () => ctx.store.uploads.offset(name, id));
  await checkUploadQuota(ctx, name, undefined, () => ctx.store.uploads.offset(name, id));
  const offset = await ctx.store.uploads.append(name, id, ctx.req, range);
  send(ctx, 202, uploadHeaders(ctx, name, id, offset));
}

/** end-6: PUT /v2/<name>/blobs/uploads/<reference>?digest=<digest> — optional last chunk, then commit. */
export async function putUpload(ctx: Ctx): Promise<void> {
  const name = ctx.params.name as string;
  const id = ctx.params.id as string;
  const digestParam = query(ctx, 'digest');
  if (digestParam === undefined)
    throw new RegistryError('DIGEST_INVALID', { reason: 'digest query parameter missing' });
  const digest = parseDigest(digestParam);
  const range = parseContentRange(ctx.req.headers['content-range']);
  await checkLength(ctx, range, id, () => ctx.store.uploads.offset(name, id));
  await checkUploadQuota(ctx, name, digest, () => ctx.store.uploads.offset(name, id));
  const body = hasBody(ctx.req) ? ctx.req : undefined;
  await ctx.store.uploads.complete(name, id, digest, body, body ? range : undefined, body && declaredLength(ctx.req));
  blobCreated(ctx, name, digest.value);
}

/** end-13: GET /v2/<name>/blobs/uploads/<reference> — upload status. */
export async function uploadStatus(ctx: Ctx): Promise<void> {
  const name = ctx.params.name as string;
  const id = ctx.params.id as string;
  const offset = await ctx.store.uploads.offset(name, id);
  send(ctx, 204, uploadHeaders(ctx, name, id, offset));
}

/** DELETE /v2/<name>/blobs/uploads/<reference> — cancels an upload. */
export async function cancelUpload(ctx: Ctx): Promise<void> {
  await ctx.store.uploads.cancel(ctx.params.name as string, ctx.params.id as string);
  send(ctx, 204, {});
}
