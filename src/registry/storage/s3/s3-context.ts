/**
 * What the S3 driver's modules share: the client, the bucket, the key mapping and the error tests.
 *
 * Keys follow distribution's S3 driver: `PREFIX/` + the storage path (`docker/registry/v2/...`), or the bare path
 * when there is no prefix, so a bucket written by distribution is served as is and the other way round.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { assertRelativePath } from '../driver.js';

/** S3's smallest multipart part (every part but the last). */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
/** S3's largest single CopyObject / UploadPartCopy source range. */
export const MAX_COPY_SIZE = 5 * 1024 * 1024 * 1024;
/** All objects are written with this type, as distribution writes them. */
export const CONTENT_TYPE = 'application/octet-stream';

export interface S3Context {
  readonly client: S3Client;
  readonly bucket: string;
  /** Without leading or trailing `/`; empty for the bucket's root. */
  readonly prefix: string;
  /** Bytes per multipart part while an upload is staged (≥ 5 MiB). */
  readonly partSize: number;
  /** Objects larger than this are copied part by part (UploadPartCopy) rather than with one CopyObject. */
  readonly multipartCopyThreshold: number;
  /** Size of each UploadPartCopy range in a multipart copy. */
  readonly multipartCopyChunkSize: number;
  /** Writers holding a part buffer (up to `partSize` plus one chunk each): the bound on the driver's memory. */
  readonly buffers: BufferSlots;
}

/**
 * A counting semaphore for writers' part buffers: beyond `max` writers at once, a new writer waits (its request
 * is slowed down, not refused) until one finishes, so memory stays bounded under any number of uploads.
 */
export class BufferSlots {
  private used = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(readonly max: number) {}

  /** Resolves with the function that frees the slot (safe to call more than once). */
  async acquire(): Promise<() => void> {
    if (this.used < this.max) this.used++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const next = this.waiting.shift();
      // the slot goes straight to the next writer waiting, or back to the pool
      if (next) next();
      else this.used--;
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
