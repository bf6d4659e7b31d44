import { RegistryError } from '../errors.js';
import { MAX_MANIFEST_BYTES, parseManifest } from '../manifest.js';
import { checkTagRemoval, immutableGuard } from '../policy/immutable.js';
import { quotaGuard } from '../policy/quota.js';
import { checkPullSignature, checkPushSignature } from '../policy/signature-enforce.js';
import { isTag, parseDigest, parseReference, type Digest } from '../reference.js';
import type { StoredManifest } from '../storage/store.js';
import { deleteEvents, pullEvent, pushEvents } from '../events/emit.js';
import { location, readBody, send, sendJson, type Ctx } from './context.js';

function accepted(header: string | undefined): string[] | undefined {
  if (!header) return undefined;
  const types = header
    .split(',')
    .map((t) => t.split(';')[0]?.trim() ?? '')
    .filter(Boolean);
  if (types.length === 0 || types.includes('*/*')) return undefined;
  return types;
}

/**
 * Content negotiation: a stored manifest is served as is, except that a client which accepts neither index
 * type gets an index's linux/amd64 image (what registry:2 does for old clients), if it accepts that one.
 */
async function negotiate(ctx: Ctx, name: string, m: StoredManifest): Promise<StoredManifest> {
  const types = accepted(ctx.req.headers.accept);
  if (!types || types.includes(m.mediaType) || !m.info.isIndex) return m;
  const child = m.info.children.find(
    (c) => c.platform?.os === 'linux' && c.platform.architecture === 'amd64' && types.includes(c.mediaType),
  );
  if (!child) return m;
  try {
    const ref = { digest: parseDigest(child.digest) };
    return await (ctx.proxy?.owns(name) ? ctx.proxy.manifest(ctx, name, ref) : ctx.store.manifests.get(name, ref));
  } catch {
    return m;
  }
}

/** end-3: GET / HEAD /v2/<name>/manifests/<reference> */
export async function getManifest(ctx: Ctx): Promise<void> {
  const name = ctx.params.name as string;
  const ref = parseReference(ctx.params.reference as string);
  const stored = await (ctx.proxy?.owns(name)
    ? ctx.proxy.manifest(ctx, name, ref)
    : ctx.store.manifests.get(name, ref));
  if ('tag' in ref) await checkPullSignature(ctx, name, ref.tag, stored.digest);
  const m = await negotiate(ctx, name, stored);
  // A GET is a pull (retention's keepPulledWithin); a HEAD only checks. Batched by the store: no write here.
  if (ctx.req.method === 'GET') {
    ctx.store.index.noteManifestPull(name, stored.digest);
    if (m.digest !== stored.digest) ctx.store.index.noteManifestPull(name, m.digest);
    // Only when an endpoint asks for pulls (the outbox keeps no other), recorded before the answer.
    if (ctx.store.events?.active)
      await ctx.store.events.record([pullEvent(ctx, name, 'tag' in ref ? ref.tag : undefined, m)]);
  }
  send(
    ctx,
    200,
    {
      'Content-Type': m.mediaType,
      'Docker-Content-Digest': m.digest,
      ETag: `"${m.digest}"`,
      'Content-Length': m.body.length,
    },
    m.body,
  );
}

/** end-7: PUT /v2/<name>/manifests/<reference>; by digest, each `?tag=` also points that tag at it (listed in `OCI-Tag`). */
export async function putManifest(ctx: Ctx): Promise<void> {
  const name = ctx.params.name as string;
  const ref = parseReference(ctx.params.reference as string);
  const body = await readBody(
    ctx.req,
    MAX_MANIFEST_BYTES,
    () => new RegistryError('MANIFEST_TOO_BIG', { limit: MAX_MANIFEST_BYTES }),
  );
  const extraTags = 'digest' in ref ? ctx.url.searchParams.getAll('tag') : [];
  for (const tag of extraTags) if (!isTag(tag)) throw new RegistryError('TAG_INVALID', { tag });
  const setTags = 'tag' in ref ? [ref.tag, ...extraTags] : extraTags;
  if (setTags.length > 0)
    await checkPushSignature(ctx, name, setTags, body, 'digest' in ref ? ref.digest.value : undefined);
  const type = ctx.req.headers['content-type'];
  const policies = ctx.policies?.current;
  const immutable = policies && immutableGuard(policies, ctx.store.index, name);
  const quota = policies && quotaGuard(policies, ctx.store.index, name, body, () => parseManifest(body, type));
  const guard =
    immutable && quota
      ? async (tags: readonly string[], digest: Digest) => {
          await immutable(tags, digest);
          await quota(tags, digest);
        }
      : (immutable ?? quota);
  const put = () => ctx.store.manifests.put(name, ref, body, type, extraTags, { guard });
  const outbox = ctx.store.events?.active ? ctx.store.events : undefined;
  const { digest, info } = outbox
    ? await outbox.withEvents(await pushEvents(ctx, name, ref, body, type, extraTags), put)
    : await put();
  const headers: Record<string, string> = {
    Location: location(ctx.req, `/v2/${name}/manifests/${digest.value}`),
    'Docker-Content-Digest': digest.value,
  };
  if (info.subject) headers['OCI-Subject'] = info.subject.digest;
  if (extraTags.length > 0) headers['OCI-Tag'] = [...new Set(extraTags)].join(', ');
  send(ctx, 201, headers);
}

/**
 * end-9: DELETE /v2/<name>/manifests/<reference>
 * By tag: removes only that tag. By digest: removes the manifest revision and every tag pointing at it; the
 * removed tags are listed in the `OCI-Deleted-Tags` header (comma-separated) and the JSON body `{ deletedTags }`.
 */
export async function deleteManifest(ctx: Ctx): Promise<void> {
  const name = ctx.params.name as string;
  const ref = parseReference(ctx.params.reference as string);
  const policies = ctx.policies?.current;
  if (policies && policies.immutableTags.length > 0) {
    const tags = 'tag' in ref ? [ref.tag] : await tagsAt(ctx, name, ref.digest.value);
    if ('digest' in ref || (await ctx.store.index.tagTarget(name, ref.tag)) !== undefined)
      checkTagRemoval(policies, ctx.req, ctx.isAdmin ?? false, name, tags);
  }
  const outbox = ctx.store.events?.active ? ctx.store.events : undefined;
  if ('tag' in ref) {
    const target = outbox && (await ctx.store.index.tagTarget(name, ref.tag));
    const remove = () => ctx.store.tags.delete(name, ref.tag);
    await (outbox && target ? outbox.withEvents(deleteEvents(ctx, name, target, [ref.tag], false), remove) : remove());
    sendJson(ctx, 202, { deletedTags: [ref.tag] }, { 'OCI-Deleted-Tags': ref.tag });
    return;
  }
  const remove = () => ctx.store.manifests.delete(name, ref.digest);
  const events = outbox && deleteEvents(ctx, name, ref.digest.value, await tagsAt(ctx, name, ref.digest.value), true);
  const tags = await (outbox && events ? outbox.withEvents(events, remove) : remove());
  sendJson(
    ctx,
    202,
    { deletedTags: tags },
    { 'OCI-Deleted-Tags': tags.join(','), 'Docker-Content-Digest': ref.digest.value },
  );
}

async function tagsAt(ctx: Ctx, name: string, digest: string): Promise<string[]> {
  const record = await ctx.store.index.repository(name);
  return [...(record?.tags ?? [])].filter(([, d]) => d === digest).map(([t]) => t);
}
