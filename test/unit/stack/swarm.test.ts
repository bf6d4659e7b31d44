import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { parseStackConfig, type StackConfig } from '../../../src/config/schema.js';
import { buildStackModel } from '../../../src/stack/build-model.js';
import { swarmComposeObject, renderSwarmCompose } from '../../../src/stack/swarm-compose.js';
import { buildSwarmModel, versionedName, type SwarmContents } from '../../../src/stack/swarm-model.js';
import { traefikStaticConfig } from '../../../src/stack/traefik.js';
import { initInTemp } from './cli-harness.js';

const PG = 'postgres://regctl@db.internal:5432/regctl';

function config(input: Record<string, unknown> = {}): StackConfig {
  const result = parseStackConfig({ version: 1, ...input });
  if (!result.config) throw new Error(JSON.stringify(result.problems));
  return result.config;
}

const contents: SwarmContents = {
  htpasswd: 'admin:$2y$10$abcdefghijklmnopqrstuv\n',
  access: 'users: {}\n',
  traefik: 'entryPoints: {}\n',
  metadataPassword: 'the-database-password\n',
};

type Svc = {
  deploy: {
    replicas: number;
    endpoint_mode: string;
    placement?: { constraints: string[] };
    update_config: Record<string, unknown>;
    labels: Record<string, string>;
  };
  labels?: unknown;
  ports?: { mode: string; published: number; target: number }[];
  secrets?: { source: string; target: string }[];
  configs?: { source: string; target: string }[];
  volumes?: { type: string; source: string }[];
};
type SwarmFile = {
  version: string;
  services: Record<string, Svc>;
  networks: Record<string, { driver: string; name: string }>;
  secrets: Record<string, { name: string; file: string }>;
  configs: Record<string, { name: string; file: string }>;
};

const swarmConfig = () =>
  config({ host: 'example.test', ports: { http: 18480 }, deploy: { mode: 'swarm', replicas: 3 }, metadata: PG });

describe('compose.swarm.yaml', () => {
  test('the text parses back to the compose object', () => {
    const model = buildSwarmModel(swarmConfig(), 'dev', contents);
    expect(parse(renderSwarmCompose(model))).toEqual(swarmComposeObject(model));
  });

  test('deploy settings: replicas, dnsrr everywhere, start-first with rollback, Traefik on a manager in host mode', () => {
    const file = parse(renderSwarmCompose(buildSwarmModel(swarmConfig(), 'dev', contents))) as SwarmFile;
    expect(file.version).toBe('3.8');
    expect(Object.keys(file.services)).toEqual(['traefik', 'registry', 'ui']);
    const { traefik, registry, ui } = file.services as Record<'traefik' | 'registry' | 'ui', Svc>;
    expect([traefik.deploy.replicas, registry.deploy.replicas, ui.deploy.replicas]).toEqual([1, 3, 1]);
    for (const svc of [traefik, registry, ui]) {
      expect(svc.deploy.endpoint_mode).toBe('dnsrr');
      expect(svc.deploy.update_config).toMatchObject({
        order: svc === traefik ? 'stop-first' : 'start-first',
        failure_action: 'rollback',
      });
      // Traefik's Swarm provider reads service labels: none on the containers.
      expect(svc.labels).toBeUndefined();
    }
    expect(traefik.ports).toEqual([{ target: 80, published: 18480, protocol: 'tcp', mode: 'host' }]);
    expect(registry.ports).toBeUndefined();
    expect(traefik.deploy.placement?.constraints).toEqual(['node.role == manager']);
    expect(ui.deploy.placement).toBeUndefined();
    expect(file.networks.proxy).toMatchObject({ name: 'regctl_proxy', driver: 'overlay' });
  });

  test('Traefik labels are the compose stack labels (one owner), with the Swarm network label and a retry', () => {
    const cfg = swarmConfig();
    const file = parse(renderSwarmCompose(buildSwarmModel(cfg, 'dev', contents))) as SwarmFile;
    const compose = buildStackModel(cfg, 'dev').services.find((s) => s.name === 'registry')!.labels;
    const swarm = file.services.registry!.deploy.labels;
    for (const [k, v] of Object.entries(compose)) {
      if (!k.startsWith('traefik.http.routers') || k.endsWith('.middlewares')) continue;
      // The local CA's HTTPS routers are for compose dev stacks only: a swarm Traefik has no leaf to serve.
      if (k.startsWith('traefik.http.routers.registry-https.')) expect(swarm[k], k).toBeUndefined();
      else expect(swarm[k], k).toBe(v);
    }
    expect(swarm['traefik.swarm.network']).toBe('regctl_proxy');
    expect(swarm['traefik.docker.network']).toBeUndefined();
    expect(swarm['traefik.http.routers.registry.middlewares']).toBe('registry-cors,registry-retry');
    expect(swarm['com.docker.stack.namespace']).toBe('regctl');
    expect(Object.keys(swarm).some((k) => k.startsWith('com.docker.compose.'))).toBe(false);
  });

  test('secrets and configs are versioned file references: never a value, a new name for new content', () => {
    const model = buildSwarmModel(swarmConfig(), 'dev', contents);
    const text = renderSwarmCompose(model);
    expect(text).not.toContain('the-database-password');
    expect(text).not.toContain('$2y$');
    const file = parse(text) as SwarmFile;
    expect(file.secrets).toEqual({
      htpasswd: { name: versionedName('regctl', 'htpasswd', contents.htpasswd), file: './auth/htpasswd' },
      'metadata-password': {
        name: versionedName('regctl', 'metadata-password', contents.metadataPassword!),
        file: './auth/metadata-password',
      },
    });
    expect(file.configs.traefik?.file).toBe('./traefik/traefik.swarm.yml');
    expect(file.services.registry!.secrets).toEqual([
      { source: 'htpasswd', target: '/auth/htpasswd' },
      { source: 'metadata-password', target: '/auth/metadata-password' },
    ]);
    expect(file.services.registry!.configs).toEqual([{ source: 'access', target: '/auth/access.yaml' }]);
    // No bind mount of the stack directory: a task may run on another node.
    expect(file.services.registry!.volumes).toEqual([
      { type: 'volume', source: 'registry-data', target: '/var/lib/registry' },
    ]);
    const rotated = buildSwarmModel(swarmConfig(), 'dev', { ...contents, htpasswd: 'admin:$2y$10$other\n' });
    expect(rotated.secrets[0]!.name).not.toBe(model.secrets[0]!.name);
    expect(rotated.secrets[1]!.name).toBe(model.secrets[1]!.name);
    expect(versionedName('p', 'htpasswd', 'x')).toMatch(/^p_htpasswd_v[0-9a-f]{12}$/);
  });

  test('the Traefik static config of a swarm stack uses the Swarm provider, constrained to the stack', () => {
    const input = {
      mode: 'dev' as const,
      project: 'regctl',
      network: 'regctl_proxy',
      dashboard: false,
      readTimeout: '0s',
      writeTimeout: '0s',
      idleTimeout: '180s',
      accessLog: true,
      logLevel: 'INFO',
      acme: { caServer: 'https://acme.test/dir' },
    };
    const swarm = traefikStaticConfig({ ...input, provider: 'swarm' }).providers as Record<string, unknown>;
    expect(Object.keys(swarm)).toEqual(['swarm']);
    expect(swarm.swarm).toMatchObject({
      network: 'regctl_proxy',
      exposedByDefault: false,
      constraints: 'Label(`com.docker.stack.namespace`,`regctl`)',
    });
    expect(Object.keys(traefikStaticConfig(input).providers as object)).toEqual(['docker']);
  });
});

describe('regctl.yaml deploy and metadata', () => {
  const problems = (input: Record<string, unknown>) =>
    (parseStackConfig({ version: 1, ...input }).problems ?? []).map((p) => `${p.path}: ${p.message}`);

  test('one clear line per mistake', () => {
    expect(problems({ deploy: { mode: 'swarm', replicas: 3 } })).toEqual([
      'deploy.replicas: 3 replicas share one store only with PostgreSQL metadata: set metadata: postgres://USER@HOST/DB',
    ]);
    expect(problems({ deploy: { replicas: 2 }, metadata: PG })).toEqual([
      'deploy.replicas: more than one replica needs deploy.mode: swarm',
    ]);
    expect(problems({ deploy: { mode: 'kubernetes' } })).toEqual(['deploy.mode: deploy.mode is compose or swarm']);
    expect(problems({ deploy: { mode: 'swarm', replicas: 0 } })).toEqual([
      'deploy.replicas: deploy.replicas must be at least 1',
    ]);
    expect(problems({ metadata: 'postgres://regctl:secret@db/regctl' })).toEqual([
      'metadata: must be postgres://USER@HOST[:PORT]/DB, without a password',
    ]);
    expect(problems({ deploy: { mode: 'swarm', replicas: 3 }, metadata: PG })).toEqual([]);
  });
});

describe('regctl init --mode swarm', () => {
  const t = initInTemp('regctl-swarm-init-');
  beforeEach(t.fresh);
  afterEach(t.cleanup);
  const { dir, init } = t;

  test('renders compose.swarm.yaml and the password file (0600), and says that several nodes need S3', async () => {
    const run = await init(['--mode', 'swarm', '--replicas', '3', '--metadata', PG], {
      REGCTL_METADATA_PASSWORD: 'pg-password-123',
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout + run.stderr).toMatch(/several nodes need S3/);
    const file = parse(await readFile(join(dir(), 'compose.swarm.yaml'), 'utf8')) as SwarmFile;
    expect(file.services.registry!.deploy.replicas).toBe(3);
    expect(await readFile(join(dir(), 'auth/metadata-password'), 'utf8')).toBe('pg-password-123\n');
    expect((await stat(join(dir(), 'auth/metadata-password'))).mode & 0o777).toBe(0o600);
    expect(parse(await readFile(join(dir(), 'regctl.yaml'), 'utf8'))).toMatchObject({
      deploy: { mode: 'swarm', replicas: 3 },
      metadata: PG,
    });
  });

  test('refuses in one line, writing nothing: replicas without PostgreSQL, or PostgreSQL without its password', async () => {
    const noPg = await init(['--mode', 'swarm', '--replicas', '3']);
    expect(noPg.code).not.toBe(0);
    expect(noPg.stderr).toMatch(/--replicas: 3 replicas share one store only with PostgreSQL metadata/);
    const noPassword = await init(['--mode', 'swarm', '--replicas', '3', '--metadata', PG]);
    expect(noPassword.code).not.toBe(0);
    expect(noPassword.stderr).toMatch(/needs the database password/);
    await expect(stat(dir())).rejects.toThrow();
    const badReplicas = await init(['--mode', 'swarm', '--replicas', 'three']);
    expect(badReplicas.code).not.toBe(0);
    expect(badReplicas.stderr).toMatch(/--replicas must be a whole number/);
  });
});
