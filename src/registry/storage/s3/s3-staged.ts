/**
 * Files that grow by appends on S3 (uploads in progress), continued by any process that shares the bucket.
 *
 * S3 objects cannot be appended to, and every multipart part but the last must be at least 5 MiB, while clients
 * send chunks of any size (often 1 MiB) across requests that may land on different replicas. So a growing file
 * at key K is kept in one of two shapes:
 *
 * - plain: K is an ordinary object holding the bytes (no multipart upload yet: fewer than `partSize` bytes were
 *   ever flushed, or the file was materialized);
 * - staged: full parts of `partSize` bytes sit in an open multipart upload on K, and K itself is a small object
 *   marked with the `regctl-staged` metadata whose body is the session (upload id, parts with ETags and sizes)
 *   as one JSON line followed by the tail: the bytes that do not fill a part yet (< partSize).
 *
 * A writer rewrites K once, at its end, with one PutObject: the session and the tail change together, so a
 * process that dies mid-write leaves the previous state whole (parts it uploaded past the session's list are
 * overwritten by the next writer under the same numbers, or aborted with the upload). Reading a staged file
 * "materializes" it first: the tail goes up as the last part and the upload is completed onto K, which turns K
 * into a plain object. Appending to a plain object of at least 5 MiB starts a new upload whose first parts are
 * server-side copies of it (UploadPartCopy), so nothing is downloaded.
 *
 * The writers that grow such files are in s3-writer.ts; this module holds the shapes and the calls on them.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type HeadObjectCommandOutput,
} from '@aws-sdk/client-s3';
import pMap from 'p-map';
import { metadataOf } from './s3-direct.js';
import {
  CONTENT_TYPE,
  MAX_COPY_SIZE,
  MAX_PARTS,
  MIN_PART_SIZE,
  copySource,
  isMissingKey,
  type S3Context,
} from './s3-context.js';

/** Metadata keys (sent as x-amz-meta-*; S3 returns them lower-cased). */
const META_STAGED = 'regctl-staged';
const META_SIZE = 'regctl-size';
const META_HEADER = 'regctl-header';

export interface Part {
  n: number;
  etag: string;
  size: number;
}

/** What a staged file's marker object holds before its tail. */
export interface Session {
  uploadId: string;
  parts: Part[];
}

export interface HeadInfo {
  size: number;
  modifiedAt: Date;
  staged: boolean;
}

export function headInfo(out: Pick<HeadObjectCommandOutput, 'ContentLength' | 'LastModified' | 'Metadata'>): HeadInfo {
  const staged = out.Metadata?.[META_STAGED] === '1';
  return {
    size: staged ? Number(out.Metadata?.[META_SIZE] ?? 0) : (out.ContentLength ?? 0),
    modifiedAt: out.LastModified ?? new Date(0),
    staged,
  };
}

export function isStagedMetadata(meta: Record<string, string> | undefined): boolean {
  return meta?.[META_STAGED] === '1';
}

/** HEAD of a key; undefined when absent. */
export async function head(ctx: S3Context, key: string): Promise<HeadInfo | undefined> {
  const direct = await ctx.direct.send('HEAD', key);
  if (direct?.status === 404) return undefined;
  if (direct?.status === 200) {
    const modified = direct.headers['last-modified'];
    return headInfo({
      ContentLength: Number(direct.headers['content-length'] ?? 0),
      LastModified: typeof modified === 'string' ? new Date(modified) : undefined,
      Metadata: metadataOf(direct.headers),
    });
  }
  try {
    return headInfo(await ctx.client.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key })));
  } catch (err) {
    if (isMissingKey(err)) return undefined;
    throw err;
  }
}

export async function getBytes(ctx: S3Context, key: string): Promise<{ body: Buffer; meta: Record<string, string> }> {
  const out = await ctx.client.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key }));
  const bytes = out.Body ? await out.Body.transformToByteArray() : new Uint8Array();
  return { body: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), meta: out.Metadata ?? {} };
}

/** Reads a staged marker: its session and its tail. */
export async function readSession(
  ctx: S3Context,
  key: string,
): Promise<{ session: Session; tail: Buffer } | undefined> {
  const { body, meta } = await getBytes(ctx, key);
  if (!isStagedMetadata(meta)) return undefined;
  const headerLength = Number(meta[META_HEADER]);
  const session = JSON.parse(body.subarray(0, headerLength).toString('utf8')) as Session;
  return { session, tail: body.subarray(headerLength) };
}

export async function writeSession(ctx: S3Context, key: string, session: Session, tail: Buffer): Promise<void> {
  const header = Buffer.from(JSON.stringify(session), 'utf8');
  const size = session.parts.reduce((n, p) => n + p.size, 0) + tail.length;
  await ctx.client.send(
    new PutObjectCommand({
      Bucket: ctx.bucket,
      Key: key,
      Body: Buffer.concat([header, tail]),
      ContentType: CONTENT_TYPE,
      Metadata: { [META_STAGED]: '1', [META_SIZE]: String(size), [META_HEADER]: String(header.length) },
    }),
  );
}

export async function createUpload(ctx: S3Context, key: string): Promise<string> {
  const out = await ctx.client.send(
    new CreateMultipartUploadCommand({ Bucket: ctx.bucket, Key: key, ContentType: CONTENT_TYPE }),
  );
  if (!out.UploadId) throw new Error(`S3 returned no upload id for ${key}`);
  return out.UploadId;
}

export async function uploadPart(
  ctx: S3Context,
  key: string,
  uploadId: string,
  n: number,
  body: Buffer,
): Promise<Part> {
  const out = await ctx.client.send(
    new UploadPartCommand({ Bucket: ctx.bucket, Key: key, UploadId: uploadId, PartNumber: n, Body: body }),
  );
  if (!out.ETag) throw new Error(`S3 returned no ETag for part ${n} of ${key}`);
  return { n, etag: out.ETag, size: body.length };
}

/**
 * Copies `size` bytes (at least 5 MiB) of `sourceKey` into an upload as parts numbered from `firstPart`: ranges of
 * `chunk` bytes, the remainder folded into the last range when it would be under 5 MiB, so every part can be
 * followed by more parts (S3 refuses a non-last part under 5 MiB) and none exceeds 5 GiB.
 */
export function copyRanges(size: number, chunkSize: number): Array<{ start: number; end: number }> {
  const chunk = Math.min(Math.max(chunkSize, MIN_PART_SIZE), MAX_COPY_SIZE - MIN_PART_SIZE);
  const ranges: Array<{ start: number; end: number }> = [];
  for (let start = 0; start < size; start += chunk) ranges.push({ start, end: Math.min(size, start + chunk) - 1 });
  const last = ranges[ranges.length - 1];
  const previous = ranges[ranges.length - 2];
  if (last && previous && last.end - last.start + 1 < MIN_PART_SIZE) {
    previous.end = last.end;
    ranges.pop();
  }
  return ranges;
}

/** The range per copied part: `chunkSize`, or larger when the parts from `firstPart` on would pass 10,000. */
export function copyChunk(size: number, chunkSize: number, firstPart = 1): number {
  return Math.max(chunkSize, Math.ceil(size / (MAX_PARTS - firstPart + 1)));
}

/** Copies ranges of `sourceKey` into an upload as parts numbered from `firstPart`, several at once, in order. */
export async function copyParts(
  ctx: S3Context,
  sourceKey: string,
  size: number,
  key: string,
  uploadId: string,
  firstPart = 1,
): Promise<Part[]> {
  return pMap(
    copyRanges(size, copyChunk(size, ctx.multipartCopyChunkSize, firstPart)).entries(),
    async ([i, { start, end }]): Promise<Part> => {
      const out = await ctx.client.send(
        new UploadPartCopyCommand({
          Bucket: ctx.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: firstPart + i,
          CopySource: copySource(ctx, sourceKey),
          CopySourceRange: `bytes=${start}-${end}`,
        }),
      );
      const etag = out.CopyPartResult?.ETag;
      if (!etag) throw new Error(`S3 returned no ETag for copied part ${firstPart + i} of ${key}`);
      return { n: firstPart + i, etag, size: end - start + 1 };
    },
    { concurrency: ctx.multipartCopyConcurrency },
  );
}

export async function completeUpload(ctx: S3Context, key: string, uploadId: string, parts: Part[]): Promise<void> {
  await ctx.client.send(
    new CompleteMultipartUploadCommand({
      Bucket: ctx.bucket,
      Key: key,
      UploadId: uploadId,
      MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.n, ETag: p.etag })) },
    }),
  );
}

export async function abortUpload(ctx: S3Context, key: string, uploadId: string): Promise<void> {
  try {
    await ctx.client.send(new AbortMultipartUploadCommand({ Bucket: ctx.bucket, Key: key, UploadId: uploadId }));
  } catch (err) {
    // already completed or aborted by another process: nothing is left to free
    if (!isMissingKey(err)) throw err;
  }
}

/**
 * Aborts every multipart upload on `key` or under `key/` (the ones staged files record, and any a dead writer
 * left behind), so that deleting a path never leaves parts that are stored and billed but invisible.
 */
export async function abortUploadsUnder(ctx: S3Context, key: string): Promise<number> {
  let aborted = 0;
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const out = await ctx.client.send(
      new ListMultipartUploadsCommand({
        Bucket: ctx.bucket,
        Prefix: key,
        KeyMarker: keyMarker,
        UploadIdMarker: uploadIdMarker,
      }),
    );
    for (const u of out.Uploads ?? []) {
      if (!u.Key || !u.UploadId) continue;
      if (key !== '' && u.Key !== key && !u.Key.startsWith(`${key}/`)) continue;
      await abortUpload(ctx, u.Key, u.UploadId);
      aborted++;
    }
    if (!out.IsTruncated) return aborted;
    keyMarker = out.NextKeyMarker;
    uploadIdMarker = out.NextUploadIdMarker;
  }
}

/**
 * Turns a staged file into a plain object (tail uploaded as the last part, upload completed onto the key).
 * Returns the key's state afterwards; undefined when the key is absent.
 */
export async function materialize(ctx: S3Context, key: string): Promise<HeadInfo | undefined> {
  const found = await head(ctx, key);
  if (!found?.staged) return found;
  const staged = await readSession(ctx, key).catch((err: unknown) => {
    if (isMissingKey(err)) return undefined;
    throw err;
  });
  if (staged) {
    const { session, tail } = staged;
    const parts = [...session.parts];
    if (tail.length > 0) parts.push(await uploadPart(ctx, key, session.uploadId, parts.length + 1, tail));
    try {
      await completeUpload(ctx, key, session.uploadId, parts);
    } catch (err) {
      // Another process may have materialized it meanwhile: the key is then plain, which is all we need.
      const now = await head(ctx, key);
      if (now && !now.staged) return now;
      throw err;
    }
  }
  return head(ctx, key);
}
