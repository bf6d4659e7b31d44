/**
 * The optional `putVerified` of the storage driver contract (src/registry/storage/driver.ts), for the drivers that
 * offer it: memory in test/unit/registry/driver-contract.test.ts, S3 on versitygw in
 * test/integration/registry/s3-driver.test.ts. Content stored only when it hashes as announced; a wrong digest, a
 * short body or a body that fails midway leave nothing at the path (and what was there stays).
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ContentMismatchError, PathNotFoundError, type StorageDriver } from '../../src/registry/storage/driver.js';
import type { DriverHarness } from './driver-contract.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function chunks(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  return out;
}

async function readAll(d: StorageDriver, path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of await d.reader(path)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

export function describePutVerified(kind: string, harness: () => DriverHarness, timeout = 30_000): void {
  describe(`storage driver putVerified: ${kind}`, { timeout }, () => {
    let h: DriverHarness;
    let d: StorageDriver;
    beforeEach(async () => {
      h = harness();
      d = await h.make();
      expect(typeof d.putVerified, `${kind} offers putVerified`).toBe('function');
    });
    afterEach(() => h.cleanup());

    it('stores content that hashes as announced, streamed in chunks, and replaces what was there', async () => {
      const data = randomBytes(7 * MiB + 321);
      await d.putContent('b/data', 'old');
      const took = await d.putVerified!('b/data', Readable.from(chunks(data, 256 * 1024)), {
        length: data.length,
        sha256: sha(data),
      });
      expect(took).toBe(true);
      expect((await d.stat('b/data')).size).toBe(data.length);
      expect(sha(await readAll(d, 'b/data'))).toBe(sha(data));
      await d.delete('b');
      await h.assertEmpty();
    });

    it('a wrong digest throws ContentMismatchError and stores nothing; what was there stays', async () => {
      const data = randomBytes(3 * MiB);
      const put = (path: string) =>
        d.putVerified!(path, Readable.from(chunks(data, 64 * 1024)), {
          length: data.length,
          sha256: sha(data.subarray(1)),
        });
      await expect(put('new/data')).rejects.toBeInstanceOf(ContentMismatchError);
      await expect(d.stat('new/data')).rejects.toBeInstanceOf(PathNotFoundError);
      await d.putContent('kept/data', 'kept');
      await expect(put('kept/data')).rejects.toBeInstanceOf(ContentMismatchError);
      expect((await d.getContent('kept/data')).toString()).toBe('kept');
      await d.delete('kept');
      await h.assertEmpty();
    });

    it('a body shorter than announced, or one that fails midway, stores nothing', async () => {
      const data = randomBytes(2 * MiB);
      await expect(
        d.putVerified!('short/data', Readable.from(chunks(data, 64 * 1024)), {
          length: data.length + 1,
          sha256: sha(data),
        }),
      ).rejects.toBeInstanceOf(ContentMismatchError);
      await expect(d.stat('short/data')).rejects.toBeInstanceOf(PathNotFoundError);
      const failing = new Readable({
        read() {
          this.push(data.subarray(0, MiB));
          this.destroy(new Error('client went away'));
        },
      });
      await expect(d.putVerified!('cut/data', failing, { length: data.length, sha256: sha(data) })).rejects.toThrow();
      await expect(d.stat('cut/data')).rejects.toBeInstanceOf(PathNotFoundError);
      await h.assertEmpty();
    });
  });
}
