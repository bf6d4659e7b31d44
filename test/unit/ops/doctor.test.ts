/**
 * `doctor()` on the fake engine: which checks run in which order, with which verdicts and words, for a stack
 * whose engine is down, one with nothing running, and one running behind a stand-in Traefik.
 */
import { createServer, type Server } from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { doctor, type CheckResult } from '../../../src/ops/doctor.js';
import { containerSpec, loadStack } from '../../../src/ops/stack.js';
import { FakeEngine } from '../../../src/docker/fake-engine.js';
import { stackFixture, type StackFixture } from './fixture.js';

let fx: StackFixture;
let server: Server | undefined;

beforeEach(async () => {
  fx = await stackFixture();
});

afterEach(async () => {
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
  await fx.cleanup();
});

const dnsCheck = expect.objectContaining({ id: 'dns', title: 'Host names' }) as unknown as CheckResult;
const TIMEOUT_FAIL: CheckResult = {
  id: 'traefik-timeout',
  title: 'Traefik read timeout',
  status: 'fail',
  detail: 'uploads are cut after web: 60s (Traefik default)',
  fix: 'set traefik.readTimeout: 0s in regctl.yaml, then `regctl init --force` and `regctl up`',
};

describe('doctor', () => {
  it('engine down: the engine fails, checks that need it skip, the rest still run', async () => {
    const engine = new FakeEngine();
    engine.reachable = false;
    const progress: string[] = [];
    const report = await doctor({ dir: fx.dir, engine, platform: 'linux', onProgress: (t) => progress.push(t) });
    expect(report).toEqual({
      ok: false,
      mode: 'dev',
      checks: [
        {
          id: 'engine',
          title: 'Docker engine',
          status: 'fail',
          detail: 'no Docker engine reachable at the fake engine',
          fix: 'start the Docker daemon (sudo systemctl start docker), or point DOCKER_HOST at a running engine',
        },
        {
          id: 'config',
          title: 'Stack configuration',
          status: 'pass',
          detail: `${join(fx.dir, 'regctl.yaml')} is valid`,
        },
        {
          id: 'ports',
          title: 'Ports',
          status: 'pass',
          detail: `${fx.ports.http}, ${fx.ports.https}, ${fx.ports.registry} free or held by this stack`,
        },
        dnsCheck,
        { id: 'trust', title: 'Engine trusts the HTTP registry', status: 'skip', detail: 'no engine to ask' },
        {
          id: 'dev-ca',
          title: 'Local CA',
          status: 'fail',
          detail: 'certs/ca.crt is missing',
          fix: 'run `regctl up` (or `regctl init`): it makes the CA, then `regctl login --trust`',
        },
        { id: 'dev-cert', title: 'Dev certificate', status: 'skip', detail: 'no usable local CA' },
        { id: 'dev-ca-trust', title: 'Engine trusts the local CA', status: 'skip', detail: 'no usable local CA' },
        TIMEOUT_FAIL,
        { id: 'location', title: 'Upload Location headers', status: 'skip', detail: 'Traefik is not running' },
        { id: 'dev-https', title: 'HTTPS through Traefik', status: 'skip', detail: 'Traefik is not running' },
        { id: 'disk', title: 'Disk headroom', status: 'skip', detail: 'volume fx_registry-data not found' },
        { id: 'clock', title: 'Clock skew', status: 'skip', detail: 'nothing to compare with' },
      ],
    });
    expect(progress).toEqual(report.checks.map((c) => `${c.title}: ${c.status}`));
  });

  it('no regctl.yaml: the config check fails and nothing after it runs', async () => {
    await writeFile(join(fx.dir, 'regctl.yaml'), 'version: 1\nports: { http: 99999 }\n');
    const report = await doctor({ dir: fx.dir, engine: new FakeEngine(), prod: true });
    expect(report.ok).toBe(false);
    expect(report.mode).toBe('prod');
    expect(report.checks.map((c) => [c.id, c.status])).toEqual([
      ['engine', 'pass'],
      ['config', 'fail'],
    ]);
    expect(report.checks[1]?.fix).toBe('run `regctl init` in this directory, or fix regctl.yaml');
  });

  it('prod, nothing running: containers fail, the prod checks skip, the upload test skips', async () => {
    const engine = new FakeEngine();
    engine.volumes.set('fx_registry-data', { labels: {}, size: 0 });
    const report = await doctor({ dir: fx.dir, engine, platform: 'darwin', prod: true, uploadTest: true });
    expect(report.mode).toBe('prod');
    expect(report.checks).toEqual([
      { id: 'engine', title: 'Docker engine', status: 'pass', detail: 'the engine answers' },
      { id: 'config', title: 'Stack configuration', status: 'pass', detail: `${join(fx.dir, 'regctl.yaml')} is valid` },
      {
        id: 'ports',
        title: 'Ports',
        status: 'pass',
        detail: `${fx.ports.http}, ${fx.ports.https} free or held by this stack`,
      },
      dnsCheck,
      {
        id: 'stack',
        title: 'Stack containers',
        status: 'fail',
        detail: 'traefik is missing, registry is missing, ui is missing',
        fix: 'run `regctl up --prod` (and `regctl logs <service>` to see why a service is unhealthy)',
      },
      { ...TIMEOUT_FAIL, detail: 'uploads are cut after web: 60s (Traefik default), websecure: 60s (Traefik default)' },
      { id: 'location', title: 'Upload Location headers', status: 'skip', detail: 'Traefik is not running' },
      { id: 'upload', title: 'Slow large upload through Traefik', status: 'skip', detail: 'Traefik is not running' },
      expect.objectContaining({
        id: 'disk',
        status: 'skip',
        detail: expect.stringMatching(/^cannot read \/var\/lib\/docker\/volumes\/fx_registry-data\/_data: /),
      }),
      { id: 'clock', title: 'Clock skew', status: 'skip', detail: 'nothing to compare with' },
      { id: 'certificate', title: 'Certificate', status: 'skip', detail: 'Traefik is not running' },
      { id: 'acme-json', title: 'acme.json permissions', status: 'skip', detail: 'volume fx_letsencrypt not found' },
      {
        id: 'http-challenge',
        title: 'Port 80 for the HTTP challenge',
        status: 'skip',
        detail: 'Traefik is not running',
      },
    ]);
  });

  it('running behind Traefik: Location, disk headroom and clock are read from the registry', async () => {
    await fx.writeConfig('traefik: { readTimeout: 0s }\nregistry: { minFreeDisk: 1GB }\n');
    await writeFile(
      join(fx.dir, 'traefik/traefik.yml'),
      'entryPoints: { web: { address: ":80", transport: { respondingTimeouts: { readTimeout: 0s } } }, ping: { address: ":8082" } }\n',
    );
    const engine = new FakeEngine();
    engine.info = {
      insecureCidrs: [],
      insecureRegistries: [],
      systemTime: new Date(Date.now() - 10_000).toISOString(),
    };
    engine.images.set('regctl-test/traefik:v3.6', { id: 'sha256:traefik', labels: {} });
    engine.images.set('regctl:test', { id: 'sha256:prebuilt', labels: {} });
    const stack = await loadStack(fx.dir);
    for (const service of stack.model.services) {
      const spec = containerSpec(stack, service);
      await engine.createContainer(spec);
      await engine.startContainer(spec.name);
    }
    const seen: string[] = [];
    let free = 5e9;
    server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization ? 'auth' : 'anonymous'}`);
      res.setHeader('date', new Date().toUTCString());
      if (req.method === 'POST') res.writeHead(202, { location: '/v2/regctl-doctor/blobs/uploads/u1' }).end();
      else if (req.url === '/admin/v1/disk')
        res.writeHead(200).end(JSON.stringify({ freeBytes: free, totalBytes: 10e9 }));
      else res.writeHead(req.method === 'DELETE' ? 204 : 200).end();
    });
    await new Promise<void>((r) => server!.listen(fx.ports.http, '127.0.0.1', () => r()));

    const byId = async () =>
      Object.fromEntries((await doctor({ dir: fx.dir, engine, platform: 'linux' })).checks.map((c) => [c.id, c]));
    let checks = await byId();
    expect(checks.ports?.status).toBe('pass');
    expect(checks.stack).toMatchObject({ status: 'pass', detail: 'traefik healthy, registry healthy, ui healthy' });
    expect(checks['traefik-timeout']).toMatchObject({ status: 'pass', detail: 'entrypoints allow long uploads' });
    expect(checks.location).toEqual({
      id: 'location',
      title: 'Upload Location headers',
      status: 'pass',
      detail: 'relative',
    });
    expect(checks.disk).toEqual({
      id: 'disk',
      title: 'Disk headroom',
      status: 'pass',
      detail: "4.66 GiB free of 9.31 GiB on the registry's data volume",
    });
    expect(checks.clock).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/^engine 1[01] s, registry [01] s$/),
    });
    expect(checks.trust).toMatchObject({ status: 'fail' });
    expect(checks['trust-direct']).toMatchObject({
      status: 'warn',
      detail: `127.0.0.1:${fx.ports.registry} is not in an insecure range`,
    });
    expect(seen).toContain('DELETE /v2/regctl-doctor/blobs/uploads/u1 auth');

    free = 1.5e9;
    checks = await byId();
    expect(checks.disk).toMatchObject({
      status: 'warn',
      detail: "1.40 GiB free of 9.31 GiB on the registry's data volume: nearly full (floor 1GB)",
    });
    free = 0.5e9;
    checks = await byId();
    expect(checks.disk).toMatchObject({
      status: 'fail',
      detail: "477 MiB free of 9.31 GiB on the registry's data volume: under the 1GB floor, uploads are refused",
    });
  });
});
