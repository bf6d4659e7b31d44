/**
 * Writers on S3 (versitygw, posix backend): a failed writer leaves the file as it was, part uploads run several at
 * once while the next part fills, and the pool of part buffers bounds the memory of all writers and shares it.
 */
import { randomBytes } from 'node:crypto';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { settled } from '../../../src/registry/storage/driver.js';
import { S3Driver } from '../../../src/registry/storage/s3/s3-driver.js';
import { fileVersitygw, openUploads, versitygwAvailable, watchCalls } from '../../helpers/versitygw.js';

const MiB = 1024 * 1024;
const available = versitygwAvailable();
const s = fileVersitygw(available);

describe.skipIf(!available)('S3 writers on versitygw', () => {
  const chunks = (data: Buffer) =>
    Readable.from(
      Array.from({ length: Math.ceil(data.length / MiB) }, (_, i) => data.subarray(i * MiB, (i + 1) * MiB)),
    );

  it('a writer that fails mid-stream leaves the file as it was and no upload open', async () => {
    const bucket = await s().createBucket();
    const d = new S3Driver({ client: s().client(), bucket, partSize: 5 * MiB });
    const before = randomBytes(2 * MiB);
    await pipeline(chunks(before), await d.writer('u/data', { append: true }));
    async function* failing() {
      for (let i = 0; i < 7; i++) yield randomBytes(MiB);
      throw new Error('client went away');
    }
    const w = await d.writer('u/data', { append: true });
    await expect(pipeline(Readable.from(failing()), w)).rejects.toThrow('client went away');
    // a part may still be in flight when the pipeline fails: the writer closes once it settled
    await settled(w);
    expect((await d.stat('u/data')).size).toBe(before.length);
    expect((await d.getContent('u/data')).equals(before)).toBe(true);
    expect(await openUploads(s().client(), bucket)).toEqual([]);
  });

  it('beyond maxPartBuffers writers at once, a new writer waits until one finishes', async () => {
    const bucket = await s().createBucket();
    const d = new S3Driver({ client: s().client(), bucket, partSize: 5 * MiB, maxPartBuffers: 1 });
    const first = await d.writer('one/data', { append: true });
    let secondOpen = false;
    const second = d.writer('two/data', { append: true }).then((w) => {
      secondOpen = true;
      return w;
    });
    first.write(randomBytes(MiB));
    await new Promise((r) => setTimeout(r, 300));
    expect(secondOpen).toBe(false);
    await new Promise<void>((resolve, reject) => first.end((err?: Error | null) => (err ? reject(err) : resolve())));
    await pipeline(chunks(randomBytes(MiB)), await second);
    expect(secondOpen).toBe(true);
    expect((await d.stat('one/data')).size).toBe(MiB);
    expect((await d.stat('two/data')).size).toBe(MiB);
    // a writer that fails gives its slot back too
    async function* failing() {
      yield randomBytes(10);
      throw new Error('gone');
    }
    const three = await d.writer('three/data', { append: true });
    await expect(pipeline(Readable.from(failing()), three)).rejects.toThrow('gone');
    await settled(three);
    await pipeline(chunks(randomBytes(10)), await d.writer('four/data', { append: true }));
    expect((await d.stat('four/data')).size).toBe(10);
  });

  it('a writer uploads partsInFlight parts at once while it fills the next, and records them in order', async () => {
    const bucket = await s().createBucket();
    const client = s().client();
    // odd parts take longer, so uploads finish out of order
    const parts = watchCalls(client, 'UploadPartCommand', (n) => (n % 2 === 1 ? 250 : 20));
    const d = new S3Driver({ client, bucket, partSize: 5 * MiB, partsInFlight: 2 });
    // four parts and a tail in one writer, then seven more MiB appended by another
    const first = randomBytes(23 * MiB);
    await pipeline(chunks(first), await d.writer('u/data', { append: true }));
    expect(parts.most).toBe(2);
    expect(parts.finished.slice(0, 2)).toEqual([2, 1]);
    const second = randomBytes(7 * MiB);
    await pipeline(chunks(second), await d.writer('u/data', { append: true }));
    expect((await d.stat('u/data')).size).toBe(30 * MiB);
    expect((await d.getContent('u/data')).equals(Buffer.concat([first, second]))).toBe(true);
    expect(await openUploads(client, bucket)).toEqual([]);
  });

  it("a writer waiting for a part buffer gets the first one a busy writer's finished part gives back", async () => {
    const bucket = await s().createBucket();
    const client = s().client();
    // part 1 finishes well before part 2
    watchCalls(client, 'UploadPartCommand', (n) => (n === 1 ? 100 : 600));
    const d = new S3Driver({ client, bucket, partSize: 5 * MiB, maxPartBuffers: 2, partsInFlight: 2 });
    const busy = await d.writer('busy/data', { append: true });
    const write = (w: Writable, bytes: Buffer) =>
      new Promise<void>((resolve, reject) => w.write(bytes, (err) => (err ? reject(err) : resolve())));
    // part 1 goes up, and the busy writer takes the pool's second buffer for the next
    await write(busy, randomBytes(5 * MiB));
    const waiter = d.writer('waiter/data', { append: true });
    // part 2 fills that buffer: the busy writer needs a third, and the pool has none
    const busyWrites = write(busy, randomBytes(6 * MiB));
    // part 1's buffer goes to the writer that waited first, not back to the busy writer
    const first = await Promise.race([waiter.then(() => 'waiter'), busyWrites.then(() => 'busy')]);
    expect(first).toBe('waiter');
    await busyWrites;
    await pipeline(chunks(randomBytes(MiB)), await waiter);
    await new Promise<void>((resolve, reject) => busy.end((err?: Error | null) => (err ? reject(err) : resolve())));
    expect((await d.stat('busy/data')).size).toBe(11 * MiB);
    expect((await d.stat('waiter/data')).size).toBe(MiB);
    await d.delete('busy');
    expect(await openUploads(client, bucket)).toEqual([]);
  });
});
