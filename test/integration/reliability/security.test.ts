/**
 * Security of the registry over a real socket: nothing readable or writable without valid credentials on any
 * route of the route table or the admin API; per-user permissions on every route, mount sources included;
 * brute-force throttling per client and per user; reject times that do not tell known users from unknown
 * ones; no secret in the logs or the process listing of a `regctl serve` child.
 */
import { readFile } from 'node:fs/promises';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_MODULES } from '../../../src/registry/admin/index.js';
import type { AdminRoute } from '../../../src/registry/admin/types.js';
import { ROUTES } from '../../../src/registry/http/routes.js';
import { createRegistryServer, type RegistryServer, type RegistryServerOptions } from '../../../src/registry/server.js';
import { HttpStatusError, RegistryClient, imageManifest, sha256 } from './helpers/client.js';
import { basicAuth } from '../../helpers/auth.js';
import { builtCliPresent, startServe } from '../../helpers/serve-process.js';

const PASSWORDS: Record<string, string> = {
  admin: 'Adm1n-secret-pw',
  team: 'T3am-secret-pw',
  viewer: 'V1ewer-secret-pw',
  deleter: 'D3leter-secret-pw',
  nobody: 'N0body-secret-pw',
};
const ACCESS = `users:
  admin: { admin: true }
  team: { rules: [ { repos: "sec/team/**", actions: [pull, push] } ] }
  viewer: { rules: [ { repos: "sec/public", actions: [pull] } ] }
  deleter: { rules: [ { repos: "sec/team/**", actions: [pull, delete] } ] }
`;
const REPOS = ['sec/private', 'sec/team/app', 'sec/public'];
const CONFIG = Buffer.from('{"os":"linux"}');
const layerOf = (repo: string) => Buffer.from(`layer of ${repo}`);

const auth = (user: string, password = PASSWORDS[user] as string) => basicAuth(user, password);

async function withRegistry(
  dir: string,
  name: string,
  opts: Partial<RegistryServerOptions> = {},
): Promise<{ server: RegistryServer; url: string }> {
  const server = createRegistryServer({
    port: 0,
    dataDir: join(dir, `${name}-data`),
    htpasswd: join(dir, 'htpasswd'),
    access: join(dir, 'access.yaml'),
    logLevel: 'silent',
    ...opts,
  });
  return { server, url: (await server.listen()).url };
}

function adminRoutes(): AdminRoute[] {
  const routes: AdminRoute[] = [];
  for (const mod of ADMIN_MODULES) mod((r) => routes.push(r));
  return routes;
}

/** One concrete path per route of the route table; a new route without a sample fails the test. */
function samplePath(routeName: string, repo: string, digest: string): string {
  const paths: Record<string, string> = {
    base: '/v2/',
    catalog: '/v2/_catalog',
    upload: `/v2/${repo}/blobs/uploads/00000000-0000-4000-8000-000000000000`,
    uploads: `/v2/${repo}/blobs/uploads/`,
    blob: `/v2/${repo}/blobs/${digest}`,
    manifest: `/v2/${repo}/manifests/latest`,
    tags: `/v2/${repo}/tags/list`,
    referrers: `/v2/${repo}/referrers/${digest}`,
  };
  const p = paths[routeName];
  if (!p) throw new Error(`no sample path for route ${routeName}: add one`);
  return p;
}

interface SecurityFixture {
  dir: string;
  reg: { server: RegistryServer; url: string };
  admin: RegistryClient;
}

/** The users and access file above, a registry with the throttle out of the way, and an image in each of REPOS. */
async function startFixture(): Promise<SecurityFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'regctl-sec-'));
  await writeFile(
    join(dir, 'htpasswd'),
    Object.entries(PASSWORDS)
      .map(([u, p]) => `${u}:${bcrypt.hashSync(p, 4)}`)
      .join('\n') + '\n',
    { mode: 0o600 },
  );
  await writeFile(join(dir, 'access.yaml'), ACCESS);
  const reg = await withRegistry(dir, 'main', { throttle: { maxFailures: 1_000_000 } });
  const admin = new RegistryClient(reg.url, auth('admin'));
  for (const repo of REPOS) {
    await admin.pushBlobMonolithic(repo, layerOf(repo));
    await admin.pushBlobMonolithic(repo, CONFIG);
    await admin.putManifest(repo, 'latest', imageManifest(CONFIG, [layerOf(repo)]));
  }
  return { dir, reg, admin };
}

async function stopFixture(fx: SecurityFixture | undefined): Promise<void> {
  if (!fx) return;
  await fx.reg.server.close();
  await rm(fx.dir, { recursive: true, force: true });
}

describe('security: authentication, permissions, mounts', () => {
  let fx: SecurityFixture | undefined;
  let reg: SecurityFixture['reg'];
  let admin: RegistryClient;
  beforeAll(async () => {
    fx = await startFixture();
    ({ reg, admin } = fx);
  });
  afterAll(() => stopFixture(fx));

  it('without valid credentials every route of the route table, the admin API and /metrics answer 401 and reveal nothing', async () => {
    const digest = sha256(layerOf('sec/private'));
    const targets: [string, string][] = [];
    for (const route of ROUTES)
      for (const method of Object.keys(route.methods))
        targets.push([method, samplePath(route.name, 'sec/private', digest)]);
    for (const r of adminRoutes()) targets.push([r.method, `/admin/v1/${r.path}`]);
    targets.push(['GET', '/metrics']);
    expect(targets.length).toBeGreaterThan(20);
    const secrets = [digest, 'sec/private', 'sec/team', 'latest', sha256(CONFIG)];
    for (const credentials of [
      undefined,
      auth('admin', 'wrong'),
      auth('ghost', 'whatever'),
      'Bearer x.y.z',
      auth('admin', ''),
    ]) {
      const c = new RegistryClient(reg.url, credentials);
      for (const [method, path] of targets) {
        const res = await c.request(
          method,
          path,
          method === 'PUT' || method === 'PATCH' || method === 'POST' ? { body: '{}' } : {},
        );
        const body = await res.text();
        expect(res.status, `${method} ${path} with ${credentials ?? 'no credentials'}`).toBe(401);
        expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
        if (method !== 'HEAD')
          expect((JSON.parse(body) as { errors: { code: string }[] }).errors[0]?.code).toBe('UNAUTHORIZED');
        for (const s of secrets) if (!path.includes(s)) expect(body).not.toContain(s);
      }
    }
    // Health is the one open endpoint, and it says nothing about content.
    const health = await fetch(`${reg.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    // Nothing was written by any refused request.
    const catalog = await admin.json<{ repositories: string[] }>('GET', '/v2/_catalog');
    expect(catalog.repositories).toEqual([...REPOS].sort());
  });

  it('per-user permissions hold on every repository route', async () => {
    const can: Record<string, Record<string, ('pull' | 'push' | 'delete')[]>> = {
      team: { 'sec/private': [], 'sec/team/app': ['pull', 'push'], 'sec/public': [] },
      viewer: { 'sec/private': [], 'sec/team/app': [], 'sec/public': ['pull'] },
      deleter: { 'sec/private': [], 'sec/team/app': ['pull', 'delete'], 'sec/public': [] },
      nobody: { 'sec/private': [], 'sec/team/app': [], 'sec/public': [] },
    };
    let checked = 0;
    for (const [user, repos] of Object.entries(can)) {
      const c = new RegistryClient(reg.url, auth(user));
      for (const [repo, actions] of Object.entries(repos)) {
        for (const route of ROUTES) {
          for (const [method, m] of Object.entries(route.methods)) {
            if (!m || m.action === 'base' || m.action === 'catalog') continue;
            // Deletes that are allowed would remove the fixture: only their refusal is exercised here.
            if (m.action === 'delete' && actions.includes('delete')) continue;
            const path = samplePath(route.name, repo, `sha256:${'0'.repeat(64)}`);
            const res = await c.request(method, path, method === 'PUT' || method === 'PATCH' ? { body: 'x' } : {});
            await res.arrayBuffer();
            checked++;
            if (actions.includes(m.action)) expect(res.status, `${user} ${method} ${path}`).not.toBeOneOf([401, 403]);
            else {
              expect(res.status, `${user} ${method} ${path}`).toBe(403);
              if (method !== 'HEAD') expect(res.headers.get('content-type')).toContain('application/json');
            }
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(100);
    // The deleter's delete on its repository is allowed (the fixture is pushed again afterwards).
    const del = await new RegistryClient(reg.url, auth('deleter')).deleteBlob(
      'sec/team/app',
      sha256(layerOf('sec/team/app')),
    );
    expect(del).toBe(202);
    await admin.pushBlobMonolithic('sec/team/app', layerOf('sec/team/app'));
  });

  it('the catalog lists only what the user may pull; the admin API and /metrics are admin only', async () => {
    const list = async (user: string) =>
      new RegistryClient(reg.url, auth(user)).json<{ repositories: string[] }>('GET', '/v2/_catalog');
    expect((await list('viewer')).repositories).toEqual(['sec/public']);
    expect((await list('team')).repositories).toEqual(['sec/team/app']);
    expect((await list('nobody')).repositories).toEqual([]);
    // The one route open to users reads one repository's policies: each asks for a repository it may pull (nobody
    // may pull none, and is refused).
    const pullable: Record<string, string | undefined> = { team: 'sec/team/app', viewer: 'sec/public' };
    for (const user of ['team', 'viewer', 'nobody']) {
      const c = new RegistryClient(reg.url, auth(user));
      for (const r of adminRoutes()) {
        const scoped = r.path === 'repository-policies';
        const query = scoped ? `?name=${pullable[user] ?? 'sec/public'}` : '';
        const res = await c.request(
          r.method,
          `/admin/v1/${r.path}${query}`,
          r.method === 'POST' ? { body: '{}', headers: { 'Content-Type': 'application/json' } } : {},
        );
        await res.arrayBuffer();
        const refused = r.adminOnly || (scoped && pullable[user] === undefined);
        expect(res.status, `${user} ${r.method} /admin/v1/${r.path}`).toBe(refused ? 403 : 200);
      }
      const metrics = await c.request('GET', '/metrics');
      await metrics.arrayBuffer();
      expect(metrics.status).toBe(403);
    }
  });

  it('a user cannot mount from a repository they cannot pull, with or without from=', async () => {
    const team = new RegistryClient(reg.url, auth('team'));
    const privateLayer = sha256(layerOf('sec/private'));
    for (const query of [
      `mount=${privateLayer}&from=sec/private`,
      `mount=${privateLayer}&from=sec/public`,
      `mount=${privateLayer}`,
    ]) {
      const res = await team.request('POST', `/v2/sec/team/app/blobs/uploads/?${query}`);
      await res.arrayBuffer();
      expect(res.status, query).toBe(202);
      const loc = res.headers.get('location');
      if (loc) await (await team.request('DELETE', loc)).arrayBuffer();
    }
    // Nothing was linked: the private blob is not readable through the team repository, even by the admin.
    expect((await admin.getBlob('sec/team/app', privateLayer)).status).toBe(404);
    expect((await team.getBlob('sec/team/app', privateLayer)).status).toBe(404);
    // A manifest cannot smuggle the private blob in either.
    await expect(
      team.putManifest('sec/team/app', 'smuggle', imageManifest(CONFIG, [layerOf('sec/private')])),
    ).rejects.toThrow(HttpStatusError);
    // Mounting from a repository the user may pull works.
    const teamLayer = sha256(layerOf('sec/team/app'));
    expect(await new RegistryClient(reg.url, auth('admin')).mountBlob('sec/public', 'sec/team/app', teamLayer)).toBe(
      true,
    );
  });
});

describe('security: throttling, timing, secrets', () => {
  let fx: SecurityFixture | undefined;
  let dir: string;
  beforeAll(async () => {
    fx = await startFixture();
    ({ dir } = fx);
  });
  afterAll(() => stopFixture(fx));

  it('brute force is throttled per user (from many addresses) and per client address (across users)', async () => {
    // The test is the trusted proxy: X-Forwarded-For names the client (trusted-proxy.test.ts: without it, ignored).
    const r = await withRegistry(dir, 'throttle', {
      throttle: { maxFailures: 5, windowMs: 60_000, blockMs: 30_000 },
      trustedProxies: ['127.0.0.1/32'],
    });
    try {
      const attempt = async (user: string, password: string, ip: string) => {
        const res = await fetch(`${r.url}/v2/`, {
          headers: { Authorization: auth(user, password), 'X-Forwarded-For': ip },
        });
        await res.arrayBuffer();
        return { status: res.status, retryAfter: res.headers.get('retry-after') };
      };
      // Per user: failures spread over many addresses still lock the user, even for the right password.
      for (let i = 0; i < 5; i++) expect((await attempt('team', `guess-${i}`, `198.51.100.${i + 1}`)).status).toBe(401);
      const locked = await attempt('team', PASSWORDS.team as string, '198.51.100.200');
      expect(locked.status).toBe(429);
      expect(Number(locked.retryAfter)).toBeGreaterThan(0);
      // Other users are not affected by that lock.
      expect((await attempt('viewer', PASSWORDS.viewer as string, '198.51.100.201')).status).toBe(200);
      // Per client: one address guessing many user names gets blocked, whatever the user.
      for (let i = 0; i < 5; i++) expect((await attempt(`ghost-${i}`, 'x', '203.0.113.7')).status).toBe(401);
      expect((await attempt('viewer', PASSWORDS.viewer as string, '203.0.113.7')).status).toBe(429);
      expect((await attempt('viewer', PASSWORDS.viewer as string, '203.0.113.8')).status).toBe(200);
    } finally {
      await r.server.close();
    }
  });

  it(
    'the time to reject does not reveal whether a user exists (bcrypt cost 10, interleaved samples)',
    { timeout: 180_000 },
    async () => {
      const tdir = await mkdtemp(join(tmpdir(), 'regctl-timing-'));
      await writeFile(
        join(tdir, 'htpasswd'),
        `known:${bcrypt.hashSync('right-password', 10)}\nother:${bcrypt.hashSync('other-password', 10)}\n`,
      );
      const server = createRegistryServer({
        port: 0,
        dataDir: join(tdir, 'data'),
        htpasswd: join(tdir, 'htpasswd'),
        logLevel: 'silent',
        throttle: { maxFailures: 1_000_000 },
      });
      const { url } = await server.listen();
      try {
        const reject = async (user: string, i: number): Promise<number> => {
          const t0 = process.hrtime.bigint();
          const res = await fetch(`${url}/v2/`, { headers: { Authorization: auth(user, `wrong-${i}`) } });
          await res.arrayBuffer();
          expect(res.status).toBe(401);
          return Number(process.hrtime.bigint() - t0) / 1e6;
        };
        for (let i = 0; i < 4; i++) await reject(i % 2 ? 'known' : 'ghost', i);
        const known: number[] = [];
        const unknown: number[] = [];
        for (let i = 0; i < 30; i++) {
          // Interleave so that load drifts on the machine hit both groups alike.
          if (i % 2 === 0) {
            known.push(await reject('known', i));
            unknown.push(await reject(`ghost-${i}`, i));
          } else {
            unknown.push(await reject(`ghost-${i}`, i));
            known.push(await reject('known', i));
          }
        }
        const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] as number;
        const mk = median(known);
        const mu = median(unknown);
        // Mann-Whitney U: the share of (known, unknown) pairs where the known reject was slower; 0.5 means no
        // tendency either way. A missing dummy compare would put it near 1 (bcrypt only for known users).
        let wins = 0;
        for (const k of known) for (const u of unknown) wins += k > u ? 1 : k === u ? 0.5 : 0;
        const auc = wins / (known.length * unknown.length);
        console.log(
          `reject times: known median ${mk.toFixed(1)} ms, unknown median ${mu.toFixed(1)} ms, P(known slower) ${auc.toFixed(2)}`,
        );
        expect(Math.abs(mk - mu) / Math.max(mk, mu)).toBeLessThan(0.35);
        expect(auc).toBeGreaterThan(0.2);
        expect(auc).toBeLessThan(0.8);
      } finally {
        await server.close();
        await rm(tdir, { recursive: true, force: true });
      }
    },
  );

  it.skipIf(!builtCliPresent())(
    'a regctl serve child never writes secrets to its logs or its command line (needs npm run build)',
    { timeout: 120_000 },
    async () => {
      const data = join(dir, 'logs-data');
      const srv = await startServe([
        '--data',
        data,
        '--htpasswd',
        join(dir, 'htpasswd'),
        '--access',
        join(dir, 'access.yaml'),
        '--log-level',
        'debug',
      ]);
      try {
        const c = new RegistryClient(srv.url, auth('admin'));
        await c.pushBlobMonolithic('sec/logs', CONFIG);
        await c.pushBlobMonolithic('sec/logs', layerOf('sec/logs'));
        await c.putManifest('sec/logs', 'v1', imageManifest(CONFIG, [layerOf('sec/logs')]));
        await c.getManifest('sec/logs', 'v1');
        await c.json('GET', '/admin/v1/usage');
        for (const [user, pw] of [
          ['team', 'T3am-secret-pw-WRONG'],
          ['ghost', 'Gh0st-secret-pw'],
          ['admin', PASSWORDS.admin + 'x'],
        ] as const) {
          const res = await fetch(`${srv.url}/v2/_catalog`, { headers: { Authorization: auth(user, pw) } });
          await res.arrayBuffer();
        }
        const res = await fetch(`${srv.url}/v2/_catalog?access_token=${encodeURIComponent('Qu3ry-secret-token')}`, {
          headers: { Authorization: auth('team') },
        });
        await res.arrayBuffer();
        await new Promise((r) => setTimeout(r, 300));
        const cmdline = (await readFile(`/proc/${srv.pid}/cmdline`, 'utf8')).replace(/\0/g, ' ');
        const output = srv.output();
        expect(output).toContain('"msg":"request"');
        const htpasswd = await readFile(join(dir, 'htpasswd'), 'utf8');
        const forbidden = [
          ...Object.values(PASSWORDS),
          'T3am-secret-pw-WRONG',
          'Gh0st-secret-pw',
          'Qu3ry-secret-token',
          ...Object.entries(PASSWORDS).map(([u, p]) => Buffer.from(`${u}:${p}`).toString('base64')),
          ...htpasswd
            .trim()
            .split('\n')
            .map((l) => l.slice(l.indexOf(':') + 1)),
          'Basic ',
          'authorization',
        ];
        for (const s of forbidden) {
          expect(output.toLowerCase(), `log output contains ${s.slice(0, 12)}…`).not.toContain(s.toLowerCase());
          expect(cmdline).not.toContain(s);
        }
      } finally {
        await srv.stop();
      }
    },
  );
});
