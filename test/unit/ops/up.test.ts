import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import tarStream from 'tar-stream';
import { FakeEngine } from '../../../src/docker/fake-engine.js';
import { EngineError } from '../../../src/docker/engine.js';
import { up, type UpOptions } from '../../../src/ops/up.js';
import { APPLIED_HASH_LABEL } from '../../../src/ops/stack.js';
import { capturedOutput, rejection, stackFixture, type StackFixture } from './fixture.js';

const TRAEFIK = 'regctl-test/traefik:v3.6';
const BASE = 'regctl-test/node:20';

let fx: StackFixture;
let engine: FakeEngine;

function options(extra: Partial<UpOptions> = {}): UpOptions {
  return {
    dir: fx.dir,
    out: capturedOutput().out,
    engine,
    skipProbes: true,
    packageDir: fx.pkg,
    healthTimeoutMs: 2000,
    ...extra,
  };
}

async function tarEntries(tar: Buffer): Promise<string[]> {
  const names: string[] = [];
  const extract = tarStream.extract();
  extract.on('entry', (header, stream, next) => {
    names.push(header.name);
    stream.on('end', next);
    stream.resume();
  });
  await new Promise<void>((resolve, reject) => {
    extract.on('finish', resolve);
    extract.on('error', reject);
    extract.end(tar);
  });
  return names;
}

beforeEach(async () => {
  fx = await stackFixture();
  engine = new FakeEngine();
  engine.images.set(TRAEFIK, { id: 'sha256:traefik', labels: {} });
  engine.images.set(BASE, { id: 'sha256:base', labels: {} });
});

afterEach(async () => {
  await fx.cleanup();
});

describe('up', () => {
  it('creates network, volumes, the image, then containers in dependency order', async () => {
    const result = await up(options());
    expect(engine.calls).toEqual([
      'network:fx_proxy',
      'volume:fx_registry-data',
      'build:regctl:test',
      'create:fx-traefik',
      'start:fx-traefik',
      'create:fx-registry',
      'start:fx-registry',
      'create:fx-ui',
      'start:fx-ui',
    ]);
    expect(result.containers.map((c) => [c.service, c.action])).toEqual([
      ['traefik', 'created'],
      ['registry', 'created'],
      ['ui', 'created'],
    ]);
    expect(result.unchanged).toBe(false);
  });

  it('gives containers what the model says: mounts resolved against the stack dir, ports, health check, aliases', async () => {
    await up(options());
    const registry = engine.specOf('fx-registry');
    expect(registry.mounts).toEqual([
      { type: 'volume', source: 'fx_registry-data', target: '/var/lib/registry', readOnly: false },
      { type: 'bind', source: join(fx.dir, 'auth'), target: '/auth', readOnly: true },
    ]);
    expect(registry.ports).toEqual([{ hostIp: '127.0.0.1', hostPort: fx.ports.registry, containerPort: 5000 }]);
    expect(registry.network).toBe('fx_proxy');
    expect(registry.aliases).toContain('registry');
    expect(registry.healthcheck?.test[0]).toBe('CMD');
    expect(registry.labels['traefik.http.routers.registry.rule']).toBe('Host(`registry.example.test`)');
    expect(registry.labels['com.docker.compose.project']).toBe('fx');
    expect(registry.labels[APPLIED_HASH_LABEL]).toMatch(/^[0-9a-f]{24}$/);
    const traefik = engine.specOf('fx-traefik');
    expect(traefik.mounts.find((m) => m.target === '/etc/traefik/traefik.yml')?.source).toBe(
      join(fx.dir, 'traefik/traefik.yml'),
    );
    expect(traefik.ports).toEqual([
      { hostPort: fx.ports.http, containerPort: 80 },
      { hostPort: fx.ports.https, containerPort: 443 },
    ]);
    // up made the local CA and the leaf the dev Traefik mounts (its directory only, never the CA key).
    expect(traefik.mounts.find((m) => m.target === '/etc/traefik/certs')?.source).toBe(join(fx.dir, 'certs/traefik'));
    expect((await stat(join(fx.dir, 'certs/ca.key'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(fx.dir, 'certs/traefik/example.test.key'))).mode & 0o777).toBe(0o600);
  });

  it('ships only the built package in the build context (no src/, no dev dependencies)', async () => {
    await up(options());
    expect(await tarEntries(engine.buildContexts[0]!)).toEqual([
      'bin/regctl.js',
      'dist/cli/main.js',
      'node_modules/prod-dep/index.js',
      'package-lock.json',
      'package.json',
      'templates/Dockerfile',
    ]);
  });

  it('changes nothing on a second run with nothing changed', async () => {
    await up(options());
    const before = engine.calls.length;
    const result = await up(options());
    expect(engine.calls.slice(before)).toEqual([]);
    expect(result.unchanged).toBe(true);
    expect(result.containers.every((c) => c.action === 'unchanged')).toBe(true);
  });

  it('recreates only the container whose definition changed', async () => {
    await up(options());
    await fx.writeConfig('registry: { logLevel: debug }\n');
    const before = engine.calls.length;
    const result = await up(options());
    expect(engine.calls.slice(before)).toEqual([
      'stop:fx-registry',
      'remove:fx-registry',
      'create:fx-registry',
      'start:fx-registry',
    ]);
    expect(result.containers.map((c) => [c.service, c.action])).toEqual([
      ['traefik', 'unchanged'],
      ['registry', 'recreated'],
      ['ui', 'unchanged'],
    ]);
  });

  it("recreates Traefik when its static config file's content changes", async () => {
    await up(options());
    await writeFile(join(fx.dir, 'traefik/traefik.yml'), 'entryPoints: { web: { address: ":80", transport: {} } }\n');
    const before = engine.calls.length;
    await up(options());
    expect(engine.calls.slice(before)).toEqual([
      'stop:fx-traefik',
      'remove:fx-traefik',
      'create:fx-traefik',
      'start:fx-traefik',
    ]);
  });

  it('rebuilds the image when the package changes, recreates the containers that run it, drops the old image', async () => {
    await up(options());
    const firstImage = engine.images.get('regctl:test')!.id;
    await writeFile(join(fx.pkg, 'dist/cli/main.js'), 'export const x = 2;\n');
    const before = engine.calls.length;
    const result = await up(options());
    expect(engine.calls.slice(before)).toEqual([
      'build:regctl:test',
      'stop:fx-registry',
      'remove:fx-registry',
      'create:fx-registry',
      'start:fx-registry',
      'stop:fx-ui',
      'remove:fx-ui',
      'create:fx-ui',
      'start:fx-ui',
      `remove-image:${firstImage}`,
    ]);
    expect(result.imagesBuilt).toEqual(['regctl:test']);
    expect(result.imagesRemoved).toEqual([firstImage]);
  });

  it('starts a stopped container without recreating it', async () => {
    await up(options());
    await engine.stopContainer('fx-ui');
    const before = engine.calls.length;
    const result = await up(options());
    expect(engine.calls.slice(before)).toEqual(['start:fx-ui']);
    expect(result.containers.find((c) => c.service === 'ui')?.action).toBe('started');
  });

  it('removes a container the model no longer has (UI turned off)', async () => {
    await up(options());
    await fx.writeConfig('ui: { enabled: false }\n');
    const result = await up(options());
    expect(engine.containers.has('fx-ui')).toBe(false);
    expect(result.containers.find((c) => c.container === 'fx-ui')?.action).toBe('removed');
  });

  it('on an unhealthy container: names the step, shows its last log lines, removes everything it created', async () => {
    engine.healthOnStart.set('fx-ui', 'unhealthy');
    engine.logText.set('fx-ui', Array.from({ length: 30 }, (_, i) => `ui line ${i}`).join('\n'));
    const err = await rejection(up(options()));
    expect(err.message).toBe('wait for health checks failed: fx-ui is unhealthy');
    expect(err.details[0]).toBe('last log lines of fx-ui:');
    expect(err.details.slice(1)).toEqual(Array.from({ length: 20 }, (_, i) => `  ui line ${i + 10}`));
    expect(err.hint).toContain('regctl logs ui');
    expect(engine.containers.size).toBe(0);
    expect(engine.networks.size).toBe(0);
    expect(engine.volumes.size).toBe(0);
  });

  it('keeps what it created with keepOnFailure', async () => {
    engine.healthOnStart.set('fx-registry', 'unhealthy');
    await rejection(up(options({ keepOnFailure: true })));
    expect([...engine.containers.keys()].sort()).toEqual(['fx-registry', 'fx-traefik', 'fx-ui']);
  });

  it('does not remove a network or volume that existed before the failed run', async () => {
    engine.networks.set('fx_proxy', {});
    engine.volumes.set('fx_registry-data', { labels: {}, size: 42 });
    engine.failOn.set('start:fx-registry', new EngineError('start fx-registry: OCI runtime create failed', 500));
    const err = await rejection(up(options()));
    expect(err.message).toBe('start fx-registry failed: start fx-registry: OCI runtime create failed');
    expect(engine.containers.size).toBe(0);
    expect(engine.networks.has('fx_proxy')).toBe(true);
    expect(engine.volumes.get('fx_registry-data')?.size).toBe(42);
  });

  it('fails with DOCKER_UNREACHABLE when no engine answers, creating nothing', async () => {
    engine.reachable = false;
    const err = await rejection(up(options()));
    expect(err.code).toBe('DOCKER_UNREACHABLE');
    expect(err.hint).toContain('Docker daemon');
  });

  it('refuses a taken port before creating any container, naming the port', async () => {
    const holder: Server = createServer();
    await new Promise<void>((r) => holder.listen(fx.ports.http, '0.0.0.0', r));
    try {
      const err = await rejection(up(options()));
      expect(err.code).toBe('PORT_IN_USE');
      expect(err.message).toMatch(new RegExp(`^check ports: port ${fx.ports.http} is already in use`));
      expect(err.message).toContain(`pid ${process.pid}`);
      expect(engine.calls.filter((c) => c.startsWith('create:'))).toEqual([]);
      expect(engine.networks.size).toBe(0);
    } finally {
      await new Promise((r) => holder.close(r));
    }
  });

  it('maps a port conflict reported at container start to PORT_IN_USE and cleans up', async () => {
    engine.failOn.set(
      'start:fx-traefik',
      new EngineError(
        `start fx-traefik: driver failed programming external connectivity: Bind for 0.0.0.0:${fx.ports.http} failed: port is already allocated`,
        500,
      ),
    );
    const err = await rejection(up(options()));
    expect(err.code).toBe('PORT_IN_USE');
    expect(err.message).toContain(`port ${fx.ports.http} is already in use`);
    expect(engine.containers.size).toBe(0);
  });

  it('pulls a missing Traefik image, and says what to do when it cannot', async () => {
    engine.images.delete(TRAEFIK);
    const err = await rejection(up(options()));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toContain(`image ${TRAEFIK} is not present and could not be pulled`);
    expect(err.hint).toContain('images.traefik');
    expect(engine.networks.size).toBe(0);
    expect(engine.volumes.size).toBe(0);

    engine.pullable.add(TRAEFIK);
    const result = await up(options());
    expect(result.imagesPulled).toEqual([TRAEFIK]);
  });

  it('reports a build failure with the builder output', async () => {
    engine.failOn.set('build:regctl:test', new EngineError('build regctl:test: COPY failed: no source files', 500));
    const err = await rejection(up(options()));
    expect(err.code).toBe('BUILD_FAILED');
    expect(err.message).toContain('COPY failed');
  });

  it('refuses a broken regctl.yaml with CONFIG_INVALID and touches nothing', async () => {
    await writeFile(join(fx.dir, 'regctl.yaml'), 'version: 1\nports: { http: eighty }\n');
    const err = await rejection(up(options()));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain('ports.http');
    expect(engine.calls).toEqual([]);
  });

  it('names a missing rendered file (Traefik config) instead of creating a container without it', async () => {
    await writeFile(
      join(fx.dir, 'regctl.yaml'),
      `version: 1\nname: fx\nhost: example.test\nports: { http: ${fx.ports.http}, https: ${fx.ports.https}, registry: ${fx.ports.registry} }\nimages: { registry: "regctl:test", traefik: "${TRAEFIK}", base: "${BASE}" }\n`,
    );
    const { rm } = await import('node:fs/promises');
    await rm(join(fx.dir, 'traefik/traefik.yml'));
    const err = await rejection(up(options()));
    expect(err.code).toBe('CONFIG_MISSING');
    expect(err.message).toContain('traefik/traefik.yml is missing');
    expect(engine.calls).toEqual([]);
  });

  it('uses the prod model with --prod: HTTPS port, ACME volume, prod Traefik config', async () => {
    const result = await up(options({ prod: true }));
    expect(result.mode).toBe('prod');
    expect(engine.volumes.has('fx_letsencrypt')).toBe(true);
    const traefik = engine.specOf('fx-traefik');
    expect(traefik.ports.map((p) => p.containerPort).sort()).toEqual([443, 80]);
    expect(traefik.mounts.some((m) => m.source === join(fx.dir, 'traefik/traefik.prod.yml'))).toBe(true);
    expect(engine.specOf('fx-registry').ports).toEqual([]);
  });
});
