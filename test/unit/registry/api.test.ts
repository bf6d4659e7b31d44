import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  errorCode,
  pushBlob,
  pushImage,
  sha256,
  snapshot,
  startRegistry,
  USERS,
  type TestRegistry,
} from './helpers.js';
import { basicAuth } from '../../helpers/auth.js';

let reg: TestRegistry;
beforeAll(async () => {
  reg = await startRegistry({ corsOrigins: ['https://ui.example'], fenceWaitMs: 100 });
});
afterAll(() => reg.stop());

describe('base, health, options', () => {
  it('GET /v2/ challenges without credentials and answers 200 with them', async () => {
    const anon = await reg.fetch('/v2/', { auth: null });
    expect(anon.status).toBe(401);
    expect(anon.headers.get('www-authenticate')).toBe('Basic realm="regctl"');
    expect(await errorCode(anon)).toBe('UNAUTHORIZED');
    const ok = await reg.fetch('/v2/');
    expect(ok.status).toBe(200);
    expect(ok.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
  });

  it('/healthz answers without auth', async () => {
    const res = await reg.fetch('/healthz', { auth: null });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('OPTIONS needs no auth; CORS headers only for allowed origins', async () => {
    const allowed = await reg.fetch('/v2/x/tags/list', {
      method: 'OPTIONS',
      auth: null,
      headers: { origin: 'https://ui.example' },
    });
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://ui.example');
    expect(allowed.headers.get('access-control-allow-methods')).toContain('DELETE');
    const other = await reg.fetch('/v2/x/tags/list', {
      method: 'OPTIONS',
      auth: null,
      headers: { origin: 'https://evil.example' },
    });
    expect(other.status).toBe(204);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('unknown routes are 404 and wrong methods 405, in the error envelope', async () => {
    const res = await reg.fetch('/v2/a/unknown/thing');
    expect(res.status).toBe(404);
    expect(await errorCode(res)).toBe('NOT_FOUND');
    const m = await reg.fetch('/v2/a/tags/list', { method: 'POST' });
    expect(m.status).toBe(405);
    expect(await errorCode(m)).toBe('UNSUPPORTED');
  });
});

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

describe('manifests and tags', () => {
  it('PUT by tag, GET/HEAD by tag and digest with the stored media type', async () => {
    const img = await pushImage(reg, 'm/app', 'v1');
    for (const ref of ['v1', img.digest]) {
      const get = await reg.fetch(`/v2/m/app/manifests/${ref}`, {
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
      });
      expect(get.status).toBe(200);
      expect(get.headers.get('content-type')).toBe('application/vnd.oci.image.manifest.v1+json');
      expect(get.headers.get('docker-content-digest')).toBe(img.digest);
      expect(Buffer.from(await get.arrayBuffer()).equals(img.manifest)).toBe(true);
      const head = await reg.fetch(`/v2/m/app/manifests/${ref}`, { method: 'HEAD' });
      expect(head.headers.get('content-length')).toBe(String(img.manifest.length));
    }
    const missing = await reg.fetch('/v2/m/app/manifests/nope');
    expect(missing.status).toBe(404);
    expect(await errorCode(missing)).toBe('MANIFEST_UNKNOWN');
    const unknownRepo = await reg.fetch('/v2/m/none/manifests/v1');
    expect(await errorCode(unknownRepo)).toBe('NAME_UNKNOWN');
  });

  it('docker schema2 manifest and manifest list; a client accepting neither index type gets the amd64 image', async () => {
    const amd = await pushImage(reg, 'm/multi', 'amd64', {
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      layers: ['amd'],
    });
    const arm = await pushImage(reg, 'm/multi', 'arm64', {
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      layers: ['arm'],
    });
    const list = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
        manifests: [
          {
            mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
            digest: arm.digest,
            size: arm.manifest.length,
            platform: { os: 'linux', architecture: 'arm64' },
          },
          {
            mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
            digest: amd.digest,
            size: amd.manifest.length,
            platform: { os: 'linux', architecture: 'amd64' },
          },
        ],
      }),
    );
    const put = await reg.fetch('/v2/m/multi/manifests/latest', {
      method: 'PUT',
      body: list,
      headers: { 'content-type': 'application/vnd.docker.distribution.manifest.list.v2+json' },
    });
    expect(put.status).toBe(201);
    const both = await reg.fetch('/v2/m/multi/manifests/latest', {
      headers: {
        accept:
          'application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json',
      },
    });
    expect(both.headers.get('docker-content-digest')).toBe(sha256(list));
    const old = await reg.fetch('/v2/m/multi/manifests/latest', {
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    expect(old.headers.get('docker-content-digest')).toBe(amd.digest);
  });

  it('an index whose child is missing is MANIFEST_BLOB_UNKNOWN', async () => {
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256('not pushed'), size: 10 }],
    });
    const res = await reg.fetch('/v2/m/idx/manifests/v1', {
      method: 'PUT',
      body: index,
      headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' },
    });
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe('MANIFEST_BLOB_UNKNOWN');
  });

  it('DELETE of a tag removes only that tag', async () => {
    const img = await pushImage(reg, 'm/tagdel', 'a');
    await reg.fetch('/v2/m/tagdel/manifests/b', {
      method: 'PUT',
      body: img.manifest,
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    const del = await reg.fetch('/v2/m/tagdel/manifests/a', { method: 'DELETE' });
    expect(del.status).toBe(202);
    expect((await reg.fetch('/v2/m/tagdel/manifests/a')).status).toBe(404);
    expect((await reg.fetch('/v2/m/tagdel/manifests/b')).status).toBe(200);
    expect((await reg.fetch(`/v2/m/tagdel/manifests/${img.digest}`)).status).toBe(200);
    expect(await (await reg.fetch('/v2/m/tagdel/tags/list')).json()).toEqual({ name: 'm/tagdel', tags: ['b'] });
  });

  it('DELETE by digest removes the manifest and reports the removed tags; the empty repository leaves the catalog', async () => {
    const img = await pushImage(reg, 'm/digdel', 'one');
    await reg.fetch('/v2/m/digdel/manifests/two', {
      method: 'PUT',
      body: img.manifest,
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(
      ((await (await reg.fetch('/v2/_catalog?n=10000')).json()) as { repositories: string[] }).repositories,
    ).toContain('m/digdel');
    const del = await reg.fetch(`/v2/m/digdel/manifests/${img.digest}`, { method: 'DELETE' });
    expect(del.status).toBe(202);
    expect(del.headers.get('oci-deleted-tags')).toBe('one,two');
    expect(await del.json()).toEqual({ deletedTags: ['one', 'two'] });
    expect((await reg.fetch(`/v2/m/digdel/manifests/${img.digest}`)).status).toBe(404);
    expect(
      ((await (await reg.fetch('/v2/_catalog?n=10000')).json()) as { repositories: string[] }).repositories,
    ).not.toContain('m/digdel');
  });

  it('PUT by digest with ?tag= tags it and lists the tags in OCI-Tag', async () => {
    const img = await pushImage(reg, 'm/tagparam', 'base');
    const res = await reg.fetch(`/v2/m/tagparam/manifests/${img.digest}?tag=x&tag=y`, {
      method: 'PUT',
      body: img.manifest,
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('oci-tag')).toBe('x, y');
    expect(await (await reg.fetch('/v2/m/tagparam/tags/list')).json()).toEqual({
      name: 'm/tagparam',
      tags: ['base', 'x', 'y'],
    });
  });

  it('concurrent pushes of different manifests to one tag leave the tag on one of them, whole', async () => {
    const images = await Promise.all(
      Array.from({ length: 6 }, (_, i) => pushImage(reg, 'm/race', `base${i}`, { layers: [`race layer ${i}`] })),
    );
    const results = await Promise.all(
      images.map((img) =>
        reg.fetch('/v2/m/race/manifests/shared', {
          method: 'PUT',
          body: img.manifest,
          headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(images.map(() => 201));
    const got = await reg.fetch('/v2/m/race/manifests/shared');
    const digest = got.headers.get('docker-content-digest');
    expect(images.map((i) => i.digest)).toContain(digest);
    expect(sha256(Buffer.from(await got.arrayBuffer()))).toBe(digest);
    expect(Object.keys(await snapshot(reg.data)).filter((p) => p.includes('.tmp-'))).toEqual([]);
  });

  it('tags list and catalog paginate with n, last and Link; a huge n is clamped', async () => {
    const img = await pushImage(reg, 'p/page', 't0');
    for (const t of ['t1', 't2', 't3', 't4']) {
      await reg.fetch(`/v2/p/page/manifests/${t}`, {
        method: 'PUT',
        body: img.manifest,
        headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      });
    }
    const first = await reg.fetch('/v2/p/page/tags/list?n=2');
    expect(await first.json()).toEqual({ name: 'p/page', tags: ['t0', 't1'] });
    expect(first.headers.get('link')).toBe('</v2/p/page/tags/list?n=2&last=t1>; rel="next"');
    const second = await reg.fetch('/v2/p/page/tags/list?n=2&last=t1');
    expect(await second.json()).toEqual({ name: 'p/page', tags: ['t2', 't3'] });
    const last = await reg.fetch('/v2/p/page/tags/list?n=2&last=t3');
    expect(await last.json()).toEqual({ name: 'p/page', tags: ['t4'] });
    expect(last.headers.get('link')).toBeNull();
    const huge = await reg.fetch('/v2/p/page/tags/list?n=999999999');
    expect(huge.status).toBe(200);
    expect(((await huge.json()) as { tags: string[] }).tags).toHaveLength(5);
    const cat = await reg.fetch('/v2/_catalog?n=1');
    expect(cat.status).toBe(200);
    const link = cat.headers.get('link') as string;
    const firstRepo = ((await cat.json()) as { repositories: string[] }).repositories[0] as string;
    expect(link).toBe(`</v2/_catalog?n=1&last=${encodeURIComponent(firstRepo)}>; rel="next"`);
    const next = await reg.fetch(link.slice(1, link.indexOf('>')));
    const nextRepo = ((await next.json()) as { repositories: string[] }).repositories[0] as string;
    expect(nextRepo > firstRepo).toBe(true);
    expect(await errorCode(await reg.fetch('/v2/p/none/tags/list'))).toBe('NAME_UNKNOWN');
  });
});

describe('referrers', () => {
  it('a manifest with subject gets OCI-Subject; referrers lists it with artifactType and annotations; filter applies', async () => {
    const subject = await pushImage(reg, 'r/app', 'v1');
    const empty = await pushBlob(reg, 'r/app', '{}');
    const sbom = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: 'application/spdx+json',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty, size: 2 },
        layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: empty, size: 2 }],
        subject: {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: subject.digest,
          size: subject.manifest.length,
        },
        annotations: { 'org.example.kind': 'sbom' },
      }),
    );
    const put = await reg.fetch(`/v2/r/app/manifests/${sha256(sbom)}`, {
      method: 'PUT',
      body: sbom,
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(put.status).toBe(201);
    expect(put.headers.get('oci-subject')).toBe(subject.digest);
    const sig = await pushImage(reg, 'r/app', 'sig', {
      extra: {
        subject: {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: subject.digest,
          size: subject.manifest.length,
        },
      },
    });
    const list = await reg.fetch(`/v2/r/app/referrers/${subject.digest}`);
    expect(list.status).toBe(200);
    expect(list.headers.get('content-type')).toBe('application/vnd.oci.image.index.v1+json');
    const body = (await list.json()) as {
      manifests: { digest: string; artifactType?: string; annotations?: Record<string, string> }[];
    };
    expect(body.manifests.map((m) => m.digest).sort()).toEqual([sha256(sbom), sig.digest].sort());
    const sbomDesc = body.manifests.find((m) => m.digest === sha256(sbom));
    expect(sbomDesc?.artifactType).toBe('application/spdx+json');
    expect(sbomDesc?.annotations).toEqual({ 'org.example.kind': 'sbom' });
    expect(body.manifests.find((m) => m.digest === sig.digest)?.artifactType).toBe(
      'application/vnd.oci.image.config.v1+json',
    );
    const filtered = await reg.fetch(`/v2/r/app/referrers/${subject.digest}?artifactType=application/spdx%2Bjson`);
    expect(filtered.headers.get('oci-filters-applied')).toBe('artifactType');
    expect(((await filtered.json()) as { manifests: unknown[] }).manifests).toHaveLength(1);
    const none = await reg.fetch(`/v2/r/app/referrers/${sha256('no such subject')}`);
    expect(none.status).toBe(200);
    expect(((await none.json()) as { manifests: unknown[] }).manifests).toEqual([]);
    await reg.fetch(`/v2/r/app/manifests/${sha256(sbom)}`, { method: 'DELETE' });
    const after = (await (await reg.fetch(`/v2/r/app/referrers/${subject.digest}`)).json()) as {
      manifests: { digest: string }[];
    };
    expect(after.manifests.map((m) => m.digest)).toEqual([sig.digest]);
  });
});

describe('access rules', () => {
  it('enforces pull/push/delete per user and filters the catalog', async () => {
    await pushImage(reg, 'apps/web', 'v1');
    const ci: [string, string] = ['ci', USERS.ci as string];
    const viewer: [string, string] = ['viewer', USERS.viewer as string];
    const nobody: [string, string] = ['nobody', USERS.nobody as string];
    expect((await reg.fetch('/v2/apps/web/manifests/v1', { auth: viewer })).status).toBe(200);
    const denied = await reg.fetch('/v2/apps/web/blobs/uploads/', { method: 'POST', auth: viewer });
    expect(denied.status).toBe(403);
    expect(await errorCode(denied)).toBe('DENIED');
    expect((await reg.fetch('/v2/apps/web/blobs/uploads/', { method: 'POST', auth: ci })).status).toBe(202);
    expect((await reg.fetch('/v2/m/app/blobs/uploads/', { method: 'POST', auth: ci })).status).toBe(403);
    expect((await reg.fetch('/v2/apps/web/manifests/v1', { method: 'DELETE', auth: ci })).status).toBe(403);
    expect((await reg.fetch('/v2/apps/web/manifests/v1', { auth: nobody })).status).toBe(403);
    const cat = (await (await reg.fetch('/v2/_catalog', { auth: ci })).json()) as { repositories: string[] };
    expect(cat.repositories.length).toBeGreaterThan(0);
    expect(cat.repositories.every((r) => r.startsWith('apps/'))).toBe(true);
    const whoami = await reg.fetch('/admin/v1/whoami', { auth: ci });
    expect(await whoami.json()).toEqual({
      user: 'ci',
      admin: false,
      rules: [{ repos: 'apps/**', actions: ['pull', 'push'] }],
    });
    expect((await reg.fetch('/admin/v1/usage', { auth: ci })).status).toBe(403);
    expect((await reg.fetch('/metrics', { auth: viewer })).status).toBe(403);
  });

  it('serves Prometheus metrics to admins', async () => {
    const res = await reg.fetch('/metrics');
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/regctl_http_requests_total\{method="GET",route="end-3",code="200"\} \d+/);
    expect(text).toContain('regctl_repositories ');
  });

  it('request logs carry method, path, status, user and never the Authorization header', async () => {
    await reg.fetch('/v2/', { headers: { authorization: basicAuth('admin', USERS.admin as string) } });
    const lines = reg.logs.filter((l) => l.includes('"msg":"request"'));
    expect(lines.length).toBeGreaterThan(0);
    const last = JSON.parse(lines[lines.length - 1] as string) as Record<string, unknown>;
    expect(last).toMatchObject({ method: 'GET', path: '/v2/', status: 200, user: 'admin' });
    expect(reg.logs.join('\n')).not.toContain(USERS.admin);
    expect(reg.logs.join('\n')).not.toContain('Basic ');
  });
});

describe('read-only fence', () => {
  it('writes get 503 with Retry-After while reads go on; lowering it restores writes', async () => {
    const img = await pushImage(reg, 'f/app', 'v1');
    const up = await reg.fetch('/admin/v1/fence', {
      method: 'POST',
      body: JSON.stringify({ ttlSeconds: 60 }),
      headers: { 'content-type': 'application/json' },
    });
    expect(up.status).toBe(200);
    const push = await reg.fetch('/v2/f/app/blobs/uploads/', { method: 'POST' });
    expect(push.status).toBe(503);
    expect(await errorCode(push)).toBe('UNAVAILABLE');
    expect(Number(push.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await reg.fetch(`/v2/f/app/manifests/${img.digest}`)).status).toBe(200);
    expect((await reg.fetch('/admin/v1/fence', { method: 'DELETE' })).status).toBe(200);
    expect((await reg.fetch('/v2/f/app/blobs/uploads/', { method: 'POST' })).status).toBe(202);
  });
});
