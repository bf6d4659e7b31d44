/**
 * The UI's robots page over real sockets, against our registry with token auth and a robots file: administrators
 * see every robot with its rights, expiry or revocation, last use and OIDC binding (never a secret hash); other
 * users get a 403 and no link to it; signed out, the page sends to sign-in.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, type RegistryServer } from '../../../src/registry/server.js';
import { createUiServer, type UiServer } from '../../../src/ui/server.js';
import { basicAuth } from '../../helpers/auth.js';

let dir: string;
let reg: RegistryServer;
let regUrl: string;
let ui: UiServer;
let base: string;
const secretHash = bcrypt.hashSync('robot-secret', 4);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'regctl-ui-robots-'));
  await writeFile(
    join(dir, 'htpasswd'),
    `admin:${bcrypt.hashSync('admin-pw', 4)}\nviewer:${bcrypt.hashSync('viewer-pw', 4)}\n`,
  );
  await writeFile(
    join(dir, 'access.yaml'),
    'users:\n  admin: { admin: true }\n  viewer: { rules: [ { repos: "**", actions: [pull] } ] }\n',
  );
  const created = '2026-12-01T00:00:00.000Z';
  const robots = {
    robots: {
      'ci-secret': { secret: secretHash, pull: ['apps/**'], push: ['apps/web'], created, expires: null },
      'gha-app': {
        oidc: {
          issuer: 'https://token.actions.githubusercontent.com',
          audience: 'registry.example.com',
          claims: { repository: 'org/app', ref: 'refs/heads/main' },
        },
        push: ['org/app/**'],
        created,
        expires: '2099-01-01T00:00:00.000Z',
      },
      fired: { secret: secretHash, pull: ['**'], created, expires: null, revoked: '2026-12-02T00:00:00.000Z' },
    },
  };
  await writeFile(join(dir, 'robots.yaml'), stringify(robots), { mode: 0o600 });
  reg = createRegistryServer({
    port: 0,
    dataDir: join(dir, 'data'),
    htpasswd: join(dir, 'htpasswd'),
    access: join(dir, 'access.yaml'),
    authMode: 'token',
    tokenKey: join(dir, 'token-key.pem'),
    logLevel: 'silent',
  });
  regUrl = (await reg.listen()).url;
  ui = createUiServer({ registry: regUrl, port: 0 });
  base = (await ui.listen()).url;
});
afterAll(async () => {
  await ui?.close();
  await reg?.close();
  await rm(dir, { recursive: true, force: true });
});

async function signIn(username: string, password: string): Promise<string> {
  const res = await fetch(`${base}login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username, password, next: '' }).toString(),
  });
  expect(res.status).toBe(303);
  return res.headers.get('set-cookie')?.split(';')[0] ?? '';
}

const row = (page: string, name: string): string | undefined => rows(page)[name];
function rows(page: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of page.matchAll(/<tr data-robot="([^"]+)">([\s\S]*?)<\/tr>/g)) out[m[1] as string] = m[2] as string;
  return out;
}

describe('UI robots page', () => {
  it('shows administrators every robot: rights, expiry, revocation, last use and OIDC binding', async () => {
    // The secret robot gets a token, so it has a last use.
    const token = await fetch(`${regUrl}/auth/token?service=regctl&scope=repository:apps/web:pull`, {
      headers: { authorization: basicAuth('robot$ci-secret', 'robot-secret') },
    });
    expect(token.status).toBe(200);
    const cookie = await signIn('admin', 'admin-pw');
    const res = await fetch(`${base}robots`, { headers: { Cookie: cookie } });
    expect(res.status).toBe(200);
    const page = await res.text();
    expect(Object.keys(rows(page)).sort()).toEqual(['ci-secret', 'fired', 'gha-app']);
    const secret = row(page, 'ci-secret') ?? '';
    expect(secret).toContain('robot$ci-secret');
    expect(secret).toMatch(/pull<\/span> <code>apps\/\*\*<\/code>/);
    expect(secret).toMatch(/push<\/span> <code>apps\/web<\/code>/);
    expect(secret).toContain('never expires');
    expect(secret).not.toMatch(/>never</);
    const oidc = row(page, 'gha-app') ?? '';
    expect(oidc).toContain('https://token.actions.githubusercontent.com');
    expect(oidc).toContain('registry.example.com');
    expect(oidc).toContain('repository=org/app');
    expect(oidc).toContain('ref=refs/heads/main');
    expect(oidc).toMatch(/expires <span title=/);
    expect(oidc).toMatch(/>never</);
    expect(row(page, 'fired')).toContain('revoked');
    expect(page).not.toContain(secretHash);
    expect(page).toContain(`href="/robots" aria-current="page"`);
  });

  it('refuses other users with a 403 and shows them no link; signed out, sends to sign-in', async () => {
    const cookie = await signIn('viewer', 'viewer-pw');
    const res = await fetch(`${base}robots`, { headers: { Cookie: cookie } });
    expect(res.status).toBe(403);
    expect(await res.text()).not.toContain('robot$');
    const repos = await (await fetch(`${base}repos`, { headers: { Cookie: cookie } })).text();
    expect(repos).not.toContain('href="/robots"');
    const out = await fetch(`${base}robots`, { redirect: 'manual' });
    expect(out.status).toBe(303);
    expect(out.headers.get('location')).toBe('/login?next=%2Frobots');
  });
});
