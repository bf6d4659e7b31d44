/**
 * Blob content by digest (`blobs/<alg>/<xx>/<hex>/data`), shared by every repository. Whether a repository may
 * see a blob is `linked-blob-store.ts`'s concern; this file only reads what storage holds.
 */
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Digest } from '../reference.js';
import { isNotFound, statFile, type ByteRange, type StorageDriver } from './driver.js';
import { pathFor } from './paths.js';

export class BlobStore {
  constructor(private readonly driver: StorageDriver) {}

  /** The blob's size; undefined when storage does not hold it. */
  async size(digest: Digest): Promise<number | undefined> {
    try {
      return (await statFile(this.driver, pathFor({ kind: 'blobData', digest }))).size;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Where the client may download the blob itself (a presigned URL), when the driver redirects. */
  async redirectURL(digest: Digest): Promise<string | undefined> {
    return this.driver.redirectURL?.(pathFor({ kind: 'blobData', digest }));
  }

  async open(digest: Digest, range?: ByteRange): Promise<Readable> {
    return this.driver.reader(pathFor({ kind: 'blobData', digest }), range);
  }

  /**
   * Writes bytes `range` of a blob to `out` (not ending it), through the driver's `copyTo` when it has one,
   * else its reader piped in.
   */
  async copy(digest: Digest, range: ByteRange, out: Writable, onBytes?: (n: number) => void): Promise<void> {
    const path = pathFor({ kind: 'blobData', digest });
    if (this.driver.copyTo) return this.driver.copyTo(path, range, out, onBytes);
    const src = await this.driver.reader(path, range);
    if (onBytes) src.on('data', (c: Buffer) => onBytes(c.length));
    await pipeline(src, out, { end: false });
  }
}
