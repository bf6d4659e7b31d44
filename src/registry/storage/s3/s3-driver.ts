/**
 * The storage driver on an S3-compatible object store, in distribution's key layout (see s3-context.ts).
 *
 * - Directories are implicit, as in distribution: a path is a directory while keys exist under `path/`.
 * - `list` is ListObjectsV2 with a `/` delimiter, paged; `delete` lists everything under `path/` (never `pathX`)
 *   and removes it with DeleteObjects, 1000 keys at a time, after aborting the multipart uploads under it.
 * - `move` is a server-side copy then a delete of the source; the registry only moves onto content-addressed
 *   keys, so a reader of the destination sees the old bytes or the new, which are the same.
 * - `writer` with `append` continues a file another process began (s3-staged.ts, s3-writer.ts).
 * - `reader` streams the object (with `Range` when asked); nothing is buffered whole.
 */
import {
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type GetObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { randomBytes } from 'node:crypto';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  PathNotFoundError,
  verifyingStream,
  TEMP_MARKER,
  TEMP_PROCESS_TAG,
  type ByteRange,
  type DirEntry,
  type FileInfo,
  type StorageDriver,
  type WriterOptions,
} from '../driver.js';
import { copyBatched } from '../copy-batched.js';
import { FastGet } from './s3-fast-get.js';
import { metadataOf, S3Direct, type DirectOptions } from './s3-direct.js';
import { describeS3Error, reportUnavailable, retryDirectoryRace } from './s3-client.js';
import {
  CONTENT_TYPE,
  MAX_COPY_SIZE,
  MIN_PART_SIZE,
  PartBuffers,
  copySource,
  dirKeyOf,
  isInvalidRange,
  isMissingKey,
  keyOf,
  type S3Context,
} from './s3-context.js';
import {
  abortUpload,
  abortUploadsUnder,
  completeUpload,
  copyParts,
  head,
  isStagedMetadata,
  materialize,
} from './s3-staged.js';
import { openWriter } from './s3-writer.js';

export interface S3DriverOptions {
  client: S3Context['client'];
  bucket: string;
  /** Key prefix (distribution's `rootdirectory`); leading and trailing `/` are ignored. */
  prefix?: string;
  /** Bytes per part while uploads are staged; default 8 MiB, at least 5 MiB. */
  partSize?: number;
  /** Copies above this size go part by part; default 32 MiB, at most 5 GiB (S3's CopyObject limit). */
  multipartCopyThreshold?: number;
  /** Range per copied part; default 32 MiB. */
  multipartCopyChunkSize?: number;
  /** Parts copied at once; default 4. */
  multipartCopyConcurrency?: number;
  /** The endpoint, only to name it in error messages. */
  endpoint?: string;
  /** Part buffers in the pool (default 8: 64 MiB with 8 MiB parts); a writer beyond them waits for a free one. */
  maxPartBuffers?: number;
  /**
   * Part uploads one writer keeps in flight at once, buffers permitting (it fills the next part meanwhile); default 2,
   * and 1 uploads part after part.
   */
  partsInFlight?: number;
  /** Offer presigned GET URLs valid this many seconds (`redirectURL`); undefined: no redirects. */
  redirectSeconds?: number;
  /** Settings of the calls past the SDK (s3-direct.ts): how long one waits, how long refusals pause them. */
  direct?: Omit<DirectOptions, 'endpoint'>;
}

/**
 * Objects above this are copied in parts of this size, several at once. A server-side copy costs the server a
 * read, a write and its ETag's MD5 per byte: one CopyObject of a large blob (an upload moved to its blob's key)
 * runs on one of its cores, parts copied together on several.
 */
const DEFAULT_COPY_CHUNK = 32 * 1024 * 1024;

/** Keys per DeleteObjects request (S3's maximum). */
const DELETE_BATCH = 1000;

export class S3Driver implements StorageDriver {
  readonly name = 's3';
  /** Every object is written by one PUT (or one multipart completion): nothing is ever left half-written. */
  readonly leavesTempFiles = false;
  private readonly ctx: S3Context;
  private readonly endpoint: string | undefined;
  private readonly redirectSeconds: number | undefined;
  private readonly fastGet: FastGet;

  constructor(opts: S3DriverOptions) {
    const partSize = opts.partSize ?? 8 * 1024 * 1024;
    if (partSize < MIN_PART_SIZE) throw new Error(`S3 part size ${partSize} is under S3's minimum of 5 MiB`);
    this.endpoint = opts.endpoint;
    this.redirectSeconds = opts.redirectSeconds;
    reportUnavailable(opts.client, { bucket: opts.bucket, endpoint: opts.endpoint });
    retryDirectoryRace(opts.client);
    const direct = new S3Direct(opts.client, opts.bucket, { ...opts.direct, endpoint: opts.endpoint });
    this.fastGet = new FastGet(direct);
    this.ctx = {
      client: opts.client,
      direct,
      bucket: opts.bucket,
      prefix: (opts.prefix ?? '').replace(/^\/+|\/+$/g, ''),
      partSize,
      multipartCopyThreshold: Math.min(opts.multipartCopyThreshold ?? DEFAULT_COPY_CHUNK, MAX_COPY_SIZE),
      multipartCopyChunkSize: opts.multipartCopyChunkSize ?? DEFAULT_COPY_CHUNK,
      multipartCopyConcurrency: Math.max(1, opts.multipartCopyConcurrency ?? 4),
      buffers: new PartBuffers(Math.max(1, opts.maxPartBuffers ?? 8), partSize),
      partsInFlight: Math.max(1, opts.partsInFlight ?? 2),
    };
  }

  get bucket(): string {
    return this.ctx.bucket;
  }

  /** The object key a storage path maps to (for redirects and tests). */
  keyFor(path: string): string {
    return keyOf(this.ctx, path);
  }

  private async get(path: string, range?: string): Promise<GetObjectCommandOutput> {
    const key = keyOf(this.ctx, path);
    const send = () => this.ctx.client.send(new GetObjectCommand({ Bucket: this.ctx.bucket, Key: key, Range: range }));
    try {
      let out: GetObjectCommandOutput;
      try {
        out = await send();
      } catch (err) {
        // A range past the end of a staged file's small marker object: the file itself may be long enough.
        if (range === undefined || !isInvalidRange(err) || !(await head(this.ctx, key))?.staged) throw err;
        await materialize(this.ctx, key);
        return await send();
      }
      if (!isStagedMetadata(out.Metadata)) return out;
      // A staged upload: its bytes are in parts that cannot be read until the upload is completed.
      (out.Body as Readable | undefined)?.destroy();
      await materialize(this.ctx, key);
      return await send();
    } catch (err) {
      if (isMissingKey(err)) throw new PathNotFoundError(path);
      throw err;
    }
  }

  async getContent(path: string): Promise<Buffer> {
    const direct = await this.ctx.direct.send('GET', keyOf(this.ctx, path));
    if (direct?.status === 404) throw new PathNotFoundError(path);
    // A staged upload's marker is left to the SDK path, which completes the upload first.
    if (direct?.status === 200 && !isStagedMetadata(metadataOf(direct.headers))) return direct.body;
    const out = await this.get(path);
    const bytes = out.Body ? await out.Body.transformToByteArray() : new Uint8Array();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  async putContent(path: string, data: Buffer | string): Promise<void> {
    const key = keyOf(this.ctx, path);
    const body = Buffer.from(data);
    const direct = await this.ctx.direct.send('PUT', key, { body, headers: { 'content-type': CONTENT_TYPE } });
    if (direct?.status === 200) return;
    // Anything else is asked again through the SDK, which retries and reports: a PUT of the same bytes is idempotent.
    await this.ctx.client.send(
      new PutObjectCommand({
        Bucket: this.ctx.bucket,
        Key: key,
        Body: body,
        ContentType: CONTENT_TYPE,
      }),
    );
  }

  /**
   * One PutObject to the final key, up to S3's 5 GiB for a single PUT: the content streams through
   * `verifyingStream`, which holds its last chunk back until the whole matched, so content that does not match is
   * never sent whole. The PUT also carries `x-amz-checksum-sha256`: the server checks what it received against
   * it, so a body cut short is refused even by a server that would store what arrived before the connection
   * closed (versitygw does without the header). The SDK must not retry such a PUT (its body is a stream read
   * once): a second attempt fails at once instead of sending nothing.
   */
  async putVerified(path: string, body: Readable, opts: { length: number; sha256: string }): Promise<boolean> {
    if (opts.length > MAX_COPY_SIZE) return false;
    const verified = verifyingStream(opts);
    const abort = new AbortController();
    let failure: Error | undefined;
    const fed = pipeline(body, verified).catch((err: unknown) => {
      failure = err instanceof Error ? err : new Error(String(err));
      abort.abort();
    });
    const command = new PutObjectCommand({
      Bucket: this.ctx.bucket,
      Key: keyOf(this.ctx, path),
      Body: verified,
      ContentLength: opts.length,
      ContentType: CONTENT_TYPE,
      ChecksumSHA256: Buffer.from(opts.sha256, 'hex').toString('base64'),
    });
    let attempts = 0;
    command.middlewareStack.add(
      (next) => async (args) => {
        if (++attempts > 1) throw new Error('a streamed PUT is not retried: its body was read by the first attempt');
        return next(args);
      },
      { step: 'finalizeRequest', priority: 'low', name: 'regctlSingleAttempt' },
    );
    try {
      await this.ctx.client.send(command, { abortSignal: abort.signal });
    } catch (err) {
      verified.destroy();
      await fed;
      if (failure) throw failure;
      throw err;
    }
    await fed;
    if (failure) throw failure;
    return true;
  }

  async reader(path: string, range: { start?: number; end?: number } = {}): Promise<Readable> {
    const ranged = range.start !== undefined || range.end !== undefined;
    const header = ranged ? `bytes=${range.start ?? 0}-${range.end ?? ''}` : undefined;
    try {
      const out = await this.get(path, header);
      return (out.Body as Readable | undefined) ?? Readable.from([]);
    } catch (err) {
      // A range starting at or past the end (e.g. of an empty file) holds no bytes, as with a file read.
      if (isInvalidRange(err)) return Readable.from([]);
      throw err;
    }
  }

  /** A range of the object into `out`, in batches (see copy-batched.ts), read past the SDK (s3-fast-get.ts). */
  async copyTo(path: string, range: ByteRange, out: Writable, onBytes?: (n: number) => void): Promise<void> {
    if (range.end >= range.start && (await this.fastGet.copy(keyOf(this.ctx, path), range, out, onBytes))) return;
    await copyBatched(await this.reader(path, range), out, onBytes);
  }

  async close(): Promise<void> {
    await this.ctx.direct.close();
  }

  /** A presigned GET of the object when redirects are on (signed locally: no request to S3). */
  async redirectURL(path: string): Promise<string | undefined> {
    if (this.redirectSeconds === undefined) return undefined;
    const command = new GetObjectCommand({ Bucket: this.ctx.bucket, Key: keyOf(this.ctx, path) });
    return getSignedUrl(this.ctx.client, command, { expiresIn: this.redirectSeconds });
  }

  writer(path: string, opts: WriterOptions): Promise<Writable> {
    return openWriter(this.ctx, keyOf(this.ctx, path), opts);
  }

  async stat(path: string): Promise<FileInfo> {
    const file = await this.fileAt(path);
    if (file) return file;
    const out = await this.ctx.client.send(
      new ListObjectsV2Command({ Bucket: this.ctx.bucket, Prefix: dirKeyOf(this.ctx, path), MaxKeys: 1 }),
    );
    if ((out.KeyCount ?? out.Contents?.length ?? 0) > 0) return { size: 0, modifiedAt: new Date(0), isDir: true };
    throw new PathNotFoundError(path);
  }

  /** One HEAD: a missing key is missing, with no LIST to tell whether the path is a directory. */
  async statFile(path: string): Promise<FileInfo> {
    const file = await this.fileAt(path);
    if (file) return file;
    throw new PathNotFoundError(path);
  }

  /** The object at `path` (one HEAD), or undefined. */
  private async fileAt(path: string): Promise<FileInfo | undefined> {
    const found = path === '' ? undefined : await head(this.ctx, keyOf(this.ctx, path));
    return found && { size: found.size, modifiedAt: found.modifiedAt, isDir: false };
  }

  async list(path: string): Promise<DirEntry[]> {
    const prefix = dirKeyOf(this.ctx, path);
    const entries: DirEntry[] = [];
    let token: string | undefined;
    do {
      const out = await this.ctx.client.send(
        new ListObjectsV2Command({ Bucket: this.ctx.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }),
      );
      for (const o of out.Contents ?? []) {
        const name = (o.Key ?? '').slice(prefix.length);
        // `path/` itself (a folder marker some tools write) is not a child
        if (name !== '') entries.push({ name, isDir: false });
      }
      for (const p of out.CommonPrefixes ?? []) {
        const name = (p.Prefix ?? '').slice(prefix.length).replace(/\/$/, '');
        if (name !== '') entries.push({ name, isDir: true });
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    if (entries.length === 0) throw new PathNotFoundError(path);
    return entries;
  }

  /** ListObjectsV2 without a delimiter: a page of up to a thousand keys per request, whatever their depth. */
  async *listFiles(path: string): AsyncIterable<string[]> {
    const prefix = dirKeyOf(this.ctx, path);
    const root = dirKeyOf(this.ctx, '').length;
    let token: string | undefined;
    do {
      const out = await this.ctx.client.send(
        new ListObjectsV2Command({ Bucket: this.ctx.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      // `dir/` keys are folder markers some tools write, not files.
      const keys = (out.Contents ?? []).map((o) => o.Key ?? '').filter((k) => k !== '' && !k.endsWith('/'));
      if (keys.length > 0) yield keys.map((k) => k.slice(root));
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }

  async move(from: string, to: string): Promise<void> {
    const fromKey = keyOf(this.ctx, from);
    const toKey = keyOf(this.ctx, to);
    const found = await materialize(this.ctx, fromKey);
    if (!found) throw new PathNotFoundError(from);
    await this.copy(fromKey, toKey, found.size);
    await this.ctx.client.send(new DeleteObjectCommand({ Bucket: this.ctx.bucket, Key: fromKey }));
  }

  /** Server-side copy; objects above the threshold go part by part (CopyObject stops at 5 GiB). */
  private async copy(fromKey: string, toKey: string, size: number): Promise<void> {
    if (size <= this.ctx.multipartCopyThreshold || size < MIN_PART_SIZE) {
      await this.ctx.client.send(
        new CopyObjectCommand({
          Bucket: this.ctx.bucket,
          Key: toKey,
          CopySource: copySource(this.ctx, fromKey),
          ContentType: CONTENT_TYPE,
          MetadataDirective: 'REPLACE',
        }),
      );
      return;
    }
    const created = await this.ctx.client.send(
      new CreateMultipartUploadCommand({ Bucket: this.ctx.bucket, Key: toKey, ContentType: CONTENT_TYPE }),
    );
    const uploadId = created.UploadId as string;
    try {
      const parts = await copyParts(this.ctx, fromKey, size, toKey, uploadId);
      await completeUpload(this.ctx, toKey, uploadId, parts);
    } catch (err) {
      await abortUpload(this.ctx, toKey, uploadId).catch(() => undefined);
      throw err;
    }
  }

  async delete(path: string): Promise<void> {
    const key = keyOf(this.ctx, path);
    await abortUploadsUnder(this.ctx, key);
    const dirPrefix = dirKeyOf(this.ctx, path);
    // the path itself (when it is a file), then everything under `path/` (never a sibling `pathX`)
    const batch: string[] = key === '' ? [] : [key];
    let token: string | undefined;
    do {
      const out = await this.ctx.client.send(
        new ListObjectsV2Command({ Bucket: this.ctx.bucket, Prefix: dirPrefix, ContinuationToken: token }),
      );
      for (const o of out.Contents ?? []) if (o.Key) batch.push(o.Key);
      while (batch.length >= DELETE_BATCH) await this.deleteKeys(batch.splice(0, DELETE_BATCH));
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    if (batch.length > 0) await this.deleteKeys(batch);
  }

  private async deleteKeys(keys: string[]): Promise<void> {
    const out = await this.ctx.client.send(
      new DeleteObjectsCommand({
        Bucket: this.ctx.bucket,
        Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true },
      }),
    );
    const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
    if (failed.length > 0) {
      const first = failed[0];
      throw new Error(
        `S3 refused to delete ${failed.length} key(s), first ${first?.Key}: ${first?.Code} ${first?.Message}`,
      );
    }
  }

  /** Writes and deletes a probe object; the error says in one line what to fix (endpoint, bucket, credentials). */
  async checkWritable(): Promise<void> {
    const key = keyOf(this.ctx, `.healthz${TEMP_MARKER}${TEMP_PROCESS_TAG}${randomBytes(4).toString('hex')}`);
    try {
      await this.ctx.client.send(
        new PutObjectCommand({ Bucket: this.ctx.bucket, Key: key, Body: Buffer.alloc(0), ContentType: CONTENT_TYPE }),
      );
      await this.ctx.client.send(new DeleteObjectCommand({ Bucket: this.ctx.bucket, Key: key }));
    } catch (err) {
      throw new Error(describeS3Error(err, { bucket: this.ctx.bucket, endpoint: this.endpoint }), { cause: err });
    }
  }
}
