/**
 * `up`, `status`, `down` and `scale` on a swarm stack, against the in-memory engine (FakeEngine's FakeSwarm):
 * no swarm can be assumed where unit tests run. The real swarm is exercised by test/e2e/swarm.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FakeEngine } from '../../../src/docker/fake-engine.js';
import { down } from '../../../src/ops/down.js';
import { APPLIED_HASH_LABEL, loadStack } from '../../../src/ops/stack.js';
import { status } from '../../../src/ops/status.js';
import { scale } from '../../../src/ops/swarm-ops.js';
import { up, type UpOptions } from '../../../src/ops/up.js';
import { rotateCredentials } from '../../../src/ops/rotate.js';
import { addUser, permissionsFromFlags, removeUser, setUser } from '../../../src/ops/users.js';
import { rotateTokenKey } from '../../../src/ops/rotate-token-key.js';
import { newTokenKeyPem } from '../../../src/registry/auth/token-keys.js';
import { setHtpasswdUser } from '../../../src/stack/htpasswd.js';
import { scriptedPrompts } from '../../../src/cli/prompts.js';
import { capturedOutput, rejection, stackFixture, type StackFixture } from './fixture.js';

const PG = 'postgres://regctl@db.internal:5432/regctl';
let fx: StackFixture;
let engine: FakeEngine;

function options(extra: Partial<UpOptions> = {}): UpOptions {
  return {
    dir: fx.dir,
    out: capturedOutput().out,
    engine,
    skipProbes: true,
    packageDir: fx.pkg,
    healthTimeoutMs: 3000,
    ...extra,
  };
}

beforeEach(async () => {
  fx = await stackFixture();
  await fx.writeConfig(`deploy: { mode: swarm, replicas: 3 }\nmetadata: ${PG}\n`);
  await writeFile(join(fx.dir, 'traefik/traefik.swarm.yml'), 'providers: { swarm: {} }\n');
  await writeFile(join(fx.dir, 'auth/access.yaml'), 'users: { admin: { admin: true } }\n');
  await writeFile(join(fx.dir, 'auth/metadata-password'), 'pg-secret\n', { mode: 0o600 });
  engine = new FakeEngine();
  engine.images.set('regctl-test/traefik:v3.6', { id: 'sha256:traefik', labels: {} });
  engine.images.set('regctl-test/node:20', { id: 'sha256:base', labels: {} });
});

afterEach(async () => {
  await fx.cleanup();
});

const swarm = () => engine.fakeSwarm;

describe('up on a swarm stack', () => {
  it('creates the overlay network, versioned secrets and configs, then the services; no containers', async () => {
    const result = await up(options());
    const calls = engine.calls.filter((c) => !c.startsWith('build:'));
    expect(calls.slice(0, 2)).toEqual(['network:fx_proxy', 'volume:fx_registry-data']);
    expect(calls.filter((c) => c.startsWith('secret-create:')).map((c) => c.replace(/_v[0-9a-f]{12}$/, ''))).toEqual([
      'secret-create:fx_htpasswd',
      'secret-create:fx_metadata-password',
    ]);
    expect(calls.filter((c) => c.startsWith('service-'))).toEqual([
      'service-create:fx_traefik',
      'service-create:fx_registry',
      'service-create:fx_ui',
    ]);
    expect(engine.containers.size).toBe(0);
    const registry = swarp('fx_registry');
    expect(registry.replicas).toBe(3);
    expect(registry.endpointMode).toBe('dnsrr');
    expect(registry.update).toMatchObject({ order: 'start-first', failureAction: 'rollback' });
    expect(registry.aliases).toEqual(['registry']);
    expect(registry.secrets.map((s) => s.target)).toEqual(['/auth/htpasswd', '/auth/metadata-password']);
    expect(registry.labels['com.docker.stack.namespace']).toBe('fx');
    expect(registry.labels['traefik.swarm.network']).toBe('fx_proxy');
    expect(swarp('fx_traefik').ports).toEqual([{ published: fx.ports.http, target: 80 }]);
    expect(swarp('fx_traefik').constraints).toEqual(['node.role == manager']);
    // The secret holds the file's bytes; the environment never holds a secret.
    const pg = [...swarm().secrets.entries()].find(([n]) => n.startsWith('fx_metadata-password_v'))!;
    expect(pg[1].data.toString()).toBe('pg-secret\n');
    expect(JSON.stringify(registry.env)).not.toContain('pg-secret');
    expect(result.unchanged).toBe(false);
  });

  it('a second up with nothing changed changes nothing; a new htpasswd is a new secret and a rolling update', async () => {
    await up(options());
    const before = engine.calls.length;
    const again = await up(options());
    expect(again.unchanged).toBe(true);
    expect(engine.calls.slice(before)).toEqual([]);

    const oldSecret = swarp('fx_registry').secrets[0]!.name;
    await writeFile(join(fx.dir, 'auth/htpasswd'), 'admin:$2y$05$another-hash-for-a-rotated-password\n');
    const rotated = await up(options());
    const newSecret = swarp('fx_registry').secrets[0]!.name;
    expect(newSecret).not.toBe(oldSecret);
    expect(rotated.containers.find((c) => c.service === 'registry')?.action).toBe('recreated');
    expect(rotated.containers.find((c) => c.service === 'traefik')?.action).toBe('unchanged');
    // The old version is removed once no service names it.
    expect(swarm().secrets.has(oldSecret)).toBe(false);
    expect(swarm().secrets.has(newSecret)).toBe(true);
  });

  it('after an update, waits for tasks of the new spec even while the engine still shows the old ones', async () => {
    await up(options());
    await fx.writeConfig(`deploy: { mode: swarm, replicas: 3 }\nmetadata: ${PG}\nregistry: { logLevel: warn }\n`);
    swarm().taskLag.set('fx_registry', 2);
    const result = await up(options());
    expect(result.containers.find((c) => c.service === 'registry')?.action).toBe('recreated');
    expect(swarm().taskLag.get('fx_registry')).toBe(0);
  });

  it('a rolled-back update fails in one line, naming the state and the reason', async () => {
    await up(options());
    await fx.writeConfig(`deploy: { mode: swarm, replicas: 2 }\nmetadata: ${PG}\n`);
    swarm().updateState.set('fx_registry', 'rollback_completed');
    const err = await rejection(up(options()));
    expect(err.message).toMatch(/the update of fx_registry was rollback completed/);
  });

  it('refuses in one line when the engine is in no swarm, creating nothing', async () => {
    swarm().swarmState = undefined;
    const err = await rejection(up(options()));
    expect(err.message).toBe('this Docker engine is not part of a swarm (regctl.yaml has deploy.mode: swarm)');
    expect(engine.calls).toEqual([]);
  });

  it('refuses several replicas on a local volume across several nodes', async () => {
    swarm().swarmState = { nodeId: 'n1', manager: true, nodes: 3 };
    const err = await rejection(up(options()));
    expect(err.message).toMatch(/3 replicas on a 3-node swarm need S3 storage/);
  });

  it('on S3 with PostgreSQL, spreads replicas over several nodes: no placement, the keys as a secret', async () => {
    await fx.writeConfig(
      `deploy: { mode: swarm, replicas: 3 }\nmetadata: ${PG}\nstorage: { url: s3://bucket/reg, pathStyle: true }\n`,
    );
    const keys = '[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s3-secret-value\n';
    await writeFile(join(fx.dir, 'auth/s3-credentials'), keys, { mode: 0o600 });
    swarm().swarmState = { nodeId: 'n1', manager: true, nodes: 3 };
    await up(options());
    const registry = swarp('fx_registry');
    expect(registry.constraints).toEqual([]);
    expect(registry.secrets.map((s) => s.target)).toContain('/auth/s3-credentials');
    const secret = [...swarm().secrets].find(([name]) => name.startsWith('fx_s3-credentials_v'));
    expect(secret?.[1].data.toString()).toBe(keys);
    expect(JSON.stringify(registry.env)).not.toContain('s3-secret-value');
  });

  it('waits for the tasks; a service whose tasks never run times out naming it, and the first deployment is undone', async () => {
    swarm().taskState.set('fx_ui', 'starting');
    const err = await rejection(up(options({ healthTimeoutMs: 1500 })));
    expect(err.code).toBe('HEALTH_TIMEOUT');
    expect(err.message).toMatch(/fx_ui: 0\/1 tasks running/);
    expect(swarm().services.size).toBe(0);
    expect(swarm().secrets.size).toBe(0);
    expect(engine.networks.has('fx_proxy')).toBe(false);
  });
});

describe('rotate-credentials on a swarm stack', () => {
  it('rolls the new htpasswd and the grace file out as new secret versions; the old version goes', async () => {
    const htpasswd = setHtpasswdUser('', 'admin', 'the-old-password', 4);
    await writeFile(join(fx.dir, 'auth/htpasswd'), htpasswd);
    await up(options());
    const old = swarp('fx_registry').secrets.map((x) => x.name);
    const { out } = capturedOutput();
    const r = await rotateCredentials({
      dir: fx.dir,
      graceMs: 600_000,
      out,
      engine,
      canShowSecret: true,
      env: { REGCTL_REGISTRY_URL: `http://127.0.0.1:${fx.ports.registry}` },
    });
    expect(r.user).toBe('admin');
    const now = swarp('fx_registry').secrets;
    expect(now.map((x) => x.target)).toEqual(['/auth/htpasswd', '/auth/htpasswd.grace', '/auth/metadata-password']);
    expect(now[0]!.name).not.toBe(old[0]);
    expect(now[2]!.name).toBe(old[1]);
    expect(swarm().secrets.has(old[0]!)).toBe(false);
    const grace = swarm().secrets.get(now[1]!.name)!.data.toString();
    expect(grace.startsWith(`${htpasswd.trim()}:`)).toBe(true);
    expect(engine.calls).toContain('service-update:fx_registry');
  });

  it('users add, set and remove roll the new htpasswd and access versions out; nothing waits for a manual up', async () => {
    await fx.writeConfig(`deploy: { mode: swarm, replicas: 3 }\nmetadata: ${PG}\nusers: { admin: { admin: true } }\n`);
    await writeFile(join(fx.dir, 'auth/htpasswd'), setHtpasswdUser('', 'admin', 'the-admin-password', 4));
    await up(options());
    const names = () => ({
      htpasswd: swarp('fx_registry').secrets.find((x) => x.target === '/auth/htpasswd')!.name,
      access: swarp('fx_registry').configs.find((x) => x.target === '/auth/access.yaml')!.name,
    });
    const before = names();
    const target = {
      dir: fx.dir,
      out: capturedOutput().out,
      engine,
      env: { REGCTL_REGISTRY_URL: 'http://127.0.0.1:9' },
    };
    const added = await addUser({ ...target, name: 'ci', permissions: permissionsFromFlags({ push: ['apps/**'] }) });
    const afterAdd = names();
    expect(afterAdd.htpasswd).not.toBe(before.htpasswd);
    expect(afterAdd.access).not.toBe(before.access);
    const secret = swarm().secrets.get(afterAdd.htpasswd)!.data.toString();
    expect(secret).toMatch(/^ci:\$2/m);
    expect(swarm().secrets.has(before.htpasswd)).toBe(false);
    expect(added.password).toBeDefined();
    await setUser({ ...target, name: 'ci', permissions: permissionsFromFlags({ pull: ['**'] }) });
    const afterSet = names();
    expect(afterSet.htpasswd).toBe(afterAdd.htpasswd);
    expect(afterSet.access).not.toBe(afterAdd.access);
    expect(swarm().configs.get(afterSet.access)!.data.toString()).toMatch(/repos: "\*\*"/);
    await removeUser({ ...target, name: 'ci' });
    expect(swarm().secrets.get(names().htpasswd)!.data.toString()).not.toMatch(/^ci:/m);
  });
});

describe('token auth on a swarm stack', () => {
  it('deploys the signing key as a registry-only secret; a rotation with a grace rolls out the new and previous keys', async () => {
    await fx.writeConfig(`deploy: { mode: swarm, replicas: 3 }\nmetadata: ${PG}\nregistry: { auth: token }\n`);
    const key = newTokenKeyPem();
    await writeFile(join(fx.dir, 'auth/token-key.pem'), key, { mode: 0o600 });
    await up(options());
    const keySecret = () => swarp('fx_registry').secrets.find((x) => x.target === '/auth/token-key.pem')!.name;
    const before = keySecret();
    expect(swarm().secrets.get(before)!.data.toString()).toBe(key);
    expect(swarp('fx_ui').secrets.map((x) => x.target)).not.toContain('/auth/token-key.pem');
    expect(swarp('fx_registry').command).toEqual(expect.arrayContaining(['--auth', 'token']));
    const r = await rotateTokenKey(fx.dir, 600_000, { out: capturedOutput().out, engine });
    expect(r.previousUntil).not.toBeNull();
    const after = swarp('fx_registry').secrets;
    expect(after.map((x) => x.target)).toContain('/auth/token-key.pem.previous');
    expect(keySecret()).not.toBe(before);
    expect(swarm().secrets.has(before)).toBe(false);
    const previous = after.find((x) => x.target === '/auth/token-key.pem.previous')!.name;
    expect(swarm().secrets.get(previous)!.data.toString()).toContain(key.trim());
  });
});

describe('status, scale and down on a swarm stack', () => {
  it('status counts running tasks per service; scale changes the count online; down removes every object', async () => {
    await up(options());
    let s = await status({ dir: fx.dir, engine });
    expect(s.healthy).toBe(true);
    expect(s.services.map((x) => [x.service, x.replicas])).toEqual([
      ['traefik', { running: 1, desired: 1 }],
      ['registry', { running: 3, desired: 3 }],
      ['ui', { running: 1, desired: 1 }],
    ]);
    const hash = swarp('fx_registry').labels[APPLIED_HASH_LABEL];
    const stack = await loadStack(fx.dir);
    expect(await scale(stack, engine, capturedOutput().out, 5)).toEqual({ service: 'registry', from: 3, to: 5 });
    expect(swarp('fx_registry').replicas).toBe(5);
    expect(swarp('fx_registry').labels[APPLIED_HASH_LABEL]).toBe(hash);
    // The next up with nothing changed keeps the scaled count.
    expect((await up(options())).unchanged).toBe(true);
    expect(swarp('fx_registry').replicas).toBe(5);

    swarm().taskState.set('fx_ui', 'starting');
    s = await status({ dir: fx.dir, engine });
    expect(s.healthy).toBe(false);
    expect(s.services.find((x) => x.service === 'ui')?.state).toBe('0/1 running');

    const { out } = capturedOutput();
    const result = await down({ dir: fx.dir, out, engine, prompts: scriptedPrompts([]) });
    expect(result.containersRemoved).toEqual(['fx_registry', 'fx_ui', 'fx_traefik']);
    expect(result.networkRemoved).toBe(true);
    expect(swarm().services.size + swarm().secrets.size + swarm().configs.size).toBe(0);
    expect(engine.volumes.has('fx_registry-data')).toBe(true);
  });

  it('scale refuses in one line: several registries without PostgreSQL, a second Traefik', async () => {
    await fx.writeConfig('deploy: { mode: swarm, replicas: 1 }\n');
    await up(options());
    const stack = await loadStack(fx.dir);
    const out = capturedOutput().out;
    expect((await rejection(scale(stack, engine, out, 2))).message).toBe(
      '--replicas 2: replicas share one store only with PostgreSQL metadata',
    );
    expect((await rejection(scale(stack, engine, out, 2, { service: 'traefik' }))).message).toMatch(
      /traefik runs as one task/,
    );
  });
});

function swarp(name: string) {
  const s = swarm().services.get(name);
  if (!s) throw new Error(`no service ${name}`);
  return s.spec;
}
