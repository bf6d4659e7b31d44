/**
 * Anonymous pull per repository pattern (`anonymous: { pull: [...] }` in the access file), with Basic and with
 * token auth: pulls of matching repositories without credentials, and a catalog that lists those only; nothing
 * else, ever, without credentials. With no public repository the catalog stays closed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCESS_YAML, pushImage, startRegistry, type PushedImage, type TestRegistry } from './helpers.js';

const ACCESS = `${ACCESS_YAML}anonymous: { pull: [ "apps/public/**" ] }\n`;
const OCI = 'application/vnd.oci.image.manifest.v1+json';

describe.each(['basic', 'token'] as const)('anonymous pull with %s auth', (mode) => {
  let reg: TestRegistry;
  let pub: PushedImage;
  let keyDir: string;
  beforeAll(async () => {
    keyDir = await mkdtemp(join(tmpdir(), 'regctl-anon-key-'));
    reg = await startRegistry({
      access: ACCESS,
      ...(mode === 'token' ? { authMode: 'token', tokenKey: join(keyDir, 'token-key.pem') } : {}),
    });
    pub = await pushImage(reg, 'apps/public/web', 'v1');
    await pushImage(reg, 'apps/private', 'v1');
  });
  afterAll(async () => {
    await reg.stop();
    await rm(keyDir, { recursive: true, force: true });
  });

  const anon = (path: string, init: RequestInit = {}) => reg.fetch(path, { ...init, auth: null });

  it('pulls a matching repository without credentials: manifest, blob, tags', async () => {
    const m = await anon('/v2/apps/public/web/manifests/v1', { headers: { accept: OCI } });
    expect(m.status).toBe(200);
    expect(m.headers.get('docker-content-digest')).toBe(pub.digest);
    expect((await anon(`/v2/apps/public/web/blobs/${pub.config}`)).status).toBe(200);
    expect(((await (await anon('/v2/apps/public/web/tags/list')).json()) as { tags: string[] }).tags).toEqual(['v1']);
  });

  it('refuses without credentials: other repositories, every write, /v2/ and the admin API', async () => {
    const challenge = mode === 'token' ? /^Bearer realm=/ : /^Basic realm=/;
    for (const [method, path] of [
      ['GET', '/v2/apps/private/manifests/v1'],
      ['GET', '/v2/apps/publicity/manifests/v1'],
      ['PUT', '/v2/apps/public/web/manifests/v2'],
      ['DELETE', '/v2/apps/public/web/manifests/v1'],
      ['POST', '/v2/apps/public/web/blobs/uploads/'],
      ['GET', '/v2/'],
      ['GET', '/admin/v1/usage'],
    ] as const) {
      const res = await anon(path, {
        method,
        headers: { 'content-type': OCI },
        ...(method === 'PUT' ? { body: '{}' } : {}),
      });
      expect(res.status, `${method} ${path}`).toBe(401);
      if (path.startsWith('/v2')) expect(res.headers.get('www-authenticate'), path).toMatch(challenge);
    }
  });

  it('the catalog without credentials lists the public repositories only', async () => {
    const list = async (headers: Record<string, string>) => {
      const res = await anon('/v2/_catalog', { headers });
      expect(res.status).toBe(200);
      return ((await res.json()) as { repositories: string[] }).repositories;
    };
    expect(await list({})).toEqual(['apps/public/web']);
    if (mode === 'token') {
      // As clients do after a challenge: an anonymous token for the catalog, which grants it (listing the same).
      const res = await anon('/auth/token?service=regctl&scope=registry:catalog:*');
      const { token } = (await res.json()) as { token: string };
      expect(await list({ authorization: `Bearer ${token}` })).toEqual(['apps/public/web']);
    }
  });

  it('an anonymous token carries pull on public repositories only; with basic auth no token is served', async () => {
    const q = 'service=regctl&scope=repository:apps/public/web:pull,push&scope=repository:apps/private:pull';
    if (mode === 'basic') {
      const res = await anon(`/auth/token?${q}`);
      expect(res.status).toBe(404);
      return;
    }
    const { token } = (await (await anon(`/auth/token?${q}`)).json()) as { token: string };
    const claims = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as {
      sub: string;
      access: unknown;
    };
    expect(claims.sub).toBe('');
    expect(claims.access).toEqual([{ type: 'repository', name: 'apps/public/web', actions: ['pull'] }]);
    const bearer = { authorization: `Bearer ${token}` };
    expect((await anon('/v2/apps/public/web/manifests/v1', { headers: { ...bearer, accept: OCI } })).status).toBe(200);
    expect((await anon('/v2/apps/private/manifests/v1', { headers: bearer })).status).toBe(401);
    expect((await anon('/v2/apps/public/web/blobs/uploads/', { method: 'POST', headers: bearer })).status).toBe(401);
    expect((await anon('/v2/', { headers: bearer })).status).toBe(401);
  });
});

describe('anonymous catalog with no public repository', () => {
  it('stays closed: 401 without credentials', async () => {
    const reg = await startRegistry({ access: ACCESS_YAML });
    try {
      await pushImage(reg, 'apps/private', 'v1');
      const res = await reg.fetch('/v2/_catalog', { auth: null });
      expect(res.status).toBe(401);
    } finally {
      await reg.stop();
    }
  });
});
