/**
 * OIDC-bound robots in process over real sockets: a local issuer (test/helpers/oidc-issuer.ts: keys made here,
 * discovery and JWKS on 127.0.0.1) and the registry with token auth. A pipeline's ID token is the password of
 * `robot$NAME` at the token endpoint; everything a token can get wrong is refused, key rotation at the issuer is
 * followed, and unknown keys refetch the JWKS at most once per cooldown.
 */
import { createSecretKey } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { decodeJwt, SignJWT, UnsecuredJWT } from 'jose';
import { stringify } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRegistryServer, type RegistryServer } from '../../../src/registry/server.js';
import { claimMatches, issuerUrlProblem } from '../../../src/registry/auth/oidc.js';
import { parseRobotsFile } from '../../../src/registry/auth/robots.js';
import { basicAuth } from '../../helpers/auth.js';
import { LocalIssuer, makeKey } from '../../helpers/oidc-issuer.js';

let dir: string;
let issuer: LocalIssuer;
let server: RegistryServer | undefined;
let url: string;
const logs: string[] = [];

const GITHUB = { repository: 'org/app', ref: 'refs/heads/main' };

async function start(cooldownMs: number, claims: Record<string, string> = GITHUB): Promise<void> {
  const robots = {
    robots: {
      ci: {
        oidc: { issuer: issuer.url, audience: 'regctl-test', claims },
        pull: ['apps/**'],
        push: ['apps/**'],
        created: new Date().toISOString(),
        expires: null,
      },
    },
  };
  await writeFile(join(dir, 'robots.yaml'), stringify(robots), { mode: 0o600 });
  server = createRegistryServer({
    port: 0,
    dataDir: join(dir, 'data'),
    htpasswd: join(dir, 'htpasswd'),
    authMode: 'token',
    tokenKey: join(dir, 'token-key.pem'),
    oidc: { cooldownMs },
    // A dozen refused tokens in a row: throttling (which counts them, as it counts wrong secrets) has its own tests.
    throttle: { maxFailures: 1000 },
    log: (level, msg, fields) => logs.push(JSON.stringify({ level, msg, ...fields })),
  });
  url = (await server.listen()).url;
}

/** POST /auth/token as `docker login` does, with `password` as the robot's password. */
async function login(password: string, user = 'robot$ci') {
  const res = await fetch(`${url}/auth/token`, {
    method: 'POST',
    body: new URLSearchParams({
      service: 'regctl',
      client_id: 'unit',
      grant_type: 'password',
      username: user,
      password,
      access_type: 'offline',
      scope: 'repository:apps/app:pull,push',
    }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'regctl-oidc-unit-'));
  await writeFile(join(dir, 'htpasswd'), `admin:${bcrypt.hashSync('pw', 4)}\n`);
  issuer = new LocalIssuer();
  await issuer.start();
  logs.length = 0;
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  await issuer.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('OIDC robots at the token endpoint', () => {
  it('gives a pipeline token the robot patterns, and a refresh token an hour long at most', async () => {
    await start(60_000);
    const r = await login(await issuer.token({ claims: GITHUB }));
    expect(r.status).toBe(200);
    expect(r.body.scope).toBe('repository:apps/app:pull,push');
    const refresh = decodeJwt(r.body.refresh_token as string);
    expect((refresh.exp as number) - (refresh.iat as number)).toBeLessThanOrEqual(3600);
    const again = await fetch(`${url}/auth/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: r.body.refresh_token as string }),
    });
    expect(again.status).toBe(200);
    // The ID token is no Basic password on /v2/: robots sign in at the token endpoint only.
    const basic = await fetch(`${url}/v2/apps/app/tags/list`, {
      headers: { authorization: basicAuth('robot$ci', await issuer.token({ claims: GITHUB })) },
    });
    expect(basic.status).toBe(401);
  });

  it('refuses other claims, expired, wrong audience, wrong issuer, unknown key, alg none and HS256', async () => {
    await start(60_000);
    const stranger = await makeKey('key-1');
    const now = Math.floor(Date.now() / 1000);
    const cases: Record<string, string> = {
      'other repository': await issuer.token({ claims: { ...GITHUB, repository: 'org/other' } }),
      'other ref': await issuer.token({ claims: { ...GITHUB, ref: 'refs/heads/feature' } }),
      'claim missing': await issuer.token({ claims: { repository: 'org/app' } }),
      'claim not a string': await issuer.token({ claims: { ...GITHUB, ref: ['refs/heads/main'] } }),
      expired: await issuer.token({ claims: GITHUB, expiresIn: -120 }),
      'wrong audience': await issuer.token({ claims: GITHUB, audience: 'someone-else' }),
      'wrong issuer': await issuer.token({ claims: GITHUB, issuer: 'https://token.actions.githubusercontent.com' }),
      'unknown key': await issuer.token({ claims: GITHUB, key: await makeKey('key-9') }),
      'same kid, other key': await issuer.token({ claims: GITHUB, key: stranger }),
      'alg none': new UnsecuredJWT({ ...GITHUB, sub: 'x' })
        .setIssuer(issuer.url)
        .setAudience('regctl-test')
        .setIssuedAt()
        .setExpirationTime('5m')
        .encode(),
      'HS256 keyed with the public key': await new SignJWT({ ...GITHUB })
        .setProtectedHeader({ alg: 'HS256', kid: 'key-1' })
        .setIssuer(issuer.url)
        .setAudience('regctl-test')
        .setIssuedAt(now)
        .setExpirationTime(now + 300)
        .sign(createSecretKey(Buffer.from(JSON.stringify(issuer.keys[0]?.jwk)))),
      'not a JWT': 'not-a-token',
    };
    for (const [what, token] of Object.entries(cases)) {
      const r = await login(token);
      expect(r.status, what).toBe(401);
      expect((r.body as unknown as { errors: { code: string }[] }).errors[0]?.code, what).toBe('UNAUTHORIZED');
    }
    expect(logs.filter((l) => l.includes('OIDC token refused'))).toHaveLength(Object.keys(cases).length);
    // The right token still works after all that.
    expect((await login(await issuer.token({ claims: GITHUB }))).status).toBe(200);
    // Unknown kids within the cooldown of the first fetch fetched nothing more: made-up kids cannot flood the issuer.
    expect(issuer.jwksFetches).toBe(1);
    for (let i = 0; i < 3; i++) await login(await issuer.token({ claims: GITHUB, key: await makeKey(`made-up-${i}`) }));
    expect(issuer.jwksFetches).toBe(1);
  });

  it('follows a key rotation: the new kid refetches the JWKS, the retired key is refused', async () => {
    await start(0);
    const oldKey = issuer.keys[0];
    expect((await login(await issuer.token({ claims: GITHUB }))).status).toBe(200);
    expect(issuer.jwksFetches).toBe(1);
    await issuer.rotate('key-2');
    expect((await login(await issuer.token({ claims: GITHUB }))).status).toBe(200);
    expect(issuer.jwksFetches).toBe(2);
    expect((await login(await issuer.token({ claims: GITHUB, key: oldKey }))).status).toBe(401);
  });

  it('matches bound claims as globs when they hold *, and a GitLab project_path exactly', async () => {
    await start(60_000, { project_path: 'group/app', ref: 'refs/heads/*' });
    const gitlab = (ref: string, project = 'group/app') => issuer.token({ claims: { project_path: project, ref } });
    expect((await login(await gitlab('refs/heads/main'))).status).toBe(200);
    expect((await login(await gitlab('refs/heads/release'))).status).toBe(200);
    expect((await login(await gitlab('refs/tags/v1'))).status).toBe(401);
    expect((await login(await gitlab('refs/heads/main', 'group/app-fork'))).status).toBe(401);
  });

  it('refuses every token when the discovery document names another issuer', async () => {
    issuer.advertisedIssuer = 'https://elsewhere.example';
    await start(60_000);
    expect((await login(await issuer.token({ claims: GITHUB }))).status).toBe(401);
    expect(logs.some((l) => l.includes('names issuer https://elsewhere.example'))).toBe(true);
  });
});

describe('OIDC bindings', () => {
  it('allows https issuers, and plain http on loopback only', () => {
    expect(issuerUrlProblem('https://token.actions.githubusercontent.com')).toBeUndefined();
    expect(issuerUrlProblem('http://127.0.0.1:8080')).toBeUndefined();
    expect(issuerUrlProblem('http://localhost:8080')).toBeUndefined();
    expect(issuerUrlProblem('http://[::1]:8080')).toBeUndefined();
    expect(issuerUrlProblem('http://gitlab.example.com')).toMatch(/must be https/);
    expect(issuerUrlProblem('http://127.0.0.1.example.com')).toMatch(/must be https/);
    expect(issuerUrlProblem('not a url')).toMatch(/not a URL/);
  });

  it('matches claims exactly unless they hold *', () => {
    expect(claimMatches('org/app', 'org/app')).toBe(true);
    expect(claimMatches('org/app', 'org/app2')).toBe(false);
    expect(claimMatches('org/*', 'org/app')).toBe(true);
    expect(claimMatches('org/*', 'org/app/sub')).toBe(false);
    expect(claimMatches('org/a.p', 'org/axp')).toBe(false);
    expect(claimMatches('org/app', ['org/app'])).toBe(false);
  });

  it('refuses a robots file with both a secret and a binding, or an http issuer', () => {
    const base = { pull: ['a/**'], created: '2026-12-06T00:00:00.000Z' };
    const oidc = { issuer: 'https://issuer.example', audience: 'a', claims: { repository: 'o/a' } };
    const secret = bcrypt.hashSync('x', 4);
    expect(() => parseRobotsFile(stringify({ robots: { r: { ...base, secret, oidc } } }))).toThrow(/either a secret/);
    expect(() => parseRobotsFile(stringify({ robots: { r: base } }))).toThrow(/either a secret/);
    const http = { ...oidc, issuer: 'http://issuer.example' };
    expect(() => parseRobotsFile(stringify({ robots: { r: { ...base, oidc: http } } }))).toThrow(/must be https/);
    expect(parseRobotsFile(stringify({ robots: { r: { ...base, oidc } } })).r?.oidc).toEqual(oidc);
  });
});
