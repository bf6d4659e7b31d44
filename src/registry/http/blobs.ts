import { RegistryError } from '../errors.js';
import { parseDigest, type Digest } from '../reference.js';
import { blobDeleteEvent } from '../events/emit.js';
import { send, type Ctx } from './context.js';

/** Parses a single `bytes=` range against `size`; undefined for "whole blob", throws RANGE_INVALID when unsatisfiable. */
export function parseByteRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  const unsatisfiable = () =>
    new RegistryError('RANGE_INVALID', { range: header, size }, { headers: { 'Content-Range': `bytes */${size}` } });
  if (!m || (m[1] === '' && m[2] === '')) throw unsatisfiable();
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) throw unsatisfiable();
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || end < start) throw unsatisfiable();
  return { start, end };
}

/** end-2: GET / HEAD /v2/<name>/blobs/<digest> */
export async function getBlob(ctx: Ctx): Promise<void> {
  const name = ctx.params.name as string;
  const digest = parseDigest(ctx.params.digest as string);
  let info = await ctx.store.linked.stat(name, digest);
  if (!info && ctx.proxy?.owns(name)) {
    if (!(await ctx.proxy.serveBlob(ctx, name, digest))) return;
    info = await ctx.store.linked.stat(name, digest);
  }
  if (!info) throw new RegistryError('BLOB_UNKNOWN', { digest: digest.value });
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/octet-stream',
    'Docker-Content-Digest': digest.value,
    ETag: `"${digest.value}"`,
    'Accept-Ranges': 'bytes',
    'Cache-Control': 'max-age=31536000',
  };
  const range = info.size > 0 ? parseByteRange(ctx.req.headers.range, info.size) : undefined;
  if (ctx.req.method === 'HEAD') {
    send(ctx, 200, { ...headers, 'Content-Length': info.size });
    return;
  }
  if (info.size === 0) {
    send(ctx, 200, { ...headers, 'Content-Length': 0 });
    return;
  }
  // The storage may serve the bytes itself (S3 with redirects on): the client follows with its Range header.
  const location = await ctx.store.blobs.redirectURL(digest);
  if (location !== undefined) {
    send(ctx, 307, { Location: location, 'Docker-Content-Digest': digest.value, 'Cache-Control': 'no-store' });
    return;
  }
  if (range) {
    await sendBlobBytes(ctx, digest, range, 206, {
      ...headers,
      'Content-Length': range.end - range.start + 1,
      'Content-Range': `bytes ${range.start}-${range.end}/${info.size}`,
    });
    return;
  }
  await sendBlobBytes(ctx, digest, { start: 0, end: info.size - 1 }, 200, { ...headers, 'Content-Length': info.size });
}

/** Sends the status and headers, then bytes `range` of the blob, counted in the request's bytes out. */
async function sendBlobBytes(
  ctx: Ctx,
  digest: Digest,
  range: { start: number; end: number },
  status: number,
  headers: Record<string, string | number>,
): Promise<void> {
  const { res } = ctx;
  res.statusCode = status;
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  try {
    await ctx.store.blobs.copy(digest, range, res, (n) => (ctx.state.bytesOut += n));
  } catch (err) {
    // Nothing sent yet (the file could not be opened): the error answer must not carry the blob's headers.
    if (!res.headersSent) for (const k of Object.keys(headers)) res.removeHeader(k);
    throw err;
  }
  res.end();
}

/** end-10: DELETE /v2/<name>/blobs/<digest> — unlinks the blob from the repository; GC reclaims the bytes. */
export async function deleteBlob(ctx: Ctx): Promise<void> {
  const name = ctx.params.name as string;
  const digest = parseDigest(ctx.params.digest as string);
  const unlink = async (): Promise<void> => {
    if (!(await ctx.store.linked.unlink(name, digest)))
      throw new RegistryError('BLOB_UNKNOWN', { digest: digest.value });
  };
  const outbox = ctx.store.events?.active ? ctx.store.events : undefined;
  await (outbox ? outbox.withEvents([blobDeleteEvent(ctx, name, digest.value)], unlink) : unlink());
  send(ctx, 202, { 'Docker-Content-Digest': digest.value });
}
