/**
 * The trial services' images (test/setup/provision.sh: regctl-test/postgres:15, regctl-test/versitygw:v1.8.0) run
 * as plain containers exactly as a swarm stack's `trial:` renders them (src/stack/swarm-trial.ts: entry point,
 * environment, secrets under /run/secrets, data volumes, health checks), on a user bridge network with their ports
 * published on loopback high ports; `regctl serve` on this host keeps its metadata and images in them. A pushed tag
 * survives a restart of the registry, and one of both services on their volumes.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseStackConfig } from '../../src/config/schema.js';
import { s3CredentialsText } from '../../src/ops/init-secrets.js';
import { S3_ENTRYPOINT_SCRIPT, trialServiceDrafts, type TrialServiceDraft } from '../../src/stack/swarm-trial.js';
import {
  TRIAL_POSTGRES_IMAGE,
  TRIAL_S3_IMAGE,
  dockerAvailable,
  imageAvailable,
  freePort,
  peerAvailable,
  peerPath,
} from '../helpers/peers.js';
import { run } from '../helpers/run.js';
import { REGCTL_BIN, builtCliPresent, startRegistryProcess, type RegistryProcess } from '../helpers/serve-process.js';
import { writeOciLayout } from './registry/oci-layout.js';

const ready =
  dockerAvailable() &&
  imageAvailable(TRIAL_POSTGRES_IMAGE) &&
  imageAvailable(TRIAL_S3_IMAGE) &&
  peerAvailable('crane') &&
  builtCliPresent();

const id = randomBytes(4).toString('hex');
const project = `trialit${id}`;
const network = `${project}_net`;
const docker = (args: string[]) =>
  execFileSync('docker', args, { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] }).trim();

let work: string;
let secretsDir: string;
const password = randomBytes(18).toString('base64url');
const keys = { id: randomBytes(10).toString('hex').toUpperCase(), secret: randomBytes(30).toString('base64url') };

const config = parseStackConfig({
  version: 1,
  name: project,
  deploy: { mode: 'swarm', replicas: 2 },
  trial: { postgres: true, s3: true },
  metadata: 'postgres://regctl@postgres:5432/regctl',
  storage: { url: 's3://registry/trial', endpoint: 'http://s3:7070', pathStyle: true },
  images: { postgres: TRIAL_POSTGRES_IMAGE, s3: TRIAL_S3_IMAGE },
}).config!;
const drafts = config ? trialServiceDrafts(config, project) : [];
const draft = (key: string) => drafts.find((d) => d.key === key)!;
const container = (d: TrialServiceDraft) => `${project}-${d.key}`;

/** `docker run` of a draft as the service would run it: its secrets bind-mounted read-only where Swarm puts them. */
function start(d: TrialServiceDraft, port: number): void {
  const [entrypoint, ...entryArgs] = d.entrypoint ?? [];
  docker([
    'run',
    '-d',
    '--name',
    container(d),
    '--network',
    network,
    '--network-alias',
    d.key,
    '-p',
    `127.0.0.1::${port}`,
    ...Object.entries(d.environment).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
    ...d.mounts.flatMap((m) => ['-v', `${d.volume.name}:${m.target}`]),
    ...d.secrets.flatMap((s) => ['-v', `${join(secretsDir, s.source)}:${s.target}:ro`]),
    ...(entrypoint ? ['--entrypoint', entrypoint] : []),
    d.image,
    ...entryArgs,
  ]);
}

/** Runs the draft's health check command in its container until it passes (as the engine would). */
async function healthy(d: TrialServiceDraft, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let last: string;
    try {
      docker(['exec', container(d), ...d.healthcheck.test.slice(1)]);
      return;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline)
      throw new Error(`${d.key} not healthy: ${last}\n${docker(['logs', '--tail', '30', container(d)])}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

const published = (d: TrialServiceDraft, port: number) =>
  Number(
    docker(['port', container(d), `${port}/tcp`])
      .split('\n')[0]!
      .split(':')
      .pop(),
  );

function registry(): Promise<RegistryProcess> {
  const pg = published(draft('postgres'), 5432);
  const s3 = published(draft('s3'), 7070);
  return startRegistryProcess({
    storageArgs: ['--storage', 's3://registry/trial', '--s3-endpoint', `http://127.0.0.1:${s3}`, '--s3-path-style'],
    args: [
      '--metadata',
      `postgres://regctl@127.0.0.1:${pg}/regctl`,
      '--metadata-password-file',
      join(secretsDir, 'metadata-password'),
    ],
    env: { AWS_SHARED_CREDENTIALS_FILE: join(secretsDir, 's3-credentials') },
  });
}

beforeAll(async () => {
  if (!ready) return;
  work = await mkdtemp(join(tmpdir(), 'regctl-trial-it-'));
  secretsDir = join(work, 'secrets');
  await mkdir(secretsDir);
  // Swarm mounts secrets 0444, readable by the services' own users (postgres is not root).
  await chmod(work, 0o755);
  await chmod(secretsDir, 0o755);
  await writeFile(join(secretsDir, 'metadata-password'), `${password}\n`, { mode: 0o444 });
  await writeFile(join(secretsDir, 's3-credentials'), s3CredentialsText(keys.id, keys.secret), { mode: 0o444 });
  docker(['network', 'create', network]);
  start(draft('postgres'), 5432);
  start(draft('s3'), 7070);
  await Promise.all(drafts.map((d) => healthy(d)));
}, 240_000);

afterAll(async () => {
  if (!ready) return;
  for (const d of drafts) {
    try {
      docker(['rm', '-f', '-v', container(d)]);
      docker(['volume', 'rm', d.volume.name]);
    } catch {
      // already gone
    }
  }
  try {
    docker(['network', 'rm', network]);
  } catch {
    // already gone
  }
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(!ready)('trial PostgreSQL and S3 images with regctl serve', () => {
  it("keep the secrets out of the containers' definitions; the gateway made the bucket at its start", () => {
    for (const d of drafts) {
      const inspected = docker(['inspect', container(d)]);
      expect(inspected).not.toContain(password);
      expect(inspected).not.toContain(keys.secret);
    }
    expect(docker(['exec', container(draft('s3')), 'ls', '/data'])).toBe('registry');
    // The password reached PostgreSQL: a SCRAM login over the network with it works, and one without it fails.
    const psql = (pw: string) =>
      docker([
        'exec',
        '-e',
        `PGPASSWORD=${pw}`,
        container(draft('postgres')),
        'psql',
        '-h',
        '127.0.0.1',
        '-U',
        'regctl',
        '-d',
        'regctl',
        '-tAc',
        'select current_user',
      ]);
    expect(psql(password)).toBe('regctl');
    expect(() => psql('not-the-password')).toThrow(/password authentication failed/);
  });

  it('a pushed tag is there after a restart of the registry, and of both services on their volumes', async () => {
    const image = await writeOciLayout(join(work, 'img'), { tag: 'v1' });
    const craneEnv = { DOCKER_CONFIG: join(work, 'crane') };
    const crane = (args: string[]) =>
      run(peerPath('crane'), [...args, '--insecure'], { env: craneEnv, stdoutOnly: true });
    const login = (reg: RegistryProcess) =>
      run(peerPath('crane'), ['auth', 'login', reg.host, '-u', reg.username, '-p', reg.password], { env: craneEnv });

    let reg = await registry();
    try {
      await login(reg);
      await crane(['push', image.dir, `${reg.host}/trial/app:v1`]);
      expect((await crane(['digest', `${reg.host}/trial/app:v1`])).trim()).toBe(image.manifestDigest);
    } finally {
      await reg.stop();
    }

    reg = await registry();
    try {
      await login(reg);
      expect((await crane(['ls', `${reg.host}/trial/app`])).trim()).toBe('v1');
      expect((await crane(['digest', `${reg.host}/trial/app:v1`])).trim()).toBe(image.manifestDigest);
    } finally {
      await reg.stop();
    }

    for (const d of drafts) docker(['restart', container(d)]);
    await Promise.all(drafts.map((d) => healthy(d)));
    expect(docker(['logs', container(draft('postgres'))]).match(/initialised/g)).toHaveLength(1);
    reg = await registry();
    try {
      await login(reg);
      const pulled = join(work, 'pulled');
      await crane(['pull', '--format', 'oci', `${reg.host}/trial/app:v1`, pulled]);
      expect((await crane(['digest', `${reg.host}/trial/app:v1`])).trim()).toBe(image.manifestDigest);
    } finally {
      await reg.stop();
    }
  });
});

describe.skipIf(!peerAvailable('docker-compose') || !builtCliPresent())('compose.swarm.yaml of a trial stack', () => {
  it('is a valid compose file (docker-compose 1.29) whose S3 entry point reads back as the model wrote it', async () => {
    const root = await mkdtemp(join(tmpdir(), 'regctl-trial-compose-'));
    try {
      const dir = join(root, 'stack');
      const flags = ['--mode', 'swarm', '--replicas', '2', '--with-postgres', '--with-s3', '--registry-port', '0'];
      await run(
        process.execPath,
        [REGCTL_BIN, 'init', '--dir', dir, '--yes', '--http-port', String(await freePort()), ...flags],
        {
          env: { REGCTL_BCRYPT_COST: '4' },
        },
      );
      const text = await run(peerPath('docker-compose'), ['-f', 'compose.swarm.yaml', 'config'], {
        cwd: dir,
        stdoutOnly: true,
      });
      const file = parse(text) as { services: Record<string, { entrypoint?: string[]; ports?: unknown }> };
      expect(Object.keys(file.services).sort()).toEqual(['postgres', 'registry', 's3', 'traefik', 'ui']);
      // docker-compose prints values with their dollars doubled again.
      expect(file.services.s3!.entrypoint!.map((a) => a.replaceAll('$$', '$'))).toEqual([
        '/bin/sh',
        '-c',
        S3_ENTRYPOINT_SCRIPT,
        'regctl-s3',
        'registry',
      ]);
      expect(file.services.postgres!.ports).toBeUndefined();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
