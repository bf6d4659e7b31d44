/**
 * Requests past the SDK (s3-direct.ts) go where the SDK's own would, signed as the SDK would sign them: compared
 * with the SDK's presigned URL of the same key and with its signer, for the ways a bucket is addressed. The
 * requests themselves are tested on versitygw in test/integration/registry/s3-driver.test.ts; a server that refuses
 * this path's signing and takes the SDK's is a stand-in here (a small HTTP server), as no S3 server here does that.
 */
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { S3Driver } from '../../../src/registry/storage/s3/s3-driver.js';
import { escapeKey, metadataOf, S3Direct } from '../../../src/registry/storage/s3/s3-direct.js';

const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const KEYS = ['docker/registry/v2/blobs/sha256/ab/abcd/data', "odd keys/a+b=c&d;e,f!g'h(i)j*k~l@m$n%o:p é/link"];

describe('S3 requests past the SDK', () => {
  it.each([
    ['path style on a custom endpoint', { endpoint: 'http://127.0.0.1:7070', forcePathStyle: true }],
    ['path style under an endpoint path', { endpoint: 'https://objects.example.net/s3', forcePathStyle: true }],
    ['virtual host on AWS', {}],
    ['virtual host on a custom endpoint', { endpoint: 'https://objects.example.net' }],
  ])('%s: the URL of a key is the SDK’s', async (_label, settings) => {
    const client = new S3Client({ region: 'eu-west-3', credentials, ...settings });
    const direct = new S3Direct(client, 'my-bucket');
    try {
      for (const key of KEYS) {
        const sdk = new URL(await getSignedUrl(client, new GetObjectCommand({ Bucket: 'my-bucket', Key: key })));
        const ours = await direct.sign('GET', key);
        expect(ours.origin + ours.path).toBe(sdk.origin + sdk.pathname);
        expect(ours.headers.host).toBe(sdk.host);
      }
    } finally {
      await direct.close();
    }
  });

  it('signs with the client’s credentials, region and payload, as SigV4 for S3 wants', async () => {
    const client = new S3Client({
      region: 'eu-west-3',
      credentials,
      endpoint: 'http://127.0.0.1:7070',
      forcePathStyle: true,
    });
    const direct = new S3Direct(client, 'b');
    try {
      const put = await direct.sign('PUT', 'a/b', { 'content-type': 'application/octet-stream' }, Buffer.from('hi'));
      expect(put.headers['x-amz-content-sha256']).toBe(
        '8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4',
      );
      expect(put.headers['content-length']).toBe('2');
      expect(put.headers.authorization).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-3\/s3\/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$/,
      );
      const head = await direct.sign('HEAD', 'a/b');
      expect(head.headers['x-amz-content-sha256']).toBe(
        'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      );
      expect(head.headers['content-length']).toBeUndefined();
    } finally {
      await direct.close();
    }
  });

  it('escapes every byte of a key but the unreserved ones, one segment at a time', () => {
    expect(escapeKey("a b/c+d!'()*~-_.é")).toBe('a%20b/c%2Bd%21%27%28%29%2A~-_.%C3%A9');
  });

  it('reads user metadata as the SDK does: the x-amz-meta- prefix removed', () => {
    expect(metadataOf({ 'x-amz-meta-regctl-staged': '1', 'content-length': '3', 'x-amz-meta-n': '7' })).toEqual({
      'regctl-staged': '1',
      n: '7',
    });
  });

  it('a server refusing this path’s signing gets the SDK’s calls only, after three refusals, for a while', async () => {
    let direct = 0;
    let sdk = 0;
    // The SDK marks each of its requests with an invocation id; this path sends none.
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const fromSdk = req.headers['amz-sdk-invocation-id'] !== undefined;
      if (fromSdk) sdk++;
      else direct++;
      if (!fromSdk) {
        res.writeHead(403, { 'content-type': 'application/xml' });
        res.end('<Error><Code>SignatureDoesNotMatch</Code><Message>no</Message></Error>');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '8' });
      res.end(req.method === 'HEAD' ? undefined : 'sha256:x');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = new S3Client({ region: 'us-east-1', credentials, endpoint, forcePathStyle: true });
    const d = new S3Driver({ client, bucket: 'b', endpoint, direct: { refusalPauseMs: 300 } });
    try {
      for (let i = 0; i < 5; i++) expect((await d.getContent('x/link')).toString()).toBe('sha256:x');
      expect(await d.statFile('x/link')).toMatchObject({ size: 8 });
      expect({ direct, sdk }).toEqual({ direct: 3, sdk: 6 });
      await sleep(350);
      expect((await d.getContent('x/link')).toString()).toBe('sha256:x');
      expect({ direct, sdk }).toEqual({ direct: 4, sdk: 7 });
    } finally {
      await d.close();
      client.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
