/**
 * A swarm stack on a single-node swarm of this machine's engine: `regctl up` to healthy with three registry
 * replicas on S3 storage and PostgreSQL metadata, a `docker push` through Traefik while one registry task is killed, a rolling
 * update under a pull loop, logs/scale/gc/rotation, and `docker stack deploy -c compose.swarm.yaml` bringing up the
 * same services as `regctl up`. PostgreSQL is the machine's own (a throwaway cluster on 127.0.0.1) and S3 is
 * versitygw on 127.0.0.1; the tasks reach both through small TCP relays on docker's bridge address, so the
 * database sees a loopback client as its default rules want. Traefik publishes a free high port in host mode (no IPVS here: no routing mesh).
 * The swarm is initialised here if the engine is in none, and left again afterwards; an engine that already was
 * a manager stays one. Every service, network, secret, config and volume of the stack is removed at the end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { dockerBridgeGateway, freePort } from '../helpers/peers.js';
import { postgresAvailable, startPostgres, type PostgresCluster } from '../helpers/postgres.js';
import { startVersitygw, versitygwAvailable, type S3Server } from '../helpers/versitygw.js';
import { probe } from '../../src/ops/http-probe.js';
import {
  E2E_BASE_IMAGE,
  E2E_TRAEFIK_IMAGE,
  REGISTRY_HOST,
  UI_HOST,
  HOST,
  addHostsLine,
  buildMultiLayerImage,
  dockerCli,
  regctl,
  removePackageSnapshot,
  stackTestsReady,
} from './helpers.js';

import {
  deployedSpecs,
  ensureSwarm,
  FILTER,
  IMAGE,
  PROJECT,
  relay,
  removeEverything,
  sh,
  waitFor,
} from './swarm-helpers.js';

const ready = stackTestsReady() && postgresAvailable() && versitygwAvailable();
const swarm = ready ? ensureSwarm() : { ok: false, initialised: false, gwbridgeExisted: true };

describe.skipIf(!ready || !swarm.ok)('swarm stack on a single-node swarm', () => {
  let pg: PostgresCluster | undefined;
  let pgRelay: Server | undefined;
  let s3: S3Server | undefined;
  let s3Relay: Server | undefined;
  let bucket: string;
  let root: string;
  let dir: string;
  let password: string;
  let httpPort: number;
  let removeHosts: () => Promise<void> = async () => undefined;
  let dockerConfig: string;
  let docker: ReturnType<typeof dockerCli>;
  let registry: string;

  const get = (path: string, method = 'GET') =>
    probe({
      port: httpPort,
      host: REGISTRY_HOST,
      path,
      method,
      auth: { username: 'admin', password },
      timeoutMs: 15_000,
    });

  beforeAll(async () => {
    await removeEverything();
    pg = await startPostgres();
    const db = await pg.createDatabase();
    const gateway = dockerBridgeGateway();
    const r = await relay(gateway, pg.port);
    pgRelay = r.server;
    root = await mkdtemp(join(tmpdir(), 'regctl-e2e-swarm-'));
    dir = join(root, 'stack');
    httpPort = await freePort('0.0.0.0');
    const metadata = `postgres://${db.user}@${gateway}:${r.port}/${db.database}`;
    s3 = await startVersitygw();
    bucket = await s3.createBucket();
    const s3r = await relay(gateway, Number(new URL(s3.endpoint).port));
    s3Relay = s3r.server;
    const init = await regctl(
      [
        'init',
        '--yes',
        '--dir',
        dir,
        '--name',
        PROJECT,
        '--host',
        HOST,
        '--mode',
        'swarm',
        '--replicas',
        '3',
        '--metadata',
        metadata,
        '--storage',
        `s3://${bucket}/registry`,
        '--s3-endpoint',
        `http://${gateway}:${s3r.port}`,
        '--s3-region',
        s3.region,
        '--s3-path-style',
        '--http-port',
        String(httpPort),
        '--registry-port',
        '0',
        '--traefik-image',
        E2E_TRAEFIK_IMAGE,
        '--base-image',
        E2E_BASE_IMAGE,
      ],
      { env: { REGCTL_METADATA_PASSWORD: db.password, ...s3.env() } },
    );
    if (init.exitCode !== 0) throw new Error(`regctl init failed:\n${init.all}`);
    const file = join(dir, 'regctl.yaml');
    const doc = parseDocument(await readFile(file, 'utf8'));
    doc.setIn(['images', 'registry'], IMAGE);
    await writeFile(file, doc.toString());
    const again = await regctl(['init', '--yes', '--force', '--dir', dir]);
    if (again.exitCode !== 0) throw new Error(`regctl init --force failed:\n${again.all}`);
    password = /^REGISTRY_PASSWORD=(.*)$/m.exec(await readFile(join(dir, '.env'), 'utf8'))![1]!;
    registry = `${REGISTRY_HOST}:${httpPort}`;
    removeHosts = await addHostsLine([REGISTRY_HOST, UI_HOST], 'regctl e2e swarm');
    dockerConfig = await mkdtemp(join(tmpdir(), 'regctl-e2e-docker-'));
    docker = dockerCli(dockerConfig);
  }, 300_000);

  afterAll(async () => {
    if (dir) await regctl(['down', '--dir', dir, '--volumes', '--yes']);
    await sh(['stack', 'rm', PROJECT]);
    await removeEverything();
    await sh(['rmi', '-f', IMAGE, `${registry}/e2e/swarm:1`, `${registry}/e2e/after:1`, 'regctl-e2e/swarm:1']);
    await removeHosts();
    pgRelay?.close();
    s3Relay?.close();
    await s3?.stop();
    await pg?.stop();
    if (dockerConfig) await rm(dockerConfig, { recursive: true, force: true });
    if (root) await rm(root, { recursive: true, force: true });
    await removePackageSnapshot();
    if (swarm.initialised) {
      await sh(['swarm', 'leave', '--force']);
      if (!swarm.gwbridgeExisted) await sh(['network', 'rm', 'docker_gwbridge']);
    }
  }, 300_000);

  it('regctl up reaches healthy with 3 registry replicas; a second up changes nothing', async () => {
    const res = await regctl(['up', '--dir', dir], { timeoutMs: 600_000 });
    expect(res.exitCode, res.all).toBe(0);
    expect(res.stdout).toContain(`${PROJECT}_registry 3/3 running and healthy`);
    expect(res.stdout).toContain('/v2/ answers 200');
    const ls = await sh(['service', 'ls', '--filter', FILTER, '--format', '{{.Name}} {{.Replicas}}']);
    expect(ls.out.split('\n').sort()).toEqual([
      `${PROJECT}_registry 3/3`,
      `${PROJECT}_traefik 1/1`,
      `${PROJECT}_ui 1/1`,
    ]);
    const st = JSON.parse((await regctl(['status', '--dir', dir, '--json'])).stdout) as {
      healthy: boolean;
      services: { service: string; replicas: { running: number; desired: number } }[];
    };
    expect(st.healthy).toBe(true);
    expect(st.services.find((s) => s.service === 'registry')?.replicas).toEqual({ running: 3, desired: 3 });
    // No secret value in any service's environment.
    const env = (
      await sh([
        'service',
        'inspect',
        `${PROJECT}_registry`,
        '--format',
        '{{json .Spec.TaskTemplate.ContainerSpec.Env}}',
      ])
    ).out;
    expect(env).not.toContain(password);
    expect(env).not.toContain(s3!.secretAccessKey);
    expect(env).toContain('AWS_SHARED_CREDENTIALS_FILE=/auth/s3-credentials');
    // On S3 with PostgreSQL nothing ties a registry task to one node.
    const placement = await sh([
      'service',
      'inspect',
      `${PROJECT}_registry`,
      '--format',
      '{{json .Spec.TaskTemplate.Placement}}',
    ]);
    expect(placement.out).not.toContain('node.role');
    const second = await regctl(['up', '--dir', dir], { timeoutMs: 300_000 });
    expect(second.exitCode, second.all).toBe(0);
    expect(second.stdout).toContain('nothing changed');
  }, 900_000);

  it('docker push through Traefik completes while one registry task is killed', async () => {
    const login = await docker(['login', registry, '-u', 'admin', '--password-stdin'], { input: password });
    expect(login.exitCode, login.all).toBe(0);
    // 24 layers, 75 MiB: long enough that a task dies in the middle of the upload.
    await buildMultiLayerImage('regctl-e2e/swarm:1', 24, docker);
    expect((await docker(['tag', 'regctl-e2e/swarm:1', `${registry}/e2e/swarm:1`])).exitCode).toBe(0);
    const push = execa('docker', ['push', `${registry}/e2e/swarm:1`], {
      reject: false,
      all: true,
      env: { DOCKER_CONFIG: dockerConfig },
    });
    let finished = false;
    void push.then(() => (finished = true));
    // Kill a task once the first layer is through: the other layers are on their way.
    await new Promise<void>((resolve) => {
      push.all?.on('data', (chunk: Buffer) => {
        if (/: Pushed/.test(chunk.toString())) resolve();
      });
      void push.then(() => resolve());
    });
    const victim = (await sh(['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${PROJECT}_registry`])).out
      .split('\n')
      .filter(Boolean)[0];
    expect(victim).toBeDefined();
    expect(finished, 'the push ended before a task was killed: the test proved nothing').toBe(false);
    expect((await sh(['kill', victim!])).code).toBe(0);
    const pushed = await push;
    expect(pushed.exitCode, String(pushed.all)).toBe(0);
    // Whether the client had to retry depends on which requests the killed task held; print what happened.
    console.log(`push after killing ${victim!.slice(0, 12)}:\n${String(pushed.all).split('\n').slice(-6).join('\n')}`);
    const manifest = await get('/v2/e2e/swarm/manifests/1', 'HEAD');
    expect(manifest.status).toBe(200);
    // Stored in the bucket, in distribution's layout under the prefix (versitygw's posix backend: one file a key).
    const link = join(s3!.rootDir, bucket, 'registry/docker/registry/v2/repositories/e2e/swarm/_manifests/tags/1');
    expect((await readFile(join(link, 'current/link'), 'utf8')).trim()).toBe(manifest.headers['docker-content-digest']);
    // The swarm replaces the killed task.
    await waitFor(
      '3 running registry tasks',
      async () =>
        (
          await sh(['service', 'ls', '--filter', `name=${PROJECT}_registry`, '--format', '{{.Replicas}}'])
        ).out.trim() === '3/3',
    );
  }, 600_000);

  it('a rolling update (start-first) under a pull loop loses no request', async () => {
    const before = (await sh(['service', 'ps', '-q', '--filter', 'desired-state=running', `${PROJECT}_registry`])).out;
    const manifest = await get('/v2/e2e/swarm/manifests/1');
    expect(manifest.status).toBe(200);
    const layer = (JSON.parse(manifest.body) as { layers: { digest: string }[] }).layers[0]!.digest;
    let stop = false;
    const failures: string[] = [];
    let done = 0;
    const loop = (async () => {
      while (!stop) {
        const answers = await Promise.allSettled([
          get('/v2/e2e/swarm/manifests/1'),
          get(`/v2/e2e/swarm/blobs/${layer}`),
        ]);
        for (const a of answers) {
          if (a.status === 'rejected') failures.push(String(a.reason));
          else if (a.value.status !== 200) failures.push(`${a.value.status} ${a.value.body.slice(0, 120)}`);
        }
        done += 2;
      }
    })();
    // A change of the registry's definition: its log level.
    const file = join(dir, 'regctl.yaml');
    const doc = parseDocument(await readFile(file, 'utf8'));
    doc.setIn(['registry', 'logLevel'], 'warn');
    await writeFile(file, doc.toString());
    expect((await regctl(['init', '--yes', '--force', '--dir', dir])).exitCode).toBe(0);
    const res = await regctl(['up', '--dir', dir], { timeoutMs: 600_000 });
    stop = true;
    await loop;
    expect(failures, `${done} requests`).toEqual([]);
    expect(res.exitCode, res.all).toBe(0);
    expect(res.stdout).toContain(`${PROJECT}_registry updated (rolling, start-first)`);
    const after = (await sh(['service', 'ps', '-q', '--filter', 'desired-state=running', `${PROJECT}_registry`])).out;
    const replaced = before.split('\n').filter((id) => id && !after.includes(id));
    expect(replaced.length, 'every task was replaced').toBe(3);
    expect(done).toBeGreaterThan(50);
  }, 900_000);

  it('logs prefix every task; scale changes the count online; gc runs with 3 replicas', async () => {
    const logs = await regctl(['logs', 'registry', '--dir', dir, '--tail', '5']);
    expect(logs.exitCode, logs.all).toBe(0);
    const prefixes = new Set(
      logs.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(' | ')[0]),
    );
    expect([...prefixes].sort()).toEqual(['registry.1', 'registry.2', 'registry.3']);
    const scaled = await regctl(['scale', '--replicas', '2', '--dir', dir, '--json'], { timeoutMs: 300_000 });
    expect(scaled.exitCode, scaled.all).toBe(0);
    expect(JSON.parse(scaled.stdout)).toEqual({ service: 'registry', from: 3, to: 2 });
    expect((await get('/v2/e2e/swarm/manifests/1', 'HEAD')).status).toBe(200);
    const back = await regctl(['scale', '--replicas', '3', '--dir', dir], { timeoutMs: 300_000 });
    expect(back.exitCode, back.all).toBe(0);
    const swept = await regctl(['gc', '--dir', dir, '--dry-run', '--json']);
    expect(swept.exitCode, swept.all).toBe(0);
    const report = JSON.parse(swept.stdout) as { dryRun: boolean; kept: { count: number } };
    expect(report.dryRun && report.kept.count >= 25, swept.stdout.slice(0, 300)).toBe(true); // 24 layers, a config
  }, 600_000);

  it('backup with 3 replicas; restore refused while running, then into the stopped stack, served as backed up', async () => {
    const archive = join(root, 'swarm-backup.tar');
    const before = await get('/v2/e2e/swarm/manifests/1', 'HEAD');
    expect(before.status).toBe(200);
    const b = await regctl(['backup', '--dir', dir, '--out', archive, '--verify', '--json'], { timeoutMs: 600_000 });
    expect(b.exitCode, b.all).toBe(0);
    // Pushed after the backup: the restore must take the stack back to before it.
    expect((await docker(['tag', 'regctl-e2e/swarm:1', `${registry}/e2e/after:1`])).exitCode).toBe(0);
    const late = await docker(['push', `${registry}/e2e/after:1`]);
    expect(late.exitCode, late.all).toBe(0);
    expect((await get('/v2/e2e/after/manifests/1', 'HEAD')).status).toBe(200);

    const running = await regctl(['restore', archive, '--dir', dir]);
    expect(running.exitCode).not.toBe(0);
    expect(running.stderr.split('\n')[0]).toContain(`the stack is running (service ${PROJECT}_registry)`);
    expect((await regctl(['down', '--dir', dir])).exitCode).toBe(0);
    const refused = await regctl(['restore', archive, '--dir', dir]);
    expect(refused.exitCode, refused.all).not.toBe(0);
    expect(refused.stderr).toContain('already holds registry data; nothing was restored');
    const restored = await regctl(['restore', archive, '--dir', dir, '--force', '--json'], { timeoutMs: 600_000 });
    expect(restored.exitCode, restored.all).toBe(0);
    expect(JSON.parse(restored.stdout)).toMatchObject({ replaced: true, target: `s3://${bucket}/registry` });
    // No network or container of the restore is left behind.
    expect((await sh(['ps', '-aq', '--filter', `name=${PROJECT}-restore`])).out.trim()).toBe('');

    const up = await regctl(['up', '--dir', dir], { timeoutMs: 600_000 });
    expect(up.exitCode, up.all).toBe(0);
    const after = await get('/v2/e2e/swarm/manifests/1', 'HEAD');
    expect(after.status).toBe(200);
    expect(after.headers['docker-content-digest']).toBe(before.headers['docker-content-digest']);
    // The shared metadata store imported the restored bucket instead of keeping what it knew.
    expect((await get('/v2/e2e/after/manifests/1', 'HEAD')).status).toBe(404);
    const catalog = JSON.parse((await get('/v2/_catalog')).body) as { repositories: string[] };
    expect(catalog.repositories).not.toContain('e2e/after');
  }, 1_200_000);

  it('rotate-credentials rolls a new secret version out; the old password works during the grace', async () => {
    const oldPassword = password;
    const res = await regctl(['rotate-credentials', '--dir', dir, '--grace', '10m', '--json'], { timeoutMs: 600_000 });
    expect(res.exitCode, res.all).toBe(0);
    const r = JSON.parse(res.stdout) as { password: string; verified: boolean };
    expect(r.verified).toBe(true);
    password = r.password;
    expect((await get('/v2/')).status).toBe(200);
    const old = await probe({
      port: httpPort,
      host: REGISTRY_HOST,
      path: '/v2/',
      auth: { username: 'admin', password: oldPassword },
    });
    expect(old.status).toBe(200);
    const secrets = (await sh(['secret', 'ls', '--filter', FILTER, '--format', '{{.Name}}'])).out.split('\n');
    expect(secrets.map((n) => n.replace(/_v[0-9a-f]{12}$/, '')).sort()).toEqual([
      `${PROJECT}_htpasswd`,
      `${PROJECT}_htpasswd-grace`,
      `${PROJECT}_metadata-password`,
      `${PROJECT}_s3-credentials`,
    ]);
  }, 900_000);

  it('docker stack deploy -c compose.swarm.yaml brings up the same services as regctl up', async () => {
    // The files as they are now, rendered again; regctl up applies them (the log level back to info).
    const file = join(dir, 'regctl.yaml');
    const doc = parseDocument(await readFile(file, 'utf8'));
    doc.setIn(['registry', 'logLevel'], 'info');
    await writeFile(file, doc.toString());
    expect((await regctl(['init', '--yes', '--force', '--dir', dir])).exitCode).toBe(0);
    const upped = await regctl(['up', '--dir', dir], { timeoutMs: 600_000 });
    expect(upped.exitCode, upped.all).toBe(0);
    expect(upped.all).not.toContain('compose.swarm.yaml differs');
    const regctlSpecs = await deployedSpecs();
    expect(Object.keys(regctlSpecs).sort()).toEqual([`${PROJECT}_registry`, `${PROJECT}_traefik`, `${PROJECT}_ui`]);
    const down = await regctl(['down', '--dir', dir]);
    expect(down.exitCode, down.all).toBe(0);
    expect((await sh(['service', 'ls', '-q', '--filter', FILTER])).out.trim()).toBe('');
    expect((await sh(['secret', 'ls', '-q', '--filter', FILTER])).out.trim()).toBe('');
    const deploy = await sh(['stack', 'deploy', '-c', 'compose.swarm.yaml', PROJECT], { cwd: dir });
    expect(deploy.code, deploy.all).toBe(0);
    await waitFor('the stack to converge', async () => {
      const ls = (await sh(['service', 'ls', '--filter', FILTER, '--format', '{{.Replicas}}'])).out.split('\n');
      return ls.length === 3 && ls.every((r) => /^(\d+)\/\1$/.test(r.trim()));
    });
    const stackSpecs = await deployedSpecs();
    for (const name of Object.keys(regctlSpecs)) expect(stackSpecs[name], name).toEqual(regctlSpecs[name]);
    // And it serves: through Traefik, authenticated, the image pushed earlier.
    await waitFor(
      'Traefik to route',
      async () => (await get('/v2/e2e/swarm/manifests/1', 'HEAD')).status === 200,
      120_000,
    );
    const status = await regctl(['status', '--dir', dir, '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ healthy: true });
  }, 600_000);
});
