/**
 * `regctl serve --storage s3://...` as replicas and under faults, on versitygw: one push whose requests land on two
 * processes sharing a bucket, and S3 going away and coming back mid-upload.
 */
import { ListMultipartUploadsCommand, ListObjectsV2Command, ListPartsCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth } from '../../helpers/auth.js';
import { builtCliPresent, startRegistryProcess, type RegistryProcess } from '../../helpers/serve-process.js';
import { startVersitygw, versitygwAvailable, type S3Server } from '../../helpers/versitygw.js';

const ready = versitygwAvailable() && builtCliPresent();
let s3: S3Server;

beforeAll(async () => {
  if (ready) s3 = await startVersitygw();
}, 60_000);
afterAll(async () => s3?.stop());

const storageArgs = (bucket: string, prefix: string) => [
  '--storage',
  `s3://${bucket}/${prefix}`,
  '--s3-endpoint',
  s3.endpoint,
  '--s3-path-style',
];

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function keys(bucket: string): Promise<string[]> {
  const page = await s3.client().send(new ListObjectsV2Command({ Bucket: bucket }));
  return (page.Contents ?? []).map((o) => o.Key as string);
}

async function openUploads(bucket: string): Promise<number> {
  return ((await s3.client().send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).length;
}

/** Parts uploaded to the bucket's one open multipart upload. */
async function partsStaged(bucket: string): Promise<number> {
  const c = s3.client();
  const upload = ((await c.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [])[0];
  if (!upload) return 0;
  const parts = await c.send(new ListPartsCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }));
  return (parts.Parts ?? []).length;
}

function getBlob(reg: RegistryProcess, name: string, digest: string): Promise<Response> {
  return fetch(`${reg.url}/v2/${name}/blobs/${digest}`, {
    headers: { authorization: basicAuth(reg.username, reg.password) },
  });
}

describe.skipIf(!ready)('one push, its requests spread over two regctl processes on one bucket', () => {
  let bucket: string;
  let a: RegistryProcess;
  let b: RegistryProcess;
  beforeAll(async () => {
    bucket = await s3.createBucket();
    [a, b] = await Promise.all([
      startRegistryProcess({ storageArgs: storageArgs(bucket, 'rep'), env: s3.env() }),
      startRegistryProcess({ storageArgs: storageArgs(bucket, 'rep'), env: s3.env() }),
    ]);
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
  });

  const call = (
    reg: RegistryProcess,
    method: string,
    path: string,
    body?: Buffer,
    headers: Record<string, string> = {},
  ) =>
    fetch(`${reg.url}${path}`, {
      method,
      body: body === undefined ? undefined : Uint8Array.from(body),
      headers: { authorization: basicAuth(reg.username, reg.password), ...headers },
    });
  /** The upload's path (Location without the origin). */
  const uploadPath = (res: Response) => new URL(res.headers.get('location') as string, 'http://x').pathname;

  it('1 MiB PATCHes alternate between processes; the PUT on the other completes; nothing stays staged', async () => {
    const MiB = 1024 * 1024;
    const data = Buffer.alloc(9 * MiB + 77);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32BE(i, i);
    const started = await call(a, 'POST', '/v2/rp/blob/blobs/uploads/');
    expect(started.status).toBe(202);
    const path = uploadPath(started);
    let offset = 0;
    for (let i = 0; offset < data.length; i++) {
      const chunk = data.subarray(offset, offset + MiB);
      const res = await call(i % 2 === 0 ? b : a, 'PATCH', path, chunk, {
        'content-type': 'application/octet-stream',
        'content-range': `${offset}-${offset + chunk.length - 1}`,
      });
      expect(res.status, await res.text()).toBe(202);
      offset += chunk.length;
      expect(res.headers.get('range')).toBe(`0-${offset - 1}`);
    }
    // a chunk replayed at an old offset is refused by the process that did not receive it
    const stale = await call(b, 'PATCH', path, data.subarray(0, 10), { 'content-range': '0-9' });
    expect(stale.status).toBe(416);
    await stale.arrayBuffer();
    const status = await call(b, 'GET', path);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe(`0-${data.length - 1}`);
    const digest = sha256(data);
    const done = await call(a, 'PUT', `${path}?digest=${digest}`);
    expect(done.status, await done.text()).toBe(201);
    const got = await getBlob(b, 'rp/blob', digest);
    expect(got.status).toBe(200);
    expect(Buffer.from(await got.arrayBuffer()).equals(data)).toBe(true);
    expect(await openUploads(bucket)).toBe(0);
    expect((await keys(bucket)).filter((k) => k.includes('/_uploads/'))).toEqual([]);
  });

  it('DELETE on the other process cancels a staged upload and aborts its multipart upload', async () => {
    const started = await call(b, 'POST', '/v2/rp/cancel/blobs/uploads/');
    const path = uploadPath(started);
    const body = Buffer.alloc(9 * 1024 * 1024, 7);
    const res = await call(b, 'PATCH', path, body, { 'content-type': 'application/octet-stream' });
    expect(res.status).toBe(202);
    expect(await openUploads(bucket)).toBe(1);
    const cancelled = await call(a, 'DELETE', path);
    expect(cancelled.status).toBe(204);
    expect(await openUploads(bucket)).toBe(0);
    expect((await call(b, 'GET', path)).status).toBe(404);
  });
});

describe.skipIf(!ready)('a replica killed mid-push: the client retries on another and completes', () => {
  it('kill -9 during a PATCH leaves the upload where the last whole PATCH left it; another process finishes it', async () => {
    const MiB = 1024 * 1024;
    const bucket = await s3.createBucket();
    const [a, b] = await Promise.all([
      startRegistryProcess({ storageArgs: storageArgs(bucket, 'crash'), env: s3.env() }),
      startRegistryProcess({ storageArgs: storageArgs(bucket, 'crash'), env: s3.env() }),
    ]);
    try {
      const auth = (reg: RegistryProcess) => ({ authorization: basicAuth(reg.username, reg.password) });
      const data = Buffer.alloc(20 * MiB);
      for (let i = 0; i < data.length; i += 4096) data.writeUInt32BE(i + 3, i);
      const started = await fetch(`${a.url}/v2/crash/app/blobs/uploads/`, { method: 'POST', headers: auth(a) });
      const upload = new URL(started.headers.get('location') as string, 'http://x').pathname;
      const first = await fetch(`${a.url}${upload}`, {
        method: 'PATCH',
        body: Uint8Array.from(data.subarray(0, 9 * MiB)),
        headers: { ...auth(a), 'content-type': 'application/octet-stream' },
      });
      expect(first.status).toBe(202);

      // a PATCH whose body stalls after 8 MiB (one full part reaches S3), then the process dies
      let sent = 0;
      const stalled = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent >= 8 * MiB) return new Promise<void>(() => undefined);
          controller.enqueue(Uint8Array.from(data.subarray(9 * MiB + sent, 9 * MiB + sent + MiB)));
          sent += MiB;
          return undefined;
        },
      });
      const interrupted = fetch(`${a.url}${upload}`, {
        method: 'PATCH',
        body: stalled,
        duplex: 'half',
        headers: { ...auth(a), 'content-type': 'application/octet-stream' },
      } as RequestInit).catch((err: unknown) => err);
      // wait until the interrupted PATCH's full part sits in the multipart upload, beyond what the session records
      const deadline = Date.now() + 20_000;
      while ((await partsStaged(bucket)) < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await partsStaged(bucket)).toBe(2);
      await a.kill();
      expect(await interrupted).toBeInstanceOf(Error);

      // the client asks another replica where the upload stands and resumes from there
      const status = await fetch(`${b.url}${upload}`, { headers: auth(b) });
      expect(status.status).toBe(204);
      expect(status.headers.get('range')).toBe(`0-${9 * MiB - 1}`);
      const rest = await fetch(`${b.url}${upload}?digest=${sha256(data)}`, {
        method: 'PUT',
        body: Uint8Array.from(data.subarray(9 * MiB)),
        headers: {
          ...auth(b),
          'content-type': 'application/octet-stream',
          'content-range': `${9 * MiB}-${data.length - 1}`,
        },
      });
      expect(rest.status, await rest.text()).toBe(201);
      const got = await getBlob(b, 'crash/app', sha256(data));
      expect(Buffer.from(await got.arrayBuffer()).equals(data)).toBe(true);
      // the part the dead process uploaded past the recorded session went with the completed upload
      expect(await openUploads(bucket)).toBe(0);
      expect((await keys(bucket)).filter((k) => k.includes('/_uploads/'))).toEqual([]);
    } finally {
      await a.kill();
      await b.stop();
    }
  });
});

describe.skipIf(!ready)('S3 unreachable: 503 with Retry-After, nothing half-written, service resumes', () => {
  let own: S3Server;
  let reg: RegistryProcess;
  let bucket: string;
  beforeAll(async () => {
    own = await startVersitygw();
    bucket = await own.createBucket();
    reg = await startRegistryProcess({
      storageArgs: ['--storage', `s3://${bucket}`, '--s3-endpoint', own.endpoint, '--s3-path-style'],
      env: own.env(),
    });
  });
  afterAll(async () => {
    await reg?.stop();
    await own?.stop();
  });

  const call = (method: string, path: string, body?: Buffer, headers: Record<string, string> = {}) =>
    fetch(`${reg.url}${path}`, {
      method,
      body: body === undefined ? undefined : Uint8Array.from(body),
      headers: { authorization: basicAuth(reg.username, reg.password), ...headers },
    });

  it('answers 503 while S3 is down and finishes the interrupted upload once it is back', async () => {
    const MiB = 1024 * 1024;
    const blob = Buffer.from('a blob pushed before the outage');
    const pushed = await call('POST', `/v2/down/app/blobs/uploads/?digest=${sha256(blob)}`, blob, {
      'content-type': 'application/octet-stream',
    });
    expect(pushed.status).toBe(201);
    const started = await call('POST', '/v2/down/app/blobs/uploads/');
    const upload = new URL(started.headers.get('location') as string, 'http://x').pathname;
    const data = Buffer.alloc(10 * MiB);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32BE(i + 1, i);
    const first = await call('PATCH', upload, data.subarray(0, 9 * MiB), {
      'content-type': 'application/octet-stream',
    });
    expect(first.status).toBe(202);

    await own.kill();
    const expectUnavailable = async (res: Response) => {
      const body = (await res.json()) as { errors: { code: string }[] };
      expect(res.status).toBe(503);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(body.errors[0]?.code).toBe('UNAVAILABLE');
    };
    await expectUnavailable(await call('GET', `/v2/down/app/blobs/${sha256(blob)}`));
    await expectUnavailable(
      await call('PATCH', upload, data.subarray(9 * MiB), {
        'content-type': 'application/octet-stream',
        'content-range': `${9 * MiB}-${10 * MiB - 1}`,
      }),
    );
    await expectUnavailable(await call('POST', '/v2/down/app/blobs/uploads/'));
    expect((await fetch(`${reg.url}/healthz`)).status).toBe(503);
    expect(reg.output()).not.toContain(own.secretAccessKey);

    await own.resume();
    expect((await fetch(`${reg.url}/healthz`)).status).toBe(200);
    const got = await call('GET', `/v2/down/app/blobs/${sha256(blob)}`);
    expect(Buffer.from(await got.arrayBuffer()).equals(blob)).toBe(true);
    // the failed PATCH changed nothing: the upload stands where it was and continues from there
    const status = await call('GET', upload);
    expect(status.headers.get('range')).toBe(`0-${9 * MiB - 1}`);
    const rest = await call('PATCH', upload, data.subarray(9 * MiB), {
      'content-type': 'application/octet-stream',
      'content-range': `${9 * MiB}-${10 * MiB - 1}`,
    });
    expect(rest.status).toBe(202);
    const done = await call('PUT', `${upload}?digest=${sha256(data)}`);
    expect(done.status, await done.text()).toBe(201);
    const c = own.client();
    expect(((await c.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).length).toBe(0);
  });
});
