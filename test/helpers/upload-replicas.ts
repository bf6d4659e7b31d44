/**
 * Uploads whose requests land on different processes sharing one storage (replicas behind a load balancer with no
 * stickiness): two RegistryStores, each on its own driver instance, as two `regctl serve` processes would be.
 * Run on the filesystem in test/unit/registry/upload-replicas.test.ts and on S3 (versitygw) in
 * test/integration/registry/s3-uploads.test.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RegistryError } from '../../src/registry/errors.js';
import { parseDigest, type Digest } from '../../src/registry/reference.js';
import { StorageUnavailableError, type StorageDriver } from '../../src/registry/storage/driver.js';
import { pathFor } from '../../src/registry/storage/paths.js';
import { RegistryStore } from '../../src/registry/storage/store.js';

export interface ReplicaHarness {
  /** Two drivers on the same fresh storage. */
  make(): Promise<[StorageDriver, StorageDriver]>;
  /** Asserts nothing is left behind that the storage bills but nobody sees (S3: open multipart uploads). */
  assertNoOrphans(): Promise<void>;
  cleanup(): Promise<void>;
}

const MiB = 1024 * 1024;
const REPO = 'team/app';

function digestOf(data: Buffer): Digest {
  return parseDigest(`sha256:${createHash('sha256').update(data).digest('hex')}`);
}

/** PATCHes `data` starting at `offset` as the registry does: one request body, Content-Range checked. */
async function patch(store: RegistryStore, id: string, data: Buffer, offset: number): Promise<number> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += 64 * 1024) chunks.push(data.subarray(i, i + 64 * 1024));
  return store.uploads.append(REPO, id, Readable.from(chunks), { start: offset, end: offset + data.length - 1 });
}

async function registryCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RegistryError) return err.code;
    throw err;
  }
  return 'no error';
}

export function describeUploadReplicas(kind: string, harness: () => ReplicaHarness, timeout = 60_000): void {
  describe(`uploads across replicas: ${kind}`, { timeout }, () => {
    let h: ReplicaHarness;
    let a: RegistryStore;
    let b: RegistryStore;
    beforeEach(async () => {
      h = harness();
      const [da, db] = await h.make();
      a = new RegistryStore(da);
      b = new RegistryStore(db);
    });
    afterEach(async () => {
      await h.assertNoOrphans();
      await h.cleanup();
    });

    it('a push in 1 MiB PATCHes alternating between replicas completes with every byte', async () => {
      const data = randomBytes(13 * MiB + 321);
      const id = await a.uploads.start(REPO);
      let offset = 0;
      for (let i = 0; offset < data.length - MiB; i++) {
        const store = i % 3 === 2 ? a : b;
        offset = await patch(store, id, data.subarray(offset, offset + MiB), offset);
        expect(await (i % 2 === 0 ? a : b).uploads.offset(REPO, id)).toBe(offset);
      }
      const last = data.subarray(offset);
      const info = await b.uploads.complete(REPO, id, digestOf(data), Readable.from([last]), {
        start: offset,
        end: data.length - 1,
      });
      expect(info.size).toBe(data.length);
      const stored = await a.driver.getContent(pathFor({ kind: 'blobData', digest: digestOf(data) }));
      expect(stored.equals(data)).toBe(true);
      expect(await a.linked.stat(REPO, digestOf(data))).toEqual({ digest: digestOf(data), size: data.length });
      await expect(a.driver.list(pathFor({ kind: 'uploadsRoot', name: REPO }))).rejects.toThrow('path not found');
    });

    it('a replica that saw the start but not the last PATCH completes by re-hashing from storage', async () => {
      const data = randomBytes(7 * MiB);
      const id = await a.uploads.start(REPO);
      await patch(a, id, data.subarray(0, 6 * MiB), 0);
      await patch(b, id, data.subarray(6 * MiB), 6 * MiB);
      const info = await a.uploads.complete(REPO, id, digestOf(data));
      expect(info.size).toBe(data.length);
      expect((await b.driver.getContent(pathFor({ kind: 'blobData', digest: digestOf(data) }))).equals(data)).toBe(
        true,
      );
    });

    it('offsets and Content-Range checks follow storage, not a replica memory', async () => {
      const id = await a.uploads.start(REPO);
      await patch(a, id, randomBytes(MiB), 0);
      await patch(b, id, randomBytes(MiB), MiB);
      expect(await a.uploads.offset(REPO, id)).toBe(2 * MiB);
      expect(await registryCode(patch(a, id, randomBytes(10), MiB))).toBe('RANGE_INVALID');
      expect(await patch(a, id, randomBytes(10), 2 * MiB)).toBe(2 * MiB + 10);
      await b.uploads.cancel(REPO, id);
    });

    it('cancel on another replica removes the upload and everything staged for it', async () => {
      const id = await a.uploads.start(REPO);
      await patch(a, id, randomBytes(6 * MiB), 0);
      await patch(a, id, randomBytes(MiB), 6 * MiB);
      await b.uploads.cancel(REPO, id);
      expect(await registryCode(a.uploads.offset(REPO, id))).toBe('BLOB_UPLOAD_UNKNOWN');
      await expect(a.driver.list(pathFor({ kind: 'uploadsRoot', name: REPO }))).rejects.toThrow('path not found');
    });

    it('purge on another replica removes stale uploads and what they staged', async () => {
      const id = await a.uploads.start(REPO);
      await patch(a, id, randomBytes(6 * MiB), 0);
      expect(await b.uploads.purge(60_000, Date.now() + 120_000)).toBe(1);
      expect(await registryCode(a.uploads.offset(REPO, id))).toBe('BLOB_UPLOAD_UNKNOWN');
    });

    it('purge keeps a live upload whose start time cannot be read for a moment', async () => {
      const id = await a.uploads.start(REPO);
      await patch(a, id, randomBytes(1000), 0);
      // A storage failure on one read at the right moment cannot be brought about on a real server on demand: the
      // purging replica's read of `startedat` fails as S3 answering 503 would.
      const read = b.driver.getContent.bind(b.driver);
      b.driver.getContent = (path) =>
        path.endsWith('/startedat') ? Promise.reject(new StorageUnavailableError('S3 unavailable')) : read(path);
      try {
        expect(await b.uploads.purge(60_000)).toBe(0);
      } finally {
        b.driver.getContent = read;
      }
      expect(await patch(a, id, randomBytes(1), 1000)).toBe(1001);
      await a.uploads.cancel(REPO, id);
    });

    it('purge judges an upload left without startedat by its last write: kept while fresh, removed once stale', async () => {
      const id = await a.uploads.start(REPO);
      await patch(a, id, randomBytes(1000), 0);
      const data = pathFor({ kind: 'uploadData', name: REPO, id });
      await a.driver.delete(pathFor({ kind: 'uploadStartedAt', name: REPO, id }));
      expect(await b.uploads.purge(60_000)).toBe(0);
      expect((await a.driver.stat(data)).size).toBe(1000);
      expect(await b.uploads.purge(60_000, Date.now() + 120_000)).toBe(1);
      await expect(a.driver.stat(data)).rejects.toThrow('path not found');
    });

    it('a wrong digest stores nothing and removes the upload', async () => {
      const data = randomBytes(6 * MiB);
      const id = await a.uploads.start(REPO);
      await patch(a, id, data, 0);
      const wrong = digestOf(Buffer.from('something else'));
      expect(await registryCode(b.uploads.complete(REPO, id, wrong))).toBe('DIGEST_INVALID');
      expect(await a.blobs.size(wrong)).toBeUndefined();
      expect(await a.blobs.size(digestOf(data))).toBeUndefined();
      expect(await registryCode(a.uploads.offset(REPO, id))).toBe('BLOB_UPLOAD_UNKNOWN');
    });

    wholeBlobCases(() => ({ a, b }));
  });
}

/** A blob sent whole in one request, published whole or not at all, with or without an upload session. */
function wholeBlobCases(stores: () => { a: RegistryStore; b: RegistryStore }): void {
  let a: RegistryStore;
  let b: RegistryStore;
  beforeEach(() => ({ a, b } = stores()));

  it('a monolithic upload (one body, its length declared) is published whole, or not at all', async () => {
    const data = randomBytes(6 * MiB + 7);
    const body = () => Readable.from([data.subarray(0, 4 * MiB), data.subarray(4 * MiB)]);
    const wrong = await a.uploads.start(REPO);
    const bad = digestOf(Buffer.concat([data, Buffer.from('x')]));
    expect(await registryCode(b.uploads.complete(REPO, wrong, bad, body(), undefined, data.length))).toBe(
      'DIGEST_INVALID',
    );
    expect(await a.blobs.size(bad)).toBeUndefined();
    expect(await a.blobs.size(digestOf(data))).toBeUndefined();
    expect(await registryCode(a.uploads.offset(REPO, wrong))).toBe('BLOB_UPLOAD_UNKNOWN');
    const id = await a.uploads.start(REPO);
    const info = await b.uploads.complete(REPO, id, digestOf(data), body(), undefined, data.length);
    expect(info.size).toBe(data.length);
    expect(await a.linked.stat(REPO, digestOf(data))).toMatchObject({ size: data.length });
    const stored: Buffer[] = [];
    for await (const c of await a.blobs.open(digestOf(data))) stored.push(c as Buffer);
    expect(Buffer.concat(stored).equals(data)).toBe(true);
    expect(await registryCode(a.uploads.offset(REPO, id))).toBe('BLOB_UPLOAD_UNKNOWN');
  });

  it('a whole blob in one request needs no upload session where the driver writes it verified', async () => {
    const data = randomBytes(5 * MiB + 3);
    const body = () => Readable.from([data]);
    const bad = digestOf(Buffer.concat([data, Buffer.from('!')]));
    const uploads = pathFor({ kind: 'uploadDir', name: REPO, id: 'x' }).replace(/\/x$/, '');
    if (!a.driver.putVerified) {
      // The filesystem: the caller goes through a session instead, and nothing was read or written.
      expect(await a.uploads.putWhole(REPO, digestOf(data), body(), data.length)).toBeUndefined();
      expect(await a.blobs.size(digestOf(data))).toBeUndefined();
      return;
    }
    expect(await registryCode(b.uploads.putWhole(REPO, bad, body(), data.length))).toBe('DIGEST_INVALID');
    expect(await a.blobs.size(bad)).toBeUndefined();
    expect(await a.blobs.size(digestOf(data))).toBeUndefined();
    expect(await b.uploads.putWhole(REPO, digestOf(data), body(), data.length)).toEqual({
      digest: digestOf(data),
      size: data.length,
    });
    expect(await a.linked.stat(REPO, digestOf(data))).toMatchObject({ size: data.length });
    expect(await a.driver.list(uploads).catch(() => [])).toEqual([]);
    // Stored already: not taken again, the caller's session handles (and verifies) the body.
    expect(await b.uploads.putWhole(REPO, digestOf(data), body(), data.length)).toBeUndefined();
  });
}
