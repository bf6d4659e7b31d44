import { RegistryError } from '../errors.js';
import { parseDigest } from '../reference.js';
import { send, sendStream, type Ctx } from './context.js';

/** Parses a single `bytes=` range against `size`; undefined for "whole blob", throws RANGE_INVALID when unsatisfiable. */
export function parseByteRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  const unsatisfiable = () => new RegistryError('RANGE_INVALID', { range: header, size }, { headers: { 'Content-Range': `bytes */${size}` } });
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
  const info = await ctx.store.statBlob(name, digest);
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
  if (range) {
    const body = await ctx.store.openBlob(digest, range);
    await sendStream(ctx, 206, { ...headers, 'Content-Length': range.end - range.start + 1, 'Content-Range': `bytes ${range.start}-${range.end}/${info.size}` }, body);
    return;
  }
  const body = await ctx.store.openBlob(digest);
  await sendStream(ctx, 200, { ...headers, 'Content-Length': info.size }, body);
}

/** end-10: DELETE /v2/<name>/blobs/<digest> — unlinks the blob from the repository; GC reclaims the bytes. */
export async function deleteBlob(ctx: Ctx): Promise<void> {
  const name = ctx.params.name as string;
  const digest = parseDigest(ctx.params.digest as string);
  if (!(await ctx.store.unlinkBlob(name, digest))) throw new RegistryError('BLOB_UNKNOWN', { digest: digest.value });
  send(ctx, 202, { 'Docker-Content-Digest': digest.value });
}
