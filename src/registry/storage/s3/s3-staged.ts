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
 * Each writer fills one part buffer taken from the driver's pool (incoming chunks are copied in and freed, parts are
 * exactly `partSize`), and at most `buffers.max` writers hold one at once (more wait); nothing is held whole in
 * memory, and the memory for parts is bounded by `buffers.max × partSize`.
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
import { Writable } from 'node:stream';
import pMap from 'p-map';
import type { WriterOptions } from '../driver.js';
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
interface Session {
  uploadId: string;
  parts: Part[];
}

interface WriteState {
  uploadId: string | undefined;
  /** True when this writer created the upload: it aborts it if the writer fails before it is recorded. */
  createdHere: boolean;
  parts: Part[];
  /** This writer's part buffer (from the driver's pool) and how much of it holds data. */
  buf: Buffer;
  filled: number;
  /** The part upload in flight, if any: the buffer goes back to the pool only once it settled. */
  inflight: Promise<unknown> | undefined;
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

async function getBytes(ctx: S3Context, key: string): Promise<{ body: Buffer; meta: Record<string, string> }> {
  const out = await ctx.client.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key }));
  const bytes = out.Body ? await out.Body.transformToByteArray() : new Uint8Array();
  return { body: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), meta: out.Metadata ?? {} };
}

/** Reads a staged marker: its session and its tail. */
async function readSession(ctx: S3Context, key: string): Promise<{ session: Session; tail: Buffer } | undefined> {
  const { body, meta } = await getBytes(ctx, key);
  if (!isStagedMetadata(meta)) return undefined;
  const headerLength = Number(meta[META_HEADER]);
  const session = JSON.parse(body.subarray(0, headerLength).toString('utf8')) as Session;
  return { session, tail: body.subarray(headerLength) };
}

async function writeSession(ctx: S3Context, key: string, session: Session, tail: Buffer): Promise<void> {
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

async function createUpload(ctx: S3Context, key: string): Promise<string> {
  const out = await ctx.client.send(
    new CreateMultipartUploadCommand({ Bucket: ctx.bucket, Key: key, ContentType: CONTENT_TYPE }),
  );
  if (!out.UploadId) throw new Error(`S3 returned no upload id for ${key}`);
  return out.UploadId;
}

async function uploadPart(ctx: S3Context, key: string, uploadId: string, n: number, body: Buffer): Promise<Part> {
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

/** Copies bytes into the writer's part buffer (they always fit: callers pass less than a part). */
function fill(state: WriteState, bytes: Buffer): void {
  bytes.copy(state.buf, state.filled);
  state.filled += bytes.length;
}

/** Where a writer starts: the file's current parts and tail (or nothing when truncating or absent). */
async function openState(ctx: S3Context, key: string, append: boolean, buf: Buffer, attempt = 0): Promise<WriteState> {
  const state: WriteState = { uploadId: undefined, createdHere: false, parts: [], buf, filled: 0, inflight: undefined };
  const found = await head(ctx, key);
  if (!found) return state;
  if (!append) {
    // Truncating a staged file: its parts will never be used.
    if (found.staged) await abortUploadsUnder(ctx, key);
    return state;
  }
  if (found.staged) {
    const staged = await readSession(ctx, key);
    if (staged) {
      state.uploadId = staged.session.uploadId;
      state.parts = staged.session.parts;
      // a tail staged by a process with larger parts is a valid part by itself (over 5 MiB)
      if (staged.tail.length >= buf.length)
        state.parts.push(await uploadPart(ctx, key, staged.session.uploadId, state.parts.length + 1, staged.tail));
      else fill(state, staged.tail);
      return state;
    }
    // materialized by another process between the HEAD and the GET: look again (once)
    if (attempt === 0) return openState(ctx, key, append, buf, 1);
    throw new Error(`${key} changed while it was opened for appending`);
  }
  if (found.size < MIN_PART_SIZE) {
    fill(state, (await getBytes(ctx, key)).body);
    return state;
  }
  const uploadId = await createUpload(ctx, key);
  try {
    state.parts = await copyParts(ctx, key, found.size, key, uploadId);
  } catch (err) {
    // no writer exists yet to abort it on failure
    await abortUpload(ctx, key, uploadId).catch(() => undefined);
    throw err;
  }
  state.uploadId = uploadId;
  state.createdHere = true;
  return state;
}

async function flushPart(ctx: S3Context, key: string, state: WriteState): Promise<void> {
  if (state.uploadId === undefined) {
    state.uploadId = await createUpload(ctx, key);
    state.createdHere = true;
  }
  const n = state.parts.length + 1;
  state.parts.push(await uploadPart(ctx, key, state.uploadId, n, state.buf.subarray(0, state.filled)));
  state.filled = 0;
}

async function seal(ctx: S3Context, key: string, state: WriteState): Promise<void> {
  const tail = state.buf.subarray(0, state.filled);
  if (state.uploadId === undefined) {
    await ctx.client.send(
      new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: tail, ContentType: CONTENT_TYPE }),
    );
    return;
  }
  await writeSession(ctx, key, { uploadId: state.uploadId, parts: state.parts }, tail);
  state.createdHere = false;
}

/** A writer on `key` (see the module comment); its data is recorded when the stream finishes. */
export async function openWriter(ctx: S3Context, key: string, opts: WriterOptions): Promise<Writable> {
  const { buffer, release } = await ctx.buffers.acquire();
  let state: WriteState;
  try {
    state = await openState(ctx, key, opts.append, buffer);
  } catch (err) {
    release();
    throw err;
  }
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      opts.onData?.(chunk);
      let offset = 0;
      const copyIn = (): void => {
        while (offset < chunk.length) {
          const n = Math.min(chunk.length - offset, state.buf.length - state.filled);
          chunk.copy(state.buf, state.filled, offset, offset + n);
          state.filled += n;
          offset += n;
          if (state.filled === state.buf.length) {
            const flush = flushPart(ctx, key, state);
            state.inflight = flush;
            flush.then(copyIn, cb);
            return;
          }
        }
        cb();
      };
      copyIn();
    },
    final(cb) {
      seal(ctx, key, state).then(() => {
        release();
        cb();
      }, cb);
    },
    destroy(err, cb) {
      // A part upload may still be reading the buffer: it returns to the pool once that settled.
      const settled = (state.inflight ?? Promise.resolve()).then(
        () => undefined,
        () => undefined,
      );
      void settled.then(async () => {
        release();
        // An upload this writer created and never recorded would be orphaned: abort it now.
        if (err && state.createdHere && state.uploadId !== undefined)
          await abortUpload(ctx, key, state.uploadId).catch(() => undefined);
        cb(err);
      });
    },
  });
}
