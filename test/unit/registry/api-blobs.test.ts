/** The registry API for blobs: monolithic and chunked uploads, ranges, mounts, deletion and digests. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, pushBlob, sha256, startRegistry, USERS, type TestRegistry } from './helpers.js';

let reg: TestRegistry;
beforeAll(async () => {
  reg = await startRegistry({ corsOrigins: ['https://ui.example'], fenceWaitMs: 100 });
});
afterAll(() => reg.stop());

describe('blobs', () => {
  it('monolithic POST ?digest= then GET, HEAD and ranges', async () => {
    const data = 'the quick brown fox';
    const digest = await pushBlob(reg, 'b/mono', data);
    const get = await reg.fetch(`/v2/b/mono/blobs/${digest}`);
    expect(get.status).toBe(200);
    expect(get.headers.get('docker-content-digest')).toBe(digest);
    expect(await get.text()).toBe(data);
    const head = await reg.fetch(`/v2/b/mono/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(data.length));
    const range = await reg.fetch(`/v2/b/mono/blobs/${digest}`, { headers: { range: 'bytes=4-8' } });
    expect(range.status).toBe(206);
    expect(range.headers.get('content-range')).toBe(`bytes 4-8/${data.length}`);
    expect(await range.text()).toBe('quick');
    const bad = await reg.fetch(`/v2/b/mono/blobs/${digest}`, { headers: { range: 'bytes=100-200' } });
    expect(bad.status).toBe(416);
    expect(bad.headers.get('content-range')).toBe(`bytes */${data.length}`);
    const other = await reg.fetch(`/v2/b/other/blobs/${digest}`);
    expect(other.status).toBe(404);
    expect(await errorCode(other)).toBe('BLOB_UNKNOWN');
  });

  it('chunked upload: POST, PATCH with Content-Range, status, out-of-order 416, PUT with the last chunk', async () => {
    const start = await reg.fetch('/v2/b/chunked/blobs/uploads/', { method: 'POST' });
    expect(start.status).toBe(202);
    const loc = start.headers.get('location') as string;
    const uuid = start.headers.get('docker-upload-uuid') as string;
    expect(loc).toBe(`/v2/b/chunked/blobs/uploads/${uuid}`);
    expect(start.headers.get('range')).toBe('0-0');
    const p1 = await reg.fetch(loc, {
      method: 'PATCH',
      body: 'hello ',
      headers: { 'content-range': '0-5', 'content-type': 'application/octet-stream' },
    });
    expect(p1.status).toBe(202);
    expect(p1.headers.get('range')).toBe('0-5');
    const status = await reg.fetch(loc);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-5');
    expect(status.headers.get('docker-upload-uuid')).toBe(uuid);
    const gap = await reg.fetch(loc, { method: 'PATCH', body: 'xx', headers: { 'content-range': '8-9' } });
    expect(gap.status).toBe(416);
    expect(gap.headers.get('range')).toBe('0-5');
    const overlap = await reg.fetch(loc, { method: 'PATCH', body: 'xx', headers: { 'content-range': '4-5' } });
    expect(overlap.status).toBe(416);
    const p2 = await reg.fetch(loc, { method: 'PATCH', body: 'chunked ', headers: { 'content-range': '6-13' } });
    expect(p2.headers.get('range')).toBe('0-13');
    const digest = sha256('hello chunked world');
    const put = await reg.fetch(`${loc}?digest=${digest}`, {
      method: 'PUT',
      body: 'world',
      headers: { 'content-range': '14-18' },
    });
    expect(put.status).toBe(201);
    expect(put.headers.get('location')).toBe(`/v2/b/chunked/blobs/${digest}`);
    expect(await (await reg.fetch(`/v2/b/chunked/blobs/${digest}`)).text()).toBe('hello chunked world');
    const gone = await reg.fetch(loc);
    expect(gone.status).toBe(404);
    expect(await errorCode(gone)).toBe('BLOB_UPLOAD_UNKNOWN');
  });

  it('streamed PATCH without Content-Range, empty PUT, and a blob pushed twice concurrently', async () => {
    const data = Buffer.alloc(3 * 1024 * 1024, 7);
    const digest = sha256(data);
    const one = async () => {
      const s = await reg.fetch('/v2/b/stream/blobs/uploads/', { method: 'POST' });
      const loc = s.headers.get('location') as string;
      const p = await reg.fetch(loc, { method: 'PATCH', body: data });
      expect(p.headers.get('range')).toBe(`0-${data.length - 1}`);
      return reg.fetch(`${loc}?digest=${digest}`, { method: 'PUT' });
    };
    const results = await Promise.all([one(), one(), one()]);
    expect(results.map((r) => r.status)).toEqual([201, 201, 201]);
    const head = await reg.fetch(`/v2/b/stream/blobs/${digest}`, { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe(String(data.length));
  });

  it('cancel an upload with DELETE', async () => {
    const s = await reg.fetch('/v2/b/cancel/blobs/uploads/', { method: 'POST' });
    const loc = s.headers.get('location') as string;
    expect((await reg.fetch(loc, { method: 'DELETE' })).status).toBe(204);
    expect((await reg.fetch(loc)).status).toBe(404);
  });

  it('cross-repository mount: 201 when the source holds it, 202 session otherwise', async () => {
    const digest = await pushBlob(reg, 'b/source', 'mount me');
    const ok = await reg.fetch(`/v2/b/target/blobs/uploads/?mount=${digest}&from=b/source`, { method: 'POST' });
    expect(ok.status).toBe(201);
    expect(ok.headers.get('docker-content-digest')).toBe(digest);
    expect((await reg.fetch(`/v2/b/target/blobs/${digest}`)).status).toBe(200);
    const miss = await reg.fetch(`/v2/b/target2/blobs/uploads/?mount=${digest}&from=b/nothing`, { method: 'POST' });
    expect(miss.status).toBe(202);
    expect(miss.headers.get('location')).toMatch(/^\/v2\/b\/target2\/blobs\/uploads\//);
  });

  it('mount needs pull on the source: without it the client gets a session', async () => {
    const digest = await pushBlob(reg, 'private/src', 'secret layer');
    const res = await reg.fetch(`/v2/apps/x/blobs/uploads/?mount=${digest}&from=private/src`, {
      method: 'POST',
      auth: ['ci', USERS.ci as string],
    });
    expect(res.status).toBe(202);
    expect((await reg.fetch(`/v2/apps/x/blobs/${digest}`)).status).toBe(404);
  });

  it('DELETE unlinks a blob from the repository', async () => {
    const digest = await pushBlob(reg, 'b/del', 'delete me');
    const del = await reg.fetch(`/v2/b/del/blobs/${digest}`, { method: 'DELETE' });
    expect(del.status).toBe(202);
    expect((await reg.fetch(`/v2/b/del/blobs/${digest}`)).status).toBe(404);
    expect((await reg.fetch(`/v2/b/del/blobs/${digest}`, { method: 'DELETE' })).status).toBe(404);
  });

  it('Location honours X-Forwarded-Proto and X-Forwarded-Host', async () => {
    const res = await reg.fetch('/v2/b/fwd/blobs/uploads/', {
      method: 'POST',
      headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'registry.example.com' },
    });
    expect(res.headers.get('location')).toMatch(
      /^https:\/\/registry\.example\.com\/v2\/b\/fwd\/blobs\/uploads\/[0-9a-f-]{36}$/,
    );
  });

  it('sha512 digests are accepted', async () => {
    const { createHash } = await import('node:crypto');
    const data = 'sha512 content';
    const digest = `sha512:${createHash('sha512').update(data).digest('hex')}`;
    const res = await reg.fetch(`/v2/b/s512/blobs/uploads/?digest=${digest}`, { method: 'POST', body: data });
    expect(res.status).toBe(201);
    expect(await (await reg.fetch(`/v2/b/s512/blobs/${digest}`)).text()).toBe(data);
  });
});
