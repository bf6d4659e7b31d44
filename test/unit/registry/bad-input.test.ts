/**
 * Every refused request gets the spec's error code and status, and leaves the data directory exactly as it
 * was (the tree is walked and compared, file by file).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  errorCode,
  pushBlob,
  pushImage,
  rawRequest,
  sha256,
  snapshot,
  startRegistry,
  type TestRegistry,
} from './helpers.js';

let reg: TestRegistry;
let base: { digest: string; config: string; layers: string[] };
beforeAll(async () => {
  reg = await startRegistry({ throttle: { maxFailures: 1000 } });
  base = await pushImage(reg, 'ok/app', 'v1');
});
afterAll(() => reg.stop());

async function refused(req: () => Promise<Response>, status: number, code: string): Promise<void> {
  const before = await snapshot(reg.data);
  const res = await req();
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toContain('application/json');
  expect(await errorCode(res)).toBe(code);
  expect(await snapshot(reg.data)).toEqual(before);
}

const longName = Array.from({ length: 26 }, () => 'abcdefghij').join('/');

describe('names', () => {
  it.each([
    ['upper case', 'Upper/case'],
    ['dot-dot segment', 'a/../b'],
    ['double dot', 'a..b'],
    ['leading separator', '-a'],
    ['too long', longName],
  ])('%s is NAME_INVALID', async (_label, name) => {
    await refused(
      () => rawRequest(reg, 'POST', `/v2/${name}/blobs/uploads/?digest=${sha256('x')}`, 'x'),
      400,
      'NAME_INVALID',
    );
    await refused(() => rawRequest(reg, 'GET', `/v2/${name}/manifests/latest`), 400, 'NAME_INVALID');
    await refused(() => rawRequest(reg, 'PUT', `/v2/${name}/manifests/latest`, '{}'), 400, 'NAME_INVALID');
  });

  it('invalid tags are refused', async () => {
    await refused(() => reg.fetch(`/v2/ok/app/manifests/-bad`, { method: 'PUT', body: '{}' }), 400, 'TAG_INVALID');
    await refused(() => reg.fetch(`/v2/ok/app/manifests/${'t'.repeat(129)}`), 400, 'TAG_INVALID');
  });
});

describe('digests', () => {
  it.each([
    ['malformed hex', 'sha256:zzzz'],
    ['short hex', 'sha256:abcd'],
    ['upper-case hex', `sha256:${'A'.repeat(64)}`],
    ['unknown algorithm', `md5:${'a'.repeat(32)}`],
    ['no algorithm', 'a'.repeat(64)],
  ])('%s is DIGEST_INVALID on upload, blob GET and manifest GET', async (_label, digest) => {
    await refused(
      () => reg.fetch(`/v2/ok/app/blobs/uploads/?digest=${digest}`, { method: 'POST', body: 'data' }),
      400,
      'DIGEST_INVALID',
    );
    await refused(() => reg.fetch(`/v2/ok/app/blobs/${digest}`), 400, 'DIGEST_INVALID');
    if (digest.includes(':')) await refused(() => reg.fetch(`/v2/ok/app/manifests/${digest}`), 400, 'DIGEST_INVALID');
  });

  it('a monolithic body whose digest does not match stores nothing', async () => {
    await refused(
      () => reg.fetch(`/v2/ok/app/blobs/uploads/?digest=${sha256('other')}`, { method: 'POST', body: 'content' }),
      400,
      'DIGEST_INVALID',
    );
    await refused(
      () => reg.fetch(`/v2/fresh/repo/blobs/uploads/?digest=${sha256('other')}`, { method: 'POST', body: 'content' }),
      400,
      'DIGEST_INVALID',
    );
  });

  it('a chunked upload whose digest does not match is removed entirely', async () => {
    const before = await snapshot(reg.data);
    const s = await reg.fetch('/v2/new/chunks/blobs/uploads/', { method: 'POST' });
    const loc = s.headers.get('location') as string;
    await reg.fetch(loc, { method: 'PATCH', body: 'part one', headers: { 'content-range': '0-7' } });
    const put = await reg.fetch(`${loc}?digest=${sha256('something else')}`, { method: 'PUT', body: ' part two' });
    expect(put.status).toBe(400);
    expect(await errorCode(put)).toBe('DIGEST_INVALID');
    expect(await snapshot(reg.data)).toEqual(before);
    expect(await errorCode(await reg.fetch(loc))).toBe('BLOB_UPLOAD_UNKNOWN');
  });

  it('PUT without a digest is DIGEST_INVALID and keeps the session', async () => {
    const s = await reg.fetch('/v2/ok/app/blobs/uploads/', { method: 'POST' });
    const loc = s.headers.get('location') as string;
    await refused(() => reg.fetch(loc, { method: 'PUT' }), 400, 'DIGEST_INVALID');
    expect((await reg.fetch(loc)).status).toBe(204);
    await reg.fetch(loc, { method: 'DELETE' });
  });
});

describe('uploads', () => {
  it('unknown or malformed upload ids are BLOB_UPLOAD_UNKNOWN', async () => {
    for (const id of ['3f0b4b8e-1111-4222-8333-444455556666', 'not-a-uuid', '..%2F..%2Fetc']) {
      await refused(
        () => reg.fetch(`/v2/ok/app/blobs/uploads/${id}`, { method: 'PATCH', body: 'x' }),
        404,
        'BLOB_UPLOAD_UNKNOWN',
      );
      await refused(
        () => reg.fetch(`/v2/ok/app/blobs/uploads/${id}?digest=${sha256('x')}`, { method: 'PUT', body: 'x' }),
        404,
        'BLOB_UPLOAD_UNKNOWN',
      );
      await refused(() => reg.fetch(`/v2/ok/app/blobs/uploads/${id}`), 404, 'BLOB_UPLOAD_UNKNOWN');
      await refused(
        () => reg.fetch(`/v2/ok/app/blobs/uploads/${id}`, { method: 'DELETE' }),
        404,
        'BLOB_UPLOAD_UNKNOWN',
      );
    }
  });

  it('an upload id is bound to its repository', async () => {
    const s = await reg.fetch('/v2/ok/app/blobs/uploads/', { method: 'POST' });
    const id = s.headers.get('docker-upload-uuid') as string;
    await refused(
      () => reg.fetch(`/v2/ok/other/blobs/uploads/${id}`, { method: 'PATCH', body: 'x' }),
      404,
      'BLOB_UPLOAD_UNKNOWN',
    );
    await reg.fetch(`/v2/ok/app/blobs/uploads/${id}`, { method: 'DELETE' });
  });

  it('out-of-order, overlapping and malformed Content-Range are 416 with the Range received; nothing is appended', async () => {
    const s = await reg.fetch('/v2/ok/app/blobs/uploads/', { method: 'POST' });
    const loc = s.headers.get('location') as string;
    await reg.fetch(loc, { method: 'PATCH', body: 'abcd', headers: { 'content-range': '0-3' } });
    for (const range of ['10-12', '2-4', '0-3', 'garbage', '4-2']) {
      const before = await snapshot(reg.data);
      const res = await reg.fetch(loc, { method: 'PATCH', body: 'xyz', headers: { 'content-range': range } });
      expect(res.status).toBe(416);
      if (range !== 'garbage') expect(res.headers.get('range')).toBe('0-3');
      expect(await snapshot(reg.data)).toEqual(before);
    }
    const lengthMismatch = await reg.fetch(loc, { method: 'PATCH', body: 'xy', headers: { 'content-range': '4-9' } });
    expect(lengthMismatch.status).toBe(416);
    expect((await reg.fetch(loc)).headers.get('range')).toBe('0-3');
    await reg.fetch(loc, { method: 'DELETE' });
  });
});

describe('manifests', () => {
  const put = (ref: string, body: string | Buffer, type = 'application/vnd.oci.image.manifest.v1+json') =>
    reg.fetch(`/v2/ok/app/manifests/${ref}`, { method: 'PUT', body, headers: { 'content-type': type } });

  it('broken JSON, wrong shapes and mismatched media types are MANIFEST_INVALID', async () => {
    await refused(() => put('broken', '{"schemaVersion": 2,'), 400, 'MANIFEST_INVALID');
    await refused(() => put('array', '[]'), 400, 'MANIFEST_INVALID');
    await refused(() => put('noconfig', JSON.stringify({ schemaVersion: 2, layers: [] })), 400, 'MANIFEST_INVALID');
    await refused(
      () =>
        put(
          'v1',
          JSON.stringify({ schemaVersion: 1, name: 'x' }),
          'application/vnd.docker.distribution.manifest.v1+prettyjws',
        ),
      400,
      'MANIFEST_INVALID',
    );
    const valid = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: base.config, size: 10 },
      layers: [],
    };
    await refused(
      () => put('mismatch', JSON.stringify(valid), 'application/vnd.docker.distribution.manifest.v2+json'),
      400,
      'MANIFEST_INVALID',
    );
    await refused(
      () => put('baddesc', JSON.stringify({ ...valid, layers: [{ mediaType: 'x', digest: 'sha256:nope', size: 1 }] })),
      400,
      'MANIFEST_INVALID',
    );
  });

  it('references to missing blobs are MANIFEST_BLOB_UNKNOWN', async () => {
    const m = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: base.config, size: 10 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256('never pushed'), size: 12 }],
    };
    await refused(() => put('missing', JSON.stringify(m)), 400, 'MANIFEST_BLOB_UNKNOWN');
    const elsewhere = await pushBlob(reg, 'ok/elsewhere', 'only in another repo');
    const m2 = { ...m, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: elsewhere, size: 20 }] };
    await refused(() => put('elsewhere', JSON.stringify(m2)), 400, 'MANIFEST_BLOB_UNKNOWN');
  });

  it('a manifest PUT by a digest that does not match its body is DIGEST_INVALID', async () => {
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: base.config, size: 10 },
      layers: [],
    });
    await refused(() => put(sha256('different'), body), 400, 'DIGEST_INVALID');
  });

  it('manifests over 4 MiB are refused with 413 (declared or streamed)', async () => {
    const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    await refused(() => put('huge', big), 413, 'MANIFEST_INVALID');
    const streamed = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 5; i++) c.enqueue(new Uint8Array(1024 * 1024).fill(0x20));
        c.close();
      },
    });
    await refused(
      () =>
        reg.fetch('/v2/ok/app/manifests/huge2', {
          method: 'PUT',
          body: streamed,
          headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
          duplex: 'half',
        } as RequestInit),
      413,
      'MANIFEST_INVALID',
    );
  });

  it('unknown manifests and tags on delete', async () => {
    await refused(() => reg.fetch('/v2/ok/app/manifests/nope', { method: 'DELETE' }), 404, 'MANIFEST_UNKNOWN');
    await refused(
      () => reg.fetch(`/v2/ok/app/manifests/${sha256('nope')}`, { method: 'DELETE' }),
      404,
      'MANIFEST_UNKNOWN',
    );
    await refused(() => reg.fetch(`/v2/ok/none/manifests/v1`, { method: 'DELETE' }), 404, 'NAME_UNKNOWN');
    await refused(() => reg.fetch(`/v2/ok/app/blobs/${sha256('nope')}`, { method: 'DELETE' }), 404, 'BLOB_UNKNOWN');
  });
});

describe('credentials', () => {
  it('missing, malformed or wrong credentials are one 401 and change nothing', async () => {
    await refused(
      () => reg.fetch(`/v2/ok/app/blobs/uploads/?digest=${sha256('x')}`, { method: 'POST', body: 'x', auth: null }),
      401,
      'UNAUTHORIZED',
    );
    await refused(
      () =>
        reg.fetch(`/v2/ok/app/blobs/uploads/?digest=${sha256('x')}`, {
          method: 'POST',
          body: 'x',
          auth: ['admin', 'wrong'],
        }),
      401,
      'UNAUTHORIZED',
    );
    await refused(
      () => reg.fetch(`/v2/ok/app/manifests/v1`, { method: 'DELETE', auth: ['ghost', 'x'] }),
      401,
      'UNAUTHORIZED',
    );
    await refused(
      () => reg.fetch('/v2/', { headers: { authorization: 'Basic !!!' }, auth: null }),
      401,
      'UNAUTHORIZED',
    );
    await refused(
      () => reg.fetch('/v2/', { headers: { authorization: 'Bearer token' }, auth: null }),
      401,
      'UNAUTHORIZED',
    );
  });

  it('a client that keeps failing is throttled with 429 and Retry-After', async () => {
    const strict = await startRegistry({ throttle: { maxFailures: 3, windowMs: 60_000, blockMs: 30_000 } });
    try {
      for (let i = 0; i < 3; i++) expect((await strict.fetch('/v2/', { auth: ['admin', `bad${i}`] })).status).toBe(401);
      const res = await strict.fetch('/v2/');
      expect(res.status).toBe(429);
      expect(await errorCode(res)).toBe('TOOMANYREQUESTS');
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await strict.stop();
    }
  });
});
