/**
 * A real compose implementation (Debian's docker-compose 1.29) accepts the rendered compose files, and its
 * own reading of them matches the StackModel they came from. Then the real Traefik, started by
 * docker-compose from the rendered files, becomes healthy and routes a backend carrying the model's labels
 * (dev: HTTP + CORS; prod: HTTP→HTTPS redirect, HSTS).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { parseStackConfig, type StackConfig } from '../../src/config/schema.js';
import { buildStackModel } from '../../src/stack/build-model.js';
import { renderCompose } from '../../src/stack/compose.js';
import type { StackMode, StackModel } from '../../src/stack/model.js';
import { PACKAGE_DIR, renderStack, writeStack } from '../../src/stack/render.js';
import { ensureDevCertificates, makeCa } from '../../src/ops/dev-ca.js';
import { probe } from '../../src/ops/http-probe.js';
import { BASE_IMAGE, TRAEFIK_IMAGE, freePort, imageAvailable, peerAvailable, peerPath } from '../helpers/peers.js';

const run = promisify(execFile);
const available = peerAvailable('docker-compose');

interface ComposeService {
  image: string;
  container_name: string;
  command?: string[];
  environment?: Record<string, string>;
  labels?: Record<string, string>;
  ports?: ({ published: number; target: number; host_ip?: string } | string)[];
  volumes?: string[];
  depends_on?: Record<string, unknown>;
  restart: string;
  healthcheck?: { test: string[]; interval: string; timeout: string; retries: number; start_period: string };
  build?: { context: string; dockerfile: string; args: Record<string, string> };
  networks: Record<string, unknown>;
}
interface ComposeConfig {
  services: Record<string, ComposeService>;
  networks: Record<string, { name: string }>;
  volumes: Record<string, { name: string }>;
}

async function composeConfig(dir: string, file: string): Promise<{ config: ComposeConfig; stderr: string }> {
  const { stdout, stderr } = await run(peerPath('docker-compose'), ['-f', file, 'config'], {
    cwd: dir,
    env: { PATH: process.env.PATH },
  });
  return { config: parse(stdout) as ComposeConfig, stderr };
}

/** docker-compose prints ports in the long form, except those bound to one address ("IP:host:container"). */
function portOf(p: NonNullable<ComposeService['ports']>[number]): { hostIp?: string; host: number; container: number } {
  if (typeof p === 'string') {
    const [ip, host, container] = p.replace(/\/tcp$/, '').split(':');
    return { hostIp: ip!, host: Number(host), container: Number(container) };
  }
  return { ...(p.host_ip ? { hostIp: p.host_ip } : {}), host: p.published, container: p.target };
}

function expectMatchesModel(config: ComposeConfig, model: StackModel, dir: string): void {
  expect(Object.keys(config.services).sort()).toEqual(model.services.map((s) => s.name).sort());
  expect(config.networks.proxy!.name).toBe(model.network.name);
  expect(Object.fromEntries(Object.entries(config.volumes).map(([k, v]) => [k, v.name]))).toEqual(
    Object.fromEntries(model.volumes.map((v) => [v.key, v.name])),
  );
  const volumeKeys = new Set(model.volumes.map((v) => v.key));
  for (const svc of model.services) {
    const c = config.services[svc.name]!;
    expect(c.image).toBe(svc.image);
    expect(c.container_name).toBe(svc.containerName);
    expect(c.command).toEqual(svc.command);
    expect(c.environment ?? {}).toEqual(svc.environment);
    expect(c.restart).toBe(svc.restart);
    expect(Object.keys(c.networks)).toEqual(['proxy']);
    expect(c.labels).toEqual(
      Object.fromEntries(Object.entries(svc.labels).filter(([k]) => !k.startsWith('com.docker.compose.'))),
    );
    expect((c.ports ?? []).map(portOf)).toEqual(svc.ports);
    expect(c.volumes ?? []).toEqual(
      svc.mounts.map((m) => {
        const source = m.type === 'bind' && !isAbsolute(m.source) ? join(dir, m.source) : m.source;
        expect(m.type === 'volume' ? volumeKeys.has(m.source) : true).toBe(true);
        return `${source}:${m.target}:${m.readOnly ? 'ro' : 'rw'}`;
      }),
    );
    expect(Object.keys(c.depends_on ?? {})).toEqual(svc.dependsOn);
    expect(c.healthcheck?.test).toEqual(svc.healthcheck?.test);
    if (svc.build !== undefined) {
      const build = model.builds[svc.build]!;
      expect(c.build).toMatchObject({ context: PACKAGE_DIR, dockerfile: build.dockerfile, args: build.args });
    } else {
      expect(c.build).toBeUndefined();
    }
  }
}

describe.skipIf(!available)('docker-compose 1.29 accepts the rendered stack', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'regctl-compose-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const cases: [string, Record<string, unknown>][] = [
    ['defaults', {}],
    [
      'prod options',
      {
        name: 'team',
        host: 'reg.example.org',
        ports: { http: 8000, https: 8443, registry: 0, dashboard: 9090 },
        acme: { email: 'ops@example.org', caCertificates: 'pebble.pem' },
        traefik: { dashboard: true },
      },
    ],
    ['no UI, named data volume', { ui: { enabled: false }, storage: { volume: 'base_registry_data' } }],
  ];

  test.each(cases)('%s: compose.yaml and compose.prod.yaml', async (name, input) => {
    const config: StackConfig = parseStackConfig({ version: 1, ...input }).config!;
    const dir = join(root, name.replace(/\W+/g, '-'));
    await writeStack(
      dir,
      renderStack(config, {
        secrets: {
          username: 'admin',
          password: 'integration-pass',
          htpasswd: 'admin:$2y$05$abcdefghijklmnopqrstuu5Yt0zB6u0D0ci0fPXS8ywmyPM3Qk8FK\n',
        },
      }),
    );
    await writeFile(join(dir, 'pebble.pem'), '');
    for (const [mode, file] of [
      ['dev', 'compose.yaml'],
      ['prod', 'compose.prod.yaml'],
    ] as [StackMode, string][]) {
      const { config: composed, stderr } = await composeConfig(dir, file);
      expect(stderr, `${file}: docker-compose warned`).not.toMatch(/WARN|ERROR/i);
      expectMatchesModel(composed, buildStackModel(config, mode), dir);
    }
  });

  test('a $ in a model value reaches compose unexpanded', async () => {
    const dir = join(root, 'dollar');
    const config = parseStackConfig({ version: 1 }).config!;
    await writeStack(
      dir,
      renderStack(config, { secrets: { username: 'admin', password: 'integration-pass', htpasswd: 'admin:x\n' } }),
    );
    const model = structuredClone(buildStackModel(config, 'dev'));
    model.services[1]!.labels['example.hash'] = 'admin:$2y$05$abc';
    model.services[1]!.environment = { HASH: '$HOME' };
    await writeFile(join(dir, 'compose.yaml'), renderCompose(model));
    const { config: composed, stderr } = await composeConfig(dir, 'compose.yaml');
    expect(stderr).not.toMatch(/variable is not set/);
    // docker-compose prints the escaped form back; either way no interpolation happened.
    expect(composed.services.registry!.labels!['example.hash']).toMatch(/^admin:\$\$?2y\$\$?05\$\$?abc$/);
    expect(composed.services.registry!.environment!.HASH).toMatch(/^\$\$?HOME$/);
  });

  test('without REGCTL_PACKAGE_DIR in .env, compose stops with a message saying what to set', async () => {
    const dir = join(root, 'no-package-dir');
    const config = parseStackConfig({ version: 1 }).config!;
    await writeStack(
      dir,
      renderStack(config, { secrets: { username: 'admin', password: 'integration-pass', htpasswd: 'admin:x\n' } }),
    );
    const env = await readFile(join(dir, '.env'), 'utf8');
    await writeFile(join(dir, '.env'), env.replace(/^REGCTL_PACKAGE_DIR=.*\n/m, ''));
    const failure = await composeConfig(dir, 'compose.yaml').then(
      () => undefined,
      (err: { stderr: string }) => err,
    );
    expect(failure?.stderr).toContain('set REGCTL_PACKAGE_DIR in .env to the regctl package directory');
  });
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function send(url: string, opts: { method?: string; host: string; headers?: Record<string, string> }): Promise<Reply> {
  const target = new URL(url);
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      target,
      {
        method: opts.method ?? 'GET',
        headers: { host: opts.host, ...opts.headers },
        servername: opts.host.split(':')[0],
        rejectUnauthorized: false,
        timeout: 10_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`timeout on ${url}`)));
    req.end();
  });
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
}

const docker = (args: string[]) => run('docker', args, { env: { PATH: process.env.PATH } });

const traefikReady = available && imageAvailable(TRAEFIK_IMAGE) && imageAvailable(BASE_IMAGE);

describe.skipIf(!traefikReady)('real Traefik from the rendered files', () => {
  const BACKEND =
    "require('http').createServer((q,r)=>{r.setHeader('content-type','text/plain');r.end(q.method+' '+q.url+' proto='+q.headers['x-forwarded-proto'])}).listen(5000)";
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'regctl-traefik-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function withStack(
    mode: StackMode,
    check: (ctx: { http: number; https: number; model: StackModel; dir: string }) => Promise<void>,
  ): Promise<void> {
    const project = `rcfg${randomBytes(4).toString('hex')}`;
    const [http, https] = [await freePort('0.0.0.0'), await freePort('0.0.0.0')];
    const config = parseStackConfig({
      version: 1,
      name: project,
      host: 'example.test',
      ports: { http, https, registry: 0 },
      images: { traefik: TRAEFIK_IMAGE, base: BASE_IMAGE },
      // Unreachable on purpose: no certificate is obtained, Traefik serves its default one.
      acme: { caServer: 'https://127.0.0.1:1/directory' },
    }).config!;
    const dir = join(root, project);
    await writeStack(
      dir,
      renderStack(config, { secrets: { username: 'admin', password: 'integration-pass', htpasswd: 'admin:x\n' } }),
    );
    const model = buildStackModel(config, mode);
    // What `regctl init` adds beside the rendered files: the local CA and the leaf the dev Traefik serves.
    await ensureDevCertificates(dir, config.host, Object.values(model.hostnames));
    const file = mode === 'dev' ? 'compose.yaml' : 'compose.prod.yaml';
    const compose = (args: string[]) =>
      run(peerPath('docker-compose'), ['-f', file, ...args], { cwd: dir, env: { PATH: process.env.PATH } });
    const registry = model.services.find((s) => s.name === 'registry')!;
    try {
      await compose(['up', '-d', 'traefik']);
      const traefik = model.services.find((s) => s.name === 'traefik')!.containerName;
      await until('Traefik healthy (its ping health check)', async () => {
        const { stdout } = await docker(['inspect', '-f', '{{.State.Health.Status}}', traefik]);
        return stdout.trim() === 'healthy' ? true : undefined;
      });
      await docker([
        'run',
        '-d',
        '--name',
        `${project}-backend`,
        '--network',
        model.network.name,
        ...Object.entries(registry.labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
        BASE_IMAGE,
        'node',
        '-e',
        BACKEND,
      ]);
      await check({ http, https, model, dir });
    } finally {
      await docker(['rm', '-f', `${project}-backend`]).catch(() => undefined);
      await compose(['down', '-v']).catch(() => undefined);
    }
  }

  test('dev: registry.<host> on HTTP reaches the backend; CORS answers the UI origin only', async () => {
    await withStack('dev', async ({ http }) => {
      const host = `registry.example.test:${http}`;
      const reply = await until('the route', async () => {
        const r = await send(`http://127.0.0.1:${http}/v2/`, { host });
        return r.status === 200 ? r : undefined;
      });
      expect(reply.body).toBe('GET /v2/ proto=http');
      const uiOrigin = `http://registry-ui.example.test:${http}`;
      const preflight = await send(`http://127.0.0.1:${http}/v2/a/manifests/b`, {
        method: 'OPTIONS',
        host,
        headers: { origin: uiOrigin, 'access-control-request-method': 'DELETE' },
      });
      expect(preflight.headers['access-control-allow-origin']).toBe(uiOrigin);
      expect(preflight.headers['access-control-allow-methods']).toBe('GET,HEAD,OPTIONS,DELETE');
      const other = await send(`http://127.0.0.1:${http}/v2/`, { host, headers: { origin: 'http://elsewhere.test' } });
      expect(other.headers['access-control-allow-origin']).toBeUndefined();
      const unknown = await send(`http://127.0.0.1:${http}/v2/`, { host: 'other.example.test' });
      expect(unknown.status).toBe(404);
    });
  });

  test('dev: websecure serves the local CA leaf, verified against ca.crt alone, and routes to the backend', async () => {
    await withStack('dev', async ({ https, dir }) => {
      const ca = await readFile(join(dir, 'certs/ca.crt'), 'utf8');
      const reply = await until('the HTTPS route', async () => {
        const r = await probe({ port: https, host: 'registry.example.test', path: '/v2/', tls: true, ca });
        return r.status === 200 ? r : undefined;
      });
      expect(reply.body).toBe('GET /v2/ proto=https');
      // Verified: a client trusting another CA is refused.
      const stranger = (await makeCa('example.test')).cert;
      await expect(
        probe({ port: https, host: 'registry.example.test', path: '/v2/', tls: true, ca: stranger }),
      ).rejects.toThrow(/unable to verify/);
    });
  });

  test('prod: HTTP redirects to HTTPS (keeping the path and the port), HTTPS reaches the backend with HSTS', async () => {
    await withStack('prod', async ({ http, https }) => {
      const redirect = await until('the redirect', async () => {
        const r = await send(`http://127.0.0.1:${http}/v2/x/blobs/uploads/?digest=sha256:1`, {
          method: 'POST',
          host: 'registry.example.test',
        });
        return r.status === 308 ? r : undefined;
      });
      expect(redirect.headers.location).toBe(
        `https://registry.example.test:${https}/v2/x/blobs/uploads/?digest=sha256:1`,
      );
      const secure = await until('the HTTPS route', async () => {
        const r = await send(`https://127.0.0.1:${https}/v2/`, { host: 'registry.example.test' });
        return r.status === 200 ? r : undefined;
      });
      expect(secure.body).toBe('GET /v2/ proto=https');
      expect(secure.headers['strict-transport-security']).toBe('max-age=31536000');
    });
  });
});
