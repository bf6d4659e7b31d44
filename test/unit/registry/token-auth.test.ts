/**
 * Token auth in process over a real socket: the key file made on first start, refresh tokens revoked by a password
 * change or a removed user, the previous key accepted while `<key>.previous` exists, and no token without a key.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRegistryServer, RegistryConfigError, type RegistryServer } from '../../../src/registry/server.js';
import { basicAuth } from '../../helpers/auth.js';

let dir: string;
let server: RegistryServer | undefined;
let url: string;

const htpasswd = (users: Record<string, string>) =>
  Object.entries(users)
    .map(([u, p]) => `${u}:${bcrypt.hashSync(p, 4)}`)
    .join('\n') + '\n';

async function start(): Promise<void> {
  server = createRegistryServer({
    port: 0,
    dataDir: join(dir, 'data'),
    htpasswd: join(dir, 'htpasswd'),
    authMode: 'token',
    tokenKey: join(dir, 'token-key.pem'),
    authPollMs: 50,
    logLevel: 'silent',
  });
  url = (await server.listen()).url;
}

async function post(params: Record<string, string>): Promise<{ status: number; body: Record<string, string> }> {
  const res = await fetch(`${url}/auth/token`, {
    method: 'POST',
    body: new URLSearchParams({ service: 'regctl', client_id: 'unit', ...params }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

const login = async (password = 'pw-one') =>
  (await post({ grant_type: 'password', username: 'ann', password, access_type: 'offline' })).body;
const base = async (token: string) =>
  (await fetch(`${url}/v2/`, { headers: { Authorization: `Bearer ${token}` } })).status;

/** Waits until the registry has read the changed htpasswd (its poll runs every 50 ms). */
async function untilRefused(refresh: string): Promise<number> {
  let status = 0;
  for (let i = 0; i < 100 && status !== 401; i++) {
    await new Promise((r) => setTimeout(r, 30));
    status = (await post({ grant_type: 'refresh_token', refresh_token: refresh })).status;
  }
  return status;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'regctl-token-unit-'));
  await writeFile(join(dir, 'htpasswd'), htpasswd({ ann: 'pw-one', bob: 'pw-bob' }));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

describe('token auth', () => {
  it('creates the key file 0600 on first start and keeps it across restarts', async () => {
    await start();
    const pem = await readFile(join(dir, 'token-key.pem'), 'utf8');
    expect((await stat(join(dir, 'token-key.pem'))).mode & 0o777).toBe(0o600);
    const { access_token: token } = await login();
    await server?.close();
    await start();
    expect(await readFile(join(dir, 'token-key.pem'), 'utf8')).toBe(pem);
    expect(await base(token as string)).toBe(200);
  });

  it('a refresh token works until the password changes', async () => {
    await start();
    const { refresh_token: refresh } = await login();
    const refreshed = await post({ grant_type: 'refresh_token', refresh_token: refresh as string });
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.refresh_token).toBe(refresh);
    expect(await base(refreshed.body.access_token as string)).toBe(200);
    await writeFile(join(dir, 'htpasswd'), htpasswd({ ann: 'pw-two', bob: 'pw-bob' }));
    expect(await untilRefused(refresh as string)).toBe(401);
    expect((await login('pw-two')).refresh_token).toMatch(/^ey/);
  });

  it('a refresh token is refused once its user is removed', async () => {
    await start();
    const { refresh_token: refresh } = await login();
    await writeFile(join(dir, 'htpasswd'), htpasswd({ bob: 'pw-bob' }));
    expect(await untilRefused(refresh as string)).toBe(401);
  });

  it('tokens of the previous key pass while <key>.previous exists, and only then', async () => {
    await start();
    const { access_token: old } = await login();
    await rename(join(dir, 'token-key.pem'), join(dir, 'token-key.pem.previous'));
    const fresh = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    await writeFile(join(dir, 'token-key.pem'), fresh.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await server?.app.opts.tokens?.reloadKeys();
    expect(await base(old as string)).toBe(200);
    const { access_token: signedNew } = await login();
    expect(await base(signedNew as string)).toBe(200);
    await rm(join(dir, 'token-key.pem.previous'));
    await server?.app.opts.tokens?.reloadKeys();
    expect(await base(old as string)).toBe(401);
    expect(await base(signedNew as string)).toBe(200);
  });

  it('an anonymous token grants nothing; Basic still works; no key file path is a configuration error', async () => {
    await start();
    const anon = (await (await fetch(`${url}/auth/token?service=regctl&scope=repository:a/b:pull`)).json()) as {
      token: string;
    };
    expect(await base(anon.token)).toBe(401);
    const basic = await fetch(`${url}/v2/`, { headers: { Authorization: basicAuth('ann', 'pw-one') } });
    expect(basic.status).toBe(200);
    // Without an access file ann is admin, yet her token opens neither the admin API nor /metrics.
    const { access_token: token } = await login();
    for (const path of ['/admin/v1/whoami', '/metrics']) {
      const res = await fetch(`${url}${path}`, { headers: { Authorization: `Bearer ${token}` } });
      expect(res.status, path).toBe(401);
      expect((await fetch(`${url}${path}`, { headers: { Authorization: basicAuth('ann', 'pw-one') } })).status).toBe(
        200,
      );
    }
    expect(() =>
      createRegistryServer({ port: 0, dataDir: join(dir, 'd2'), htpasswd: join(dir, 'htpasswd'), authMode: 'token' }),
    ).toThrow(RegistryConfigError);
  });
});
