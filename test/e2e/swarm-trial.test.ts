/**
 * A swarm stack with its own PostgreSQL and S3 (`regctl init --with-postgres --with-s3`), on a single-node swarm of
 * this machine's engine: the trial services run from the test images made by provisioning
 * (regctl-test/postgres:15, regctl-test/versitygw:v1.8.0, given through $REGCTL_POSTGRES_IMAGE and
 * $REGCTL_S3_IMAGE as a user would give theirs). `regctl up` to healthy with 2 registry replicas, a docker push
 * and pull through Traefik, `docker stack deploy -c compose.swarm.yaml` bringing up the same services, then
 * `regctl down --volumes`. Traefik publishes a free high port in host mode. The swarm is initialised here if the
 * engine is in none, and left again afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { probe } from '../../src/ops/http-probe.js';
import { TRIAL_POSTGRES_IMAGE, TRIAL_S3_IMAGE, freePort, imageAvailable } from '../helpers/peers.js';
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
import { deployedSpecs, ensureSwarm, removeEverything as removeStack, sh, waitFor } from './swarm-helpers.js';

const PROJECT = 'e2etrial';
const FILTER = `label=com.docker.stack.namespace=${PROJECT}`;
const IMAGE = `regctl-e2e/${PROJECT}:test`;
const SERVICES = ['postgres', 's3', 'traefik', 'registry', 'ui'].map((s) => `${PROJECT}_${s}`).sort();
const VOLUMES = ['registry-data', 'postgres-data', 's3-data'];

const ready = stackTestsReady() && imageAvailable(TRIAL_POSTGRES_IMAGE) && imageAvailable(TRIAL_S3_IMAGE);
const swarm = ready ? ensureSwarm() : { ok: false, initialised: false, gwbridgeExisted: true };

/** Removes whatever of this stack is left, its trial services' volumes included. */
const removeEverything = () => removeStack(PROJECT, VOLUMES);

describe.skipIf(!ready || !swarm.ok)('swarm stack with its trial PostgreSQL and S3', () => {
  let root: string;
  let dir: string;
  let password: string;
  let httpPort: number;
  let registry: string;
  let removeHosts: () => Promise<void> = async () => undefined;
  let dockerConfig: string;
  let docker: ReturnType<typeof dockerCli>;

  beforeAll(async () => {
    await removeEverything();
    root = await mkdtemp(join(tmpdir(), 'regctl-e2e-trial-'));
    dir = join(root, 'stack');
    httpPort = await freePort('0.0.0.0');
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
        '2',
        '--with-postgres',
        '--with-s3',
        '--http-port',
        String(httpPort),
        '--registry-port',
        '0',
        '--traefik-image',
        E2E_TRAEFIK_IMAGE,
        '--base-image',
        E2E_BASE_IMAGE,
      ],
      { env: { REGCTL_POSTGRES_IMAGE: TRIAL_POSTGRES_IMAGE, REGCTL_S3_IMAGE: TRIAL_S3_IMAGE } },
    );
    if (init.exitCode !== 0) throw new Error(`regctl init failed:\n${init.all}`);
    expect(init.all).toMatch(/trial: PostgreSQL and S3 run as services of this stack on one manager/);
    const file = join(dir, 'regctl.yaml');
    const doc = parseDocument(await readFile(file, 'utf8'));
    doc.setIn(['images', 'registry'], IMAGE);
    await writeFile(file, doc.toString());
    const again = await regctl(['init', '--yes', '--force', '--dir', dir]);
    if (again.exitCode !== 0) throw new Error(`regctl init --force failed:\n${again.all}`);
    password = /^REGISTRY_PASSWORD=(.*)$/m.exec(await readFile(join(dir, '.env'), 'utf8'))![1]!;
    registry = `${REGISTRY_HOST}:${httpPort}`;
    removeHosts = await addHostsLine([REGISTRY_HOST, UI_HOST], 'regctl e2e swarm trial');
    dockerConfig = await mkdtemp(join(tmpdir(), 'regctl-e2e-docker-'));
    docker = dockerCli(dockerConfig);
  }, 300_000);

  afterAll(async () => {
    if (dir) await regctl(['down', '--dir', dir, '--volumes', '--yes']);
    await sh(['stack', 'rm', PROJECT]);
    await removeEverything();
    await sh(['rmi', '-f', IMAGE, `${registry}/e2e/trial:1`, 'regctl-e2e/trial:1']);
    await removeHosts();
    if (dockerConfig) await rm(dockerConfig, { recursive: true, force: true });
    if (root) await rm(root, { recursive: true, force: true });
    await removePackageSnapshot();
    if (swarm.initialised) {
      await sh(['swarm', 'leave', '--force']);
      if (!swarm.gwbridgeExisted) await sh(['network', 'rm', 'docker_gwbridge']);
    }
  }, 300_000);

  it('regctl up starts PostgreSQL and S3 first, then reaches healthy with 2 registry replicas', async () => {
    for (const f of ['auth/metadata-password', 'auth/s3-credentials'])
      expect((await stat(join(dir, f))).mode & 0o777, f).toBe(0o600);
    const res = await regctl(['up', '--dir', dir], { timeoutMs: 600_000 });
    expect(res.exitCode, res.all).toBe(0);
    const out = res.stdout;
    const healthy = (svc: string) => out.indexOf(`${PROJECT}_${svc} 1/1 running and healthy`);
    expect(healthy('postgres')).toBeGreaterThan(-1);
    expect(healthy('s3')).toBeGreaterThan(-1);
    // The registry was created only once its database and bucket answered.
    expect(out.indexOf(`${PROJECT}_registry created`)).toBeGreaterThan(Math.max(healthy('postgres'), healthy('s3')));
    expect(out).toContain(`${PROJECT}_registry 2/2 running and healthy`);
    expect(out).toContain('/v2/ answers 200');
    const ls = await sh(['service', 'ls', '--filter', FILTER, '--format', '{{.Name}} {{.Replicas}}']);
    expect(ls.out.split('\n').sort()).toEqual(
      SERVICES.map((s) => `${s} ${s.endsWith('_registry') ? '2/2' : '1/1'}`).sort(),
    );
    // No secret value in any service's definition; the trial services sit on a manager and publish nothing.
    const metadataPassword = (await readFile(join(dir, 'auth/metadata-password'), 'utf8')).trim();
    const s3Secret = /aws_secret_access_key = (.*)/.exec(await readFile(join(dir, 'auth/s3-credentials'), 'utf8'))![1]!;
    for (const name of SERVICES) {
      const spec = (await sh(['service', 'inspect', name, '--format', '{{json .Spec}}'])).out;
      expect(spec, name).not.toContain(metadataPassword);
      expect(spec, name).not.toContain(s3Secret);
    }
    for (const svc of ['postgres', 's3']) {
      const spec = JSON.parse(
        (await sh(['service', 'inspect', `${PROJECT}_${svc}`, '--format', '{{json .Spec}}'])).out,
      ) as {
        TaskTemplate: { Placement?: { Constraints?: string[] } };
        EndpointSpec?: { Ports?: unknown[] };
      };
      expect(spec.TaskTemplate.Placement?.Constraints).toEqual(['node.role == manager']);
      expect(spec.EndpointSpec?.Ports ?? []).toEqual([]);
    }
    const st = JSON.parse((await regctl(['status', '--dir', dir, '--json'])).stdout) as { healthy: boolean };
    expect(st.healthy).toBe(true);
  }, 900_000);

  it('docker push and pull through Traefik keep the image in the trial S3 and its tags in the trial PostgreSQL', async () => {
    const login = await docker(['login', registry, '-u', 'admin', '--password-stdin'], { input: password });
    expect(login.exitCode, login.all).toBe(0);
    await buildMultiLayerImage('regctl-e2e/trial:1', 3, docker);
    expect((await docker(['tag', 'regctl-e2e/trial:1', `${registry}/e2e/trial:1`])).exitCode).toBe(0);
    const push = await docker(['push', `${registry}/e2e/trial:1`]);
    expect(push.exitCode, push.all).toBe(0);
    expect((await docker(['rmi', `${registry}/e2e/trial:1`])).exitCode).toBe(0);
    const pull = await docker(['pull', `${registry}/e2e/trial:1`]);
    expect(pull.exitCode, pull.all).toBe(0);
    // The blobs are files of the bucket's directory on the S3 service's volume; the tag is a row in PostgreSQL.
    const s3Task = (await sh(['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${PROJECT}_s3`])).out.trim();
    const blobs = await sh(['exec', s3Task, 'find', '/data/registry', '-path', '*blobs*', '-type', 'f']);
    expect(blobs.out.split('\n').filter(Boolean).length).toBeGreaterThanOrEqual(4);
    const pgTask = (
      await sh(['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${PROJECT}_postgres`])
    ).out.trim();
    const tags = await sh([
      'exec',
      pgTask,
      'psql',
      '-U',
      'regctl',
      '-d',
      'regctl',
      '-tAc',
      "select t.name from tags t join repositories r on r.id = t.repository_id where r.name = 'e2e/trial'",
    ]);
    expect(tags.out.trim(), tags.all).toBe('1');
  }, 600_000);

  it('docker stack deploy -c compose.swarm.yaml brings up the same services; down --volumes removes the data', async () => {
    const regctlSpecs = await deployedSpecs(FILTER);
    expect(Object.keys(regctlSpecs).sort()).toEqual(SERVICES);
    const down = await regctl(['down', '--dir', dir]);
    expect(down.exitCode, down.all).toBe(0);
    expect((await sh(['service', 'ls', '-q', '--filter', FILTER])).out.trim()).toBe('');
    const deploy = await sh(['stack', 'deploy', '-c', 'compose.swarm.yaml', PROJECT], { cwd: dir });
    expect(deploy.code, deploy.all).toBe(0);
    await waitFor('the stack to converge', async () => {
      const ls = (await sh(['service', 'ls', '--filter', FILTER, '--format', '{{.Replicas}}'])).out.split('\n');
      return ls.length === SERVICES.length && ls.every((r) => /^(\d+)\/\1$/.test(r.trim()));
    });
    const stackSpecs = await deployedSpecs(FILTER);
    for (const name of SERVICES) expect(stackSpecs[name], name).toEqual(regctlSpecs[name]);
    // The data outlived the services: the tag pushed before is there (the registry may restart until its
    // database answers, as a stack deploy has no order).
    await waitFor(
      'the pushed tag through Traefik',
      async () =>
        (
          await probe({
            port: httpPort,
            host: REGISTRY_HOST,
            path: '/v2/e2e/trial/manifests/1',
            method: 'HEAD',
            auth: { username: 'admin', password },
            timeoutMs: 15_000,
          }).catch(() => ({ status: 0 }))
        ).status === 200,
      180_000,
    );
    expect((await sh(['stack', 'rm', PROJECT])).code).toBe(0);
    await waitFor('the tasks to stop', async () => (await sh(['ps', '-q', '--filter', FILTER])).out.trim() === '');
    const gone = await regctl(['down', '--dir', dir, '--volumes', '--yes']);
    expect(gone.exitCode, gone.all).toBe(0);
    for (const v of VOLUMES) expect((await sh(['volume', 'inspect', `${PROJECT}_${v}`])).code, v).not.toBe(0);
  }, 900_000);
});
