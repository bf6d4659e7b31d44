/**
 * What the S3 driver's modules share: the client, the bucket, the key mapping and the error tests.
 *
 * Keys follow distribution's S3 driver: `PREFIX/` + the storage path (`docker/registry/v2/...`), or the bare path
 * when there is no prefix, so a bucket written by distribution is served as is and the other way round.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { assertRelativePath } from '../driver.js';
import type { S3Direct } from './s3-direct.js';

/** S3's smallest multipart part (every part but the last). */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
/** S3's largest single CopyObject / UploadPartCopy source range. */
export const MAX_COPY_SIZE = 5 * 1024 * 1024 * 1024;
/** S3's most parts in one multipart upload. */
export const MAX_PARTS = 10_000;
/** All objects are written with this type, as distribution writes them. */
export const CONTENT_TYPE = 'application/octet-stream';

export interface S3Context {
  readonly client: S3Client;
  /** The same calls signed by the client's signer and sent past its middleware, for the hot paths (s3-direct.ts). */
  readonly direct: S3Direct;
  readonly bucket: string;
  /** Without leading or trailing `/`; empty for the bucket's root. */
  readonly prefix: string;
  /** Bytes per multipart part while an upload is staged (≥ 5 MiB). */
  readonly partSize: number;
  /** Objects larger than this are copied part by part (UploadPartCopy) rather than with one CopyObject. */
  readonly multipartCopyThreshold: number;
  /** Size of each UploadPartCopy range in a multipart copy (larger when the object needs it to fit in 10,000). */
  readonly multipartCopyChunkSize: number;
  /** UploadPartCopy requests in flight at once in one multipart copy. */
  readonly multipartCopyConcurrency: number;
  /** Part buffers of `partSize` bytes: the bound on the memory the driver's writers hold. */
  readonly buffers: PartBuffers;
  /** Part uploads one writer keeps in flight at once (each holds a buffer of the pool while it runs). */
  readonly partsInFlight: number;
}

/** A part buffer held by one writer, and the function that gives it back (safe to call more than once). */
export interface Lease {
  buffer: Buffer;
  release: () => void;
}

/**
 * The pool of part buffers (`partSize` bytes each, allocated on first use and then reused): a writer waits for its
 * first buffer (beyond `max` buffers in use, its request is slowed down, not refused) and takes more only when one
 * is free and no writer waits, so the memory for parts stays bounded by `max × partSize` under any number of
 * uploads, and a large upload uses the room that concurrent ones leave.
 */
export class PartBuffers {
  private allocated = 0;
  private readonly free: Buffer[] = [];
  private readonly waiting: Array<(buffer: Buffer) => void> = [];
  constructor(
    readonly max: number,
    readonly size: number,
  ) {}

  /** True when a writer waits for a buffer. */
  get contended(): boolean {
    return this.waiting.length > 0;
  }

  /** Resolves with a buffer, waiting for one when all `max` are in use. */
  async acquire(): Promise<Lease> {
    const buffer = this.take() ?? (await new Promise<Buffer>((resolve) => this.waiting.push(resolve)));
    return this.lease(buffer);
  }

  /** A buffer when one is free and no writer waits for one; undefined otherwise (never waits). */
  tryAcquire(): Lease | undefined {
    if (this.waiting.length > 0) return undefined;
    const buffer = this.take();
    return buffer === undefined ? undefined : this.lease(buffer);
  }

  private take(): Buffer | undefined {
    const buffer = this.free.pop();
    if (buffer !== undefined || this.allocated >= this.max) return buffer;
    this.allocated++;
    return Buffer.allocUnsafeSlow(this.size);
  }

  private lease(buffer: Buffer): Lease {
    let held = true;
    return {
      buffer,
      release: () => {
        if (!held) return;
        held = false;
        // the buffer goes straight to the next writer waiting, or back to the pool
        const next = this.waiting.shift();
        if (next) next(buffer);
        else this.free.push(buffer);
      },
    };
  }
}

/** The object key of a storage path. */
export function keyOf(ctx: S3Context, path: string): string {
  if (path !== '') assertRelativePath(path);
  if (ctx.prefix === '') return path;
  return path === '' ? ctx.prefix : `${ctx.prefix}/${path}`;
}

/** The key prefix under which a storage path's children live (`''` for the bucket root without prefix). */
export function dirKeyOf(ctx: S3Context, path: string): string {
  const key = keyOf(ctx, path);
  return key === '' ? '' : `${key}/`;
}

/** `bucket/key` URL-encoded segment by segment, as CopySource wants it. */
export function copySource(ctx: S3Context, key: string): string {
  return `${ctx.bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

interface SdkError {
  name?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

function sdkError(err: unknown): SdkError {
  return typeof err === 'object' && err !== null ? err : {};
}

/** True for "no such key" answers (GET/HEAD 404, NoSuchKey). */
export function isMissingKey(err: unknown): boolean {
  const e = sdkError(err);
  return e.$metadata?.httpStatusCode === 404 || e.name === 'NoSuchKey' || e.name === 'NotFound';
}

/** True when S3 refused a Range past the end of the object. */
export function isInvalidRange(err: unknown): boolean {
  const e = sdkError(err);
  return e.$metadata?.httpStatusCode === 416 || e.name === 'InvalidRange';
}

/** True when a multipart upload id is no longer known (completed or aborted meanwhile). */
export function isNoSuchUpload(err: unknown): boolean {
  const e = sdkError(err);
  return e.name === 'NoSuchUpload' || e.Code === 'NoSuchUpload';
}
