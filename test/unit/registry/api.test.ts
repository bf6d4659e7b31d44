/** The registry API outside blobs and manifests: base endpoint, health, CORS, routing errors, access rules, metrics, request logs and the read-only fence. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, pushImage, startRegistry, USERS, type TestRegistry } from './helpers.js';
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
