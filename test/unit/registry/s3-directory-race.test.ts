/**
 * The S3 client's retry of `409 ExistingObjectIsDirectory`, what an S3-compatible server keeping objects as files
 * (versitygw's posix backend) answers when a concurrent delete removed an object's parent directory under it.
 * The race cannot be brought about on demand against the real gateway, so a local HTTP server answers in its
 * place, with the gateway's error body.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import { retryDirectoryRace } from '../../../src/registry/storage/s3/s3-client.js';

const RACE = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>ExistingObjectIsDirectory</Code><Message>Existing Object is a directory.</Message></Error>`;
const DENIED = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>AccessDenied</Code><Message>Access Denied.</Message></Error>`;

let server: Server | undefined;
afterEach(async () => {
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

/** A server answering each PUT with the next of `answers` ([status, body]); the last one repeats. */
async function fakeS3(answers: [number, string][]): Promise<{ client: S3Client; puts: () => number }> {
  let puts = 0;
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const [status, body] = answers[Math.min(puts, answers.length - 1)] as [number, string];
      puts += 1;
      res.writeHead(status, { 'content-type': 'application/xml', etag: '"x"' }).end(body);
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const client = new S3Client({
    endpoint: `http://127.0.0.1:${(server?.address() as AddressInfo).port}`,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
  retryDirectoryRace(client, async () => undefined);
  return { client, puts: () => puts };
}

const put = (client: S3Client, body: Buffer | Readable) =>
  client.send(new PutObjectCommand({ Bucket: 'b', Key: 'k', Body: body, ContentLength: 5 }));

describe('S3 client: the directory race of file-backed S3 servers', () => {
  it('tries a write with a body it can send again, until it is taken', async () => {
    const s3 = await fakeS3([
      [409, RACE],
      [409, RACE],
      [200, ''],
    ]);
    await expect(put(s3.client, Buffer.from('hello'))).resolves.toBeDefined();
    expect(s3.puts()).toBe(3);
  });

  it('gives up after four tries, with the server error', async () => {
    const s3 = await fakeS3([[409, RACE]]);
    await expect(put(s3.client, Buffer.from('hello'))).rejects.toMatchObject({ name: 'ExistingObjectIsDirectory' });
    expect(s3.puts()).toBe(4);
  });

  it('does not retry other errors, nor a streamed body it could not send again', async () => {
    const denied = await fakeS3([[403, DENIED]]);
    await expect(put(denied.client, Buffer.from('hello'))).rejects.toMatchObject({ name: 'AccessDenied' });
    expect(denied.puts()).toBe(1);
    await new Promise((resolve) => server?.close(resolve));
    const race = await fakeS3([[409, RACE]]);
    await expect(put(race.client, Readable.from([Buffer.from('hello')]))).rejects.toMatchObject({
      name: 'ExistingObjectIsDirectory',
    });
    expect(race.puts()).toBe(1);
  });
});
