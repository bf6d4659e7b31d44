/**
 * `up` and `scale` on a swarm stack with trial services (`trial:`), against the in-memory engine (FakeEngine's
 * FakeSwarm). The real swarm runs them in test/e2e/swarm-trial.test.ts; the images themselves are checked in
 * test/integration/trial-services.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FakeEngine } from '../../../src/docker/fake-engine.js';
import { scriptedPrompts } from '../../../src/cli/prompts.js';
import { down } from '../../../src/ops/down.js';
import { scale } from '../../../src/ops/swarm-ops.js';
import { loadStack } from '../../../src/ops/stack.js';
import { up, type UpOptions } from '../../../src/ops/up.js';
import { capturedOutput, rejection, stackFixture, type StackFixture } from './fixture.js';

const TRIAL =
  'deploy: { mode: swarm, replicas: 2 }\ntrial: { postgres: true, s3: true }\n' +
  'metadata: postgres://regctl@postgres:5432/regctl\n' +
  'storage: { url: s3://registry, endpoint: "http://s3:7070", pathStyle: true }\n';
const KEYS = '[default]\naws_access_key_id = AKIATRIAL\naws_secret_access_key = trial-s3-secret\n';

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

const swarm = () => engine.fakeSwarm;
function spec(name: string) {
  const s = swarm().services.get(name);
  if (!s) throw new Error(`no service ${name}`);
  return s.spec;
}

beforeEach(async () => {
  fx = await stackFixture();
  await fx.writeConfig(TRIAL);
  await writeFile(join(fx.dir, 'traefik/traefik.swarm.yml'), 'providers: { swarm: {} }\n');
  await writeFile(join(fx.dir, 'auth/access.yaml'), 'users: { admin: { admin: true } }\n');
  await writeFile(join(fx.dir, 'auth/metadata-password'), 'trial-pg-secret\n', { mode: 0o600 });
  await writeFile(join(fx.dir, 'auth/s3-credentials'), KEYS, { mode: 0o600 });
  engine = new FakeEngine();
  engine.images.set('regctl-test/traefik:v3.6', { id: 'sha256:traefik', labels: {} });
  engine.images.set('regctl-test/node:20', { id: 'sha256:base', labels: {} });
  engine.pullable.add('postgres:16-alpine');
  engine.pullable.add('versity/versitygw:v1.8.0');
});

afterEach(async () => {
  await fx.cleanup();
});

describe('up on a swarm stack with trial services', () => {
  it('pulls their images, creates PostgreSQL and S3 first and the registry only once they are healthy', async () => {
    await up(options());
    const calls = engine.calls.filter((c) => !c.startsWith('build:'));
    expect(calls.filter((c) => c.startsWith('pull:'))).toEqual([
      'pull:postgres:16-alpine',
      'pull:versity/versitygw:v1.8.0',
    ]);
    expect(calls.filter((c) => c.startsWith('volume:'))).toEqual([
      'volume:fx_registry-data',
      'volume:fx_postgres-data',
      'volume:fx_s3-data',
    ]);
    expect(calls.filter((c) => c.startsWith('service-'))).toEqual([
      'service-create:fx_postgres',
      'service-create:fx_s3',
      'service-create:fx_traefik',
      'service-create:fx_registry',
      'service-create:fx_ui',
    ]);
    const pg = spec('fx_postgres');
    expect(pg.constraints).toEqual(['node.role == manager']);
    expect(pg.ports).toEqual([]);
    expect(pg.update.order).toBe('stop-first');
    expect(pg.aliases).toEqual(['postgres']);
    expect(pg.secrets.map((s) => s.target)).toEqual(['/run/secrets/metadata-password']);
    expect(pg.mounts).toEqual([
      { type: 'volume', source: 'fx_postgres-data', target: '/var/lib/postgresql/data', readOnly: false },
    ]);
    const s3 = spec('fx_s3');
    expect(s3.entrypoint?.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    expect(s3.entrypoint?.at(-1)).toBe('registry');
    expect(s3.secrets.map((s) => s.target)).toEqual(['/run/secrets/s3-credentials']);
    // The engine receives the secrets' bytes as secrets; no service's environment or command holds them.
    for (const name of ['fx_postgres', 'fx_s3', 'fx_registry', 'fx_ui', 'fx_traefik']) {
      const text = JSON.stringify({ ...spec(name), secrets: [] });
      expect(text).not.toContain('trial-pg-secret');
      expect(text).not.toContain('trial-s3-secret');
    }
  });

  it('a trial service that never gets healthy times out naming it, before the registry is created; all undone', async () => {
    swarm().taskState.set('fx_postgres', 'starting');
    const err = await rejection(up(options()));
    expect(err.code).toBe('HEALTH_TIMEOUT');
    expect(err.message).toMatch(/fx_postgres: 0\/1 tasks running/);
    expect(engine.calls).not.toContain('service-create:fx_registry');
    expect(swarm().services.size).toBe(0);
    expect(swarm().secrets.size).toBe(0);
  });

  it('a trial image that is neither present nor pullable fails in one line naming its setting', async () => {
    engine.pullable.delete('postgres:16-alpine');
    const err = await rejection(up(options()));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toMatch(/^image postgres:16-alpine is not present and could not be pulled/);
    expect(err.hint).toMatch(/images\.postgres in regctl\.yaml/);
    expect(engine.calls.filter((c) => c.startsWith('service-create'))).toEqual([]);
  });

  it('scale refuses a second PostgreSQL or S3 task in one line', async () => {
    await up(options());
    const stack = await loadStack(fx.dir);
    for (const service of ['postgres', 's3']) {
      const err = await rejection(scale(stack, engine, capturedOutput().out, 2, { service }));
      expect(err.message).toBe(`${service} is a trial service: one task, its data on one volume`);
    }
    expect(swarm().services.get('fx_postgres')!.spec.replicas).toBe(1);
  });

  it('down removes the trial services and keeps their data; down --volumes deletes it too', async () => {
    await up(options());
    const kept = await down({ dir: fx.dir, out: capturedOutput().out, engine, prompts: scriptedPrompts([]) });
    expect(swarm().services.size).toBe(0);
    expect(kept.volumesKept).toEqual(expect.arrayContaining(['fx_postgres-data', 'fx_s3-data']));
    const removed = await down({
      dir: fx.dir,
      out: capturedOutput().out,
      engine,
      prompts: scriptedPrompts([]),
      volumes: true,
      yes: true,
    });
    expect(removed.volumesRemoved).toEqual(expect.arrayContaining(['fx_postgres-data', 'fx_s3-data']));
  });
});
