/**
 * The S3 driver on a real S3 server (versitygw, posix backend): the shared driver contract, and what only S3 has
 * (distribution's key layout under a prefix, multipart uploads staged across processes and aborted on delete,
 * blob reads past the SDK).
 */
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import diagnostics from 'node:diagnostics_channel';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { BlobStore } from '../../../src/registry/storage/blob-store.js';
import { PathNotFoundError, StorageUnavailableError } from '../../../src/registry/storage/driver.js';
import { pathFor } from '../../../src/registry/storage/paths.js';
import { parseDigest } from '../../../src/registry/reference.js';
import { S3Driver } from '../../../src/registry/storage/s3/s3-driver.js';
import { RAW_MIN_BYTES } from '../../../src/registry/storage/s3/s3-raw-get.js';
import { describeDriverContract } from '../../helpers/driver-contract.js';
import { describePutVerified } from '../../helpers/driver-put-verified.js';
import { fileVersitygw, openUploads, versitygwAvailable, watchCalls } from '../../helpers/versitygw.js';

const MiB = 1024 * 1024;
const available = versitygwAvailable();
const gateway = fileVersitygw(available);

async function allKeys(client: S3Client, bucket: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of out.Contents ?? []) keys.push(o.Key as string);
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/**
 * The requests a driver built on `client` sends to `endpoint`: through the SDK (command names, counted where a
 * response is parsed, so a presigned URL built locally is not one) and past it (undici's request channel, methods).
 */
function countRequests(client: S3Client, endpoint: string) {
  const sdk: string[] = [];
  const direct: string[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      sdk.push(context.commandName ?? '?');
      return next(args);
    },
    { step: 'deserialize', name: 'countRequests' },
  );
  const origin = new URL(endpoint).origin;
  const onRequest = (message: unknown): void => {
    const { request } = message as { request: { origin?: string | URL; method: string } };
    if (String(request.origin) === origin) direct.push(request.method);
  };
  diagnostics.subscribe('undici:request:create', onRequest);
  return {
    sdk,
    direct,
    /** Both, in the order sent, the SDK's as the method its command sends. */
    all: () => [...sdk.map((c) => c.replace(/Object(Command)?$/, '').toUpperCase()), ...direct],
    reset: () => {
      sdk.length = 0;
      direct.length = 0;
    },
    stop: () => diagnostics.unsubscribe('undici:request:create', onRequest),
  };
}

function s3Harness(prefix: string) {
  return () => {
    let bucket = '';
    const s = gateway;
    const driver = () => new S3Driver({ client: s().client(), bucket, prefix, partSize: 5 * MiB });
    return {
      make: async () => {
        bucket = await s().createBucket();
        return driver();
      },
      sibling: async () => driver(),
      assertEmpty: async () => expect(await allKeys(s().client(), bucket)).toEqual([]),
      cleanup: async () => {
        // every test must leave no multipart upload open behind what it deleted or finished
        const c = s().client();
        expect(await openUploads(c, bucket)).toEqual([]);
      },
    };
  };
}

describe.skipIf(!available)('S3 driver on versitygw', () => {
  describeDriverContract('s3 (no prefix)', s3Harness(''), 120_000);
  describeDriverContract('s3 (prefix reg/v)', s3Harness('/reg/v/'), 120_000);
  describePutVerified('s3 (prefix reg/v)', s3Harness('/reg/v/'), 120_000);
});

describe.skipIf(!available)('S3 driver specifics on versitygw', () => {
  const s = gateway;
  const chunks = (data: Buffer) =>
    Readable.from(
      Array.from({ length: Math.ceil(data.length / MiB) }, (_, i) => data.subarray(i * MiB, (i + 1) * MiB)),
    );

  it('keys are the prefix joined to distribution paths, as distribution lays out a bucket', async () => {
    const bucket = await s().createBucket();
    const d = new S3Driver({ client: s().client(), bucket, prefix: '/reg/' });
    await d.putContent('docker/registry/v2/repositories/a/b/_layers/sha256/ab/link', 'sha256:ab');
    expect(await allKeys(s().client(), bucket)).toEqual([
      'reg/docker/registry/v2/repositories/a/b/_layers/sha256/ab/link',
    ]);
    const bare = new S3Driver({ client: s().client(), bucket });
    expect((await bare.getContent('reg/docker/registry/v2/repositories/a/b/_layers/sha256/ab/link')).toString()).toBe(
      'sha256:ab',
    );
  });

  it("a blob's size is one request, held or not (no LIST to tell a missing key from a directory)", async () => {
    const client = s().client();
    const sent = countRequests(client, s().endpoint);
    const bucket = await s().createBucket();
    const d = new S3Driver({ client, bucket, prefix: 'reg' });
    try {
      const blobs = new BlobStore(d);
      const held = parseDigest(`sha256:${'a'.repeat(64)}`);
      await d.putContent(pathFor({ kind: 'blobData', digest: held }), 'abc');
      sent.reset();
      expect(await blobs.size(held)).toBe(3);
      expect(await blobs.size(parseDigest(`sha256:${'b'.repeat(64)}`))).toBeUndefined();
      expect(sent.all()).toEqual(['HEAD', 'HEAD']);
    } finally {
      sent.stop();
      await d.close();
    }
  });

  it('small reads, writes and HEADs go past the SDK, for any key, and a staged file is left to it', async () => {
    const client = s().client();
    const sent = countRequests(client, s().endpoint);
    const bucket = await s().createBucket();
    const d = new S3Driver({ client, bucket, prefix: 'reg', partSize: 5 * MiB });
    try {
      // Every character S3 signs escaped, and some it does not.
      const path = "odd keys/a+b=c&d;e,f!g'h(i)j*k~l@m$n%o:p é/link";
      await d.putContent(path, 'sha256:one');
      expect((await d.getContent(path)).toString()).toBe('sha256:one');
      expect((await d.statFile(path)).size).toBe(10);
      await expect(d.getContent('odd keys/absent')).rejects.toBeInstanceOf(PathNotFoundError);
      expect(sent.sdk).toEqual([]);
      expect(sent.direct.sort()).toEqual(['GET', 'GET', 'HEAD', 'PUT']);
      expect(await allKeys(client, bucket)).toEqual([`reg/${path}`]);

      // A staged upload's marker is not its content: the SDK path completes the upload, then reads it.
      const staged = randomBytes(6 * MiB);
      await pipeline(
        Readable.from([staged.subarray(0, MiB), staged.subarray(MiB)]),
        await d.writer('up/data', { append: true }),
      );
      sent.reset();
      expect((await d.getContent('up/data')).equals(staged)).toBe(true);
      expect(sent.sdk).toContain('CompleteMultipartUploadCommand');
    } finally {
      sent.stop();
      await d.close();
    }
  }, 60_000);

  it('a staged upload holds an open multipart upload that deleting its directory aborts', async () => {
    const bucket = await s().createBucket();
    const d = new S3Driver({ client: s().client(), bucket, partSize: 5 * MiB });
    const other = new S3Driver({ client: s().client(), bucket, partSize: 5 * MiB });
    await d.putContent('r/_uploads/u1/startedat', 'now');
    await pipeline(chunks(randomBytes(6 * MiB)), await d.writer('r/_uploads/u1/data', { append: true }));
    await pipeline(chunks(randomBytes(MiB)), await other.writer('r/_uploads/u1/data', { append: true }));
    expect(await openUploads(s().client(), bucket)).toHaveLength(1);
    expect((await d.stat('r/_uploads/u1/data')).size).toBe(7 * MiB);
    await other.delete('r/_uploads/u1');
    expect(await openUploads(s().client(), bucket)).toEqual([]);
    expect(await allKeys(s().client(), bucket)).toEqual([]);
  });

  it('moves above the copy threshold go part by part, several at once, and keep every byte', async () => {
    const bucket = await s().createBucket();
    const client = s().client();
    const copies = watchCalls(client, 'UploadPartCopyCommand');
    const d = new S3Driver({
      client,
      bucket,
      partSize: 5 * MiB,
      multipartCopyThreshold: 5 * MiB,
      multipartCopyChunkSize: 5 * MiB,
      multipartCopyConcurrency: 3,
    });
    // six ranges of 5 MiB and a remainder folded into the last: six parts, three at a time
    const data = randomBytes(31 * MiB + 1);
    await d.putContent('from/data', data);
    await d.move('from/data', 'to/data');
    expect(copies.started).toBe(6);
    expect(copies.most).toBe(3);
    expect((await d.getContent('to/data')).equals(data)).toBe(true);
    expect(await allKeys(s().client(), bucket)).toEqual(['to/data']);
    expect(await openUploads(s().client(), bucket)).toEqual([]);
  });
});

/**
 * Sends SIGSTOP to `pid` and waits until every thread of it has stopped: the signal takes effect on each thread
 * when it next runs, which on a busy machine may come after the caller's next request has arrived.
 */
async function stopProcess(pid: number): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  const deadline = Date.now() + 5_000;
  for (;;) {
    const tasks = await readdir(`/proc/${pid}/task`);
    const states = await Promise.all(
      tasks.map(async (t) => (await readFile(`/proc/${pid}/task/${t}/stat`, 'utf8')).split(') ')[1]?.charAt(0)),
    );
    if (states.every((st) => st === 'T' || st === 't')) return;
    if (Date.now() > deadline) throw new Error(`process ${pid} did not stop (thread states ${states.join('')})`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** What `copyTo` writes for the range `start`..`end` of `path`. */
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

/**
 * Blob reads on the pull path past the SDK (s3-fast-get.ts): the bytes of every range right, no GetObject through
 * the SDK while S3 answers plainly, and the SDK's outcomes (a missing key, a staged upload, a range past the end)
 * for everything else.
 */
describe.skipIf(!available)('S3 blob reads past the SDK', () => {
  it('serves every range without a GetObject through the SDK, and leaves the rest to it', async () => {
    const s3 = gateway();
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
  it('reads a large range on a socket of its own, into a response or any stream, and leaves the rest to the SDK', async () => {
    const s3 = gateway();
    const client = s3.client();
    const bucket = await s3.createBucket();
    const d = new S3Driver({ client, bucket, prefix: 'reg', partSize: 5 * MiB });
    const sent = countRequests(client, s3.endpoint);
    const http = createServer((req, res) => {
      const [start, end] = (req.url ?? '').slice(1).split('-').map(Number) as [number, number];
      d.copyTo('blobs/big', { start, end }, res).then(
        () => res.end(),
        () => res.destroy(),
      );
    });
    try {
      const data = randomBytes(RAW_MIN_BYTES + 5 * MiB + 7);
      await d.putContent('blobs/big', data);
      sent.reset();
      // A stream that keeps its chunks gets batches of its own; a range, or the whole object.
      expect((await copied(d, 'blobs/big', 0, data.length - 1)).equals(data)).toBe(true);
      const [start, end] = [3, RAW_MIN_BYTES + 2];
      expect((await copied(d, 'blobs/big', start, end)).equals(data.subarray(start, end + 1))).toBe(true);
      // An HTTP response reuses its batches: what a client reads is still every byte.
      await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
      const { port } = http.address() as AddressInfo;
      const fetched = async (a: number, b: number): Promise<Buffer> =>
        Buffer.from(await (await fetch(`http://127.0.0.1:${port}/${a}-${b}`)).arrayBuffer());
      expect((await fetched(0, data.length - 1)).equals(data)).toBe(true);
      expect((await fetched(start, end)).equals(data.subarray(start, end + 1))).toBe(true);
      // none of these went through the SDK or the connection pool
      expect(sent.all()).toEqual([]);

      // Not the bytes asked for, so left to the SDK: a missing key, a range past the end, a staged upload.
      await expect(copied(d, 'blobs/absent', 0, RAW_MIN_BYTES)).rejects.toBeInstanceOf(PathNotFoundError);
      const past = data.length + 10;
      expect((await copied(d, 'blobs/big', past, past + RAW_MIN_BYTES)).length).toBe(0);
      const staged = randomBytes(RAW_MIN_BYTES + MiB);
      const parts = Readable.from([staged.subarray(0, 5 * MiB), staged.subarray(5 * MiB)]);
      await pipeline(parts, await d.writer('up/data', { append: true }));
      sent.reset();
      expect((await copied(d, 'up/data', 0, staged.length - 1)).equals(staged)).toBe(true);
      expect(sent.sdk).toContain('CompleteMultipartUploadCommand');
    } finally {
      sent.stop();
      http.close();
      await d.close();
    }
  }, 60_000);

  it('an S3 that stops answering fails a call past the SDK in its time, with no second wait through the SDK', async () => {
    const s3 = gateway();
    const bucket = await s3.createBucket();
    // The SDK client has no timeout of its own here: a call handed to it would wait for as long as S3 is stopped.
    const d = new S3Driver({ client: s3.client(), bucket, prefix: 'reg', direct: { timeoutMs: 400 } });
    const pid = s3.pid() as number;
    try {
      await d.putContent('a/link', 'sha256:x');
      const big = randomBytes(RAW_MIN_BYTES);
      await d.putContent('blobs/big', big);
      await stopProcess(pid);
      const started = performance.now();
      await expect(d.getContent('a/link')).rejects.toBeInstanceOf(StorageUnavailableError);
      await expect(d.statFile('a/link')).rejects.toBeInstanceOf(StorageUnavailableError);
      await expect(copied(d, 'a/link', 0, 7)).rejects.toBeInstanceOf(StorageUnavailableError);
      expect(performance.now() - started).toBeLessThan(4_000);
      // a large range, read on a socket of its own: the same, in its own time
      const raw = performance.now();
      await expect(copied(d, 'blobs/big', 0, big.length - 1)).rejects.toBeInstanceOf(StorageUnavailableError);
      expect(performance.now() - raw).toBeLessThan(2_000);
      process.kill(pid, 'SIGCONT');
      expect((await d.getContent('a/link')).toString()).toBe('sha256:x');
    } finally {
      process.kill(pid, 'SIGCONT');
      await d.close();
    }
  }, 20_000);

  it('holds S3 back while the response is slow, and stops when the response closes', async () => {
    const s3 = gateway();
    const bucket = await s3.createBucket();
    const d = new S3Driver({ client: s3.client(), bucket, prefix: 'reg', partSize: 5 * MiB });
    try {
      const data = randomBytes(24 * MiB);
      await d.putContent('blobs/big', data);
      // A response taking 64 KiB a millisecond at most: what waits in it must stay near one batch, not the blob.
      const parts: Buffer[] = [];
      let mostWaiting = 0;
      const slow: Writable = new Writable({
        highWaterMark: 64 * 1024,
        write(chunk: Buffer, _enc, cb) {
          mostWaiting = Math.max(mostWaiting, slow.writableLength);
          parts.push(chunk);
          setTimeout(cb, 1);
        },
      });
      await d.copyTo('blobs/big', { start: 0, end: data.length - 1 }, slow);
      await new Promise((resolve) => slow.end(resolve));
      expect(Buffer.concat(parts).equals(data)).toBe(true);
      expect(mostWaiting).toBeLessThanOrEqual(2 * MiB);

      // A response that closes after 1 MiB: the copy rejects as the client's going, and the driver serves on.
      let written = 0;
      const closing: Writable = new Writable({
        write(chunk: Buffer, _enc, cb) {
          written += chunk.length;
          if (written >= MiB) closing.destroy();
          setTimeout(cb, 1);
        },
      });
      await expect(d.copyTo('blobs/big', { start: 0, end: data.length - 1 }, closing)).rejects.toMatchObject({
        code: 'ERR_STREAM_PREMATURE_CLOSE',
      });
      expect(written).toBeLessThan(data.length);
      expect((await copied(d, 'blobs/big', 5, 2 * MiB)).equals(data.subarray(5, 2 * MiB + 1))).toBe(true);
    } finally {
      await d.close();
    }
  }, 60_000);
});
