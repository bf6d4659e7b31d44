/**
 * Blob reads on the pull path past the SDK (s3-fast-get.ts), on a real S3 server (versitygw): the bytes of every
 * range right, no GetObject through the SDK while S3 answers plainly, and the SDK's outcomes (a missing key, a
 * staged upload, a range past the end) for everything else.
 */
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PathNotFoundError } from '../../../src/registry/storage/driver.js';
import { S3Driver } from '../../../src/registry/storage/s3/s3-driver.js';
import { startVersitygw, versitygwAvailable, type S3Server } from '../../helpers/versitygw.js';

const MiB = 1024 * 1024;
const available = versitygwAvailable();
let server: S3Server | undefined;

beforeAll(async () => {
  if (available) server = await startVersitygw();
}, 60_000);
afterAll(async () => server?.stop());

/** What `copyTo` writes, and how many GetObject answers the SDK parsed meanwhile. */
async function copied(d: S3Driver, path: string, start: number, end: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      parts.push(chunk);
      cb();
    },
  });
  await d.copyTo(path, { start, end }, out);
  return Buffer.concat(parts);
}

describe.skipIf(!available)('S3 blob reads past the SDK', () => {
  it('serves every range without a GetObject through the SDK, and leaves the rest to it', async () => {
    const s3 = server as S3Server;
    const client = s3.client();
    let sdkGets = 0;
    // Counted where a response is parsed: a presigned URL is built by the same stack but never sent.
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'GetObjectCommand') sdkGets++;
        return next(args);
      },
      { step: 'deserialize', name: 'countGets' },
    );
    const bucket = await s3.createBucket();
    const d = new S3Driver({ client, bucket, prefix: 'reg', partSize: 5 * MiB });
    try {
      const data = randomBytes(3 * MiB + 5);
      await d.putContent('blobs/data', data);
      expect((await copied(d, 'blobs/data', 0, data.length - 1)).equals(data)).toBe(true);
      expect((await copied(d, 'blobs/data', 1000, 2 * MiB)).equals(data.subarray(1000, 2 * MiB + 1))).toBe(true);
      expect((await copied(d, 'blobs/data', data.length - 1, data.length - 1)).equals(data.subarray(-1))).toBe(true);
      expect(sdkGets).toBe(0);

      await expect(copied(d, 'blobs/absent', 0, 9)).rejects.toBeInstanceOf(PathNotFoundError);
      expect((await copied(d, 'blobs/data', data.length + 10, data.length + 20)).length).toBe(0);
      // A staged upload's bytes are in parts S3 cannot serve yet: the SDK path completes them first.
      const staged = randomBytes(6 * MiB);
      const chunks = Readable.from([staged.subarray(0, 3 * MiB), staged.subarray(3 * MiB)]);
      await pipeline(chunks, await d.writer('up/data', { append: true }));
      expect((await copied(d, 'up/data', 0, staged.length - 1)).equals(staged)).toBe(true);
      expect(sdkGets).toBeGreaterThanOrEqual(3);
    } finally {
      await d.close();
    }
  }, 60_000);
});
