/**
 * The trial services of a swarm stack (`trial:`; src/stack/swarm-trial.ts) as rendered into compose.swarm.yaml and
 * the SwarmModel, and `regctl init --with-postgres --with-s3`.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { parseStackConfig, type StackConfig } from '../../../src/config/schema.js';
import { renderSwarmCompose, swarmComposeObject } from '../../../src/stack/swarm-compose.js';
import { buildSwarmModel, type SwarmContents } from '../../../src/stack/swarm-model.js';
import { initInTemp } from './cli-harness.js';

const TRIAL = {
  host: 'example.test',
  deploy: { mode: 'swarm', replicas: 2 },
  trial: { postgres: true, s3: true },
  metadata: 'postgres://regctl@postgres:5432/regctl',
  storage: { url: 's3://registry/prod', endpoint: 'http://s3:7070', pathStyle: true },
};

function config(input: Record<string, unknown> = {}): StackConfig {
  const result = parseStackConfig({ version: 1, ...TRIAL, ...input });
  if (!result.config) throw new Error(JSON.stringify(result.problems));
  return result.config;
}

const PASSWORD = 'the-database-password';
const SECRET_KEY = 'the-s3-secret-access-key';
const contents: SwarmContents = {
  htpasswd: 'admin:$2y$10$abcdefghijklmnopqrstuv\n',
  access: 'users: {}\n',
  traefik: 'entryPoints: {}\n',
  metadataPassword: `${PASSWORD}\n`,
  s3Credentials: `[default]\naws_access_key_id = AKIATRIAL\naws_secret_access_key = ${SECRET_KEY}\n`,
};

interface Svc {
  image: string;
  entrypoint?: string[];
  environment?: Record<string, string>;
  ports?: unknown[];
  volumes?: { type: string; source: string; target: string }[];
  secrets?: { source: string; target: string }[];
  healthcheck?: { test: string[] };
  deploy: { replicas: number; placement?: { constraints: string[] }; update_config: Record<string, unknown> };
}
type SwarmFile = { services: Record<string, Svc>; volumes: Record<string, { name: string }> };

const rendered = (c: StackConfig = config()) => {
  const model = buildSwarmModel(c, 'dev', contents);
  return { model, text: renderSwarmCompose(model), file: parse(renderSwarmCompose(model)) as SwarmFile };
};

describe('trial services in compose.swarm.yaml', () => {
  test('PostgreSQL and S3 come first, each one task on a manager with its volume, no port, a health check', () => {
    const { model, text, file } = rendered();
    expect(parse(text)).toEqual(swarmComposeObject(model));
    expect(Object.keys(file.services)).toEqual(['postgres', 's3', 'traefik', 'registry', 'ui']);
    expect(model.services.filter((s) => s.trial).map((s) => s.key)).toEqual(['postgres', 's3']);
    const { postgres, s3 } = file.services as Record<'postgres' | 's3', Svc>;
    expect(postgres.image).toBe('postgres:16-alpine');
    expect(s3.image).toBe('versity/versitygw:v1.8.0');
    for (const svc of [postgres, s3]) {
      expect(svc.ports).toBeUndefined();
      expect(svc.deploy.replicas).toBe(1);
      expect(svc.deploy.placement?.constraints).toEqual(['node.role == manager']);
      // Two servers on one data directory would corrupt it: the old task stops before the new one starts.
      expect(svc.deploy.update_config).toMatchObject({ order: 'stop-first' });
    }
    expect(postgres.volumes).toEqual([{ type: 'volume', source: 'postgres-data', target: '/var/lib/postgresql/data' }]);
    expect(s3.volumes).toEqual([{ type: 'volume', source: 's3-data', target: '/data' }]);
    expect(file.volumes['postgres-data']!.name).toBe('regctl_postgres-data');
    expect(file.volumes['s3-data']!.name).toBe('regctl_s3-data');
    expect(postgres.healthcheck?.test).toEqual([
      'CMD',
      'pg_isready',
      '-h',
      '127.0.0.1',
      '-p',
      '5432',
      '-U',
      'regctl',
      '-d',
      'regctl',
    ]);
    expect(s3.healthcheck?.test).toEqual(['CMD', 'wget', '-q', '-O', '/dev/null', 'http://127.0.0.1:7070/health']);
    // Not routed: no Traefik label on either.
    for (const key of ['postgres', 's3']) {
      const svc = model.services.find((s) => s.key === key)!;
      expect(Object.keys(svc.labels).filter((k) => k.startsWith('traefik.'))).toEqual([]);
    }
  });

  test('secrets are Swarm secrets, never in an environment or in the file; the bucket is made at start', () => {
    const { model, text, file } = rendered();
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(SECRET_KEY);
    const { postgres, s3 } = file.services as Record<'postgres' | 's3', Svc>;
    expect(postgres.environment).toEqual({
      POSTGRES_USER: 'regctl',
      POSTGRES_DB: 'regctl',
      POSTGRES_PASSWORD_FILE: '/run/secrets/metadata-password',
      PGDATA: '/var/lib/postgresql/data/pgdata',
    });
    expect(postgres.secrets).toEqual([{ source: 'metadata-password', target: '/run/secrets/metadata-password' }]);
    expect(s3.environment).toBeUndefined();
    expect(s3.secrets).toEqual([{ source: 's3-credentials', target: '/run/secrets/s3-credentials' }]);
    // The entry point reads the keys from the secret file, makes the bucket's directory, then runs the gateway.
    const [sh, c, script, arg0, bucket] = s3.entrypoint!;
    expect([sh, c, arg0, bucket]).toEqual(['/bin/sh', '-c', 'regctl-s3', 'registry']);
    expect(script).toContain('ROOT_SECRET_ACCESS_KEY="$$(sed -n');
    expect(script).toContain('/run/secrets/s3-credentials');
    expect(script).toContain('mkdir -p "/data/$$1"');
    expect(script).toMatch(/exec versitygw --port :7070 --health \/health --keep-alive posix \/data$/);
    // The model keeps single dollars: compose doubles them, the Engine API takes them as they are.
    expect(model.services.find((s) => s.key === 's3')!.entrypoint![2]).toContain('"/data/$1"');
    // The registry reaches both by name, with its S3 keys from the same secret.
    const registry = model.services.find((s) => s.key === 'registry')!;
    expect(registry.command).toEqual(
      expect.arrayContaining(['--storage', 's3://registry/prod', '--s3-endpoint', 'http://s3:7070', '--s3-path-style']),
    );
    expect(registry.secrets.map((s) => s.target)).toEqual(
      expect.arrayContaining(['/auth/metadata-password', '/auth/s3-credentials']),
    );
  });

  test('images from regctl.yaml; one service alone; none without trial', () => {
    const own = rendered(
      config({ images: { postgres: 'regctl-test/postgres:15', s3: 'regctl-test/versitygw:v1.8.0' } }),
    );
    expect(own.file.services.postgres!.image).toBe('regctl-test/postgres:15');
    expect(own.file.services.s3!.image).toBe('regctl-test/versitygw:v1.8.0');
    const pgOnly = buildSwarmModel(config({ trial: { postgres: true }, storage: {} }), 'dev', {
      ...contents,
      s3Credentials: undefined,
    });
    expect(pgOnly.services.map((s) => s.key)).toEqual(['postgres', 'traefik', 'registry', 'ui']);
    expect(pgOnly.volumes.map((v) => v.key)).toEqual(['registry-data', 'postgres-data']);
    const none = buildSwarmModel(config({ trial: undefined }), 'dev', contents);
    expect(none.services.map((s) => s.key)).toEqual(['traefik', 'registry', 'ui']);
  });
});

describe('regctl init --with-postgres --with-s3', () => {
  const t = initInTemp('regctl-trial-init-');
  beforeEach(t.fresh);
  afterEach(t.cleanup);
  const { dir, init } = t;

  test('writes trial, metadata and storage, strong generated secrets (0600), and says it is a trial', async () => {
    const run = await init(['--mode', 'swarm', '--replicas', '2', '--with-postgres', '--with-s3'], {
      REGCTL_POSTGRES_IMAGE: 'regctl-test/postgres:15',
      REGCTL_S3_IMAGE: 'regctl-test/versitygw:v1.8.0',
      AWS_ACCESS_KEY_ID: 'AKIA-A-REAL-ACCOUNT',
      AWS_SECRET_ACCESS_KEY: 'a-real-secret',
    });
    expect(run.code, run.stderr).toBe(0);
    const said = run.stdout + run.stderr;
    expect(said).toMatch(/trial: PostgreSQL and S3 run as services of this stack on one manager/);
    expect(said).toMatch(/AWS_ACCESS_KEY_ID ignored: the trial S3 service gets keys of its own/);
    expect(parse(await readFile(join(dir(), 'regctl.yaml'), 'utf8'))).toMatchObject({
      deploy: { mode: 'swarm', replicas: 2 },
      trial: { postgres: true, s3: true },
      metadata: 'postgres://regctl@postgres:5432/regctl',
      storage: { url: 's3://registry', endpoint: 'http://s3:7070', pathStyle: true },
      images: { postgres: 'regctl-test/postgres:15', s3: 'regctl-test/versitygw:v1.8.0' },
    });
    const password = (await readFile(join(dir(), 'auth/metadata-password'), 'utf8')).trim();
    expect(password).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const keys = await readFile(join(dir(), 'auth/s3-credentials'), 'utf8');
    expect(keys).toMatch(
      /^\[default\]\naws_access_key_id = [0-9A-F]{20}\naws_secret_access_key = [A-Za-z0-9_-]{40}\n$/,
    );
    expect(keys).not.toContain('a-real-secret');
    for (const f of ['auth/metadata-password', 'auth/s3-credentials'])
      expect((await stat(join(dir(), f))).mode & 0o777).toBe(0o600);
    const compose = await readFile(join(dir(), 'compose.swarm.yaml'), 'utf8');
    expect(compose).not.toContain(password);
    expect(compose).not.toContain(keys.split(' = ')[2]!.trim());
    expect(Object.keys((parse(compose) as SwarmFile).services)).toEqual([
      'postgres',
      's3',
      'traefik',
      'registry',
      'ui',
    ]);

    // Rendered again (the harness gives each run a new --http-port), the stack keeps its secrets, and the database
    // and bucket its volumes were made with.
    const yaml = join(dir(), 'regctl.yaml');
    await writeFile(
      yaml,
      (await readFile(yaml, 'utf8'))
        .replace('postgres://regctl@postgres:5432/regctl', 'postgres://app@postgres:5432/appdb')
        .replace('s3://registry', 's3://images/trial'),
    );
    const again = await init(['--with-postgres', '--with-s3', '--force']);
    expect(again.code, again.stderr).toBe(0);
    expect(parse(await readFile(yaml, 'utf8'))).toMatchObject({
      metadata: 'postgres://app@postgres:5432/appdb',
      storage: { url: 's3://images/trial' },
    });
    expect((await readFile(join(dir(), 'auth/metadata-password'), 'utf8')).trim()).toBe(password);
    expect(await readFile(join(dir(), 'auth/s3-credentials'), 'utf8')).toBe(keys);
  });

  test('refuses in one line, writing nothing', async () => {
    const cases: [string[], RegExp][] = [
      [['--with-postgres'], /--with-postgres\/--with-s3: trial services \(PostgreSQL, S3\) run in a swarm stack only/],
      [
        ['--mode', 'swarm', '--with-postgres', '--metadata', 'postgres://a@db/b'],
        /--with-postgres runs the stack's own PostgreSQL: leave out --metadata/,
      ],
      [
        ['--mode', 'swarm', '--with-s3', '--storage', 's3://bucket'],
        /--with-s3 runs the stack's own S3 server: leave out --storage and --s3-endpoint/,
      ],
      [['--mode', 'swarm', '--postgres-image', 'pg:1'], /--postgres-image .* it needs --with-postgres/],
    ];
    for (const [args, message] of cases) {
      const run = await init(args);
      expect(run.code, args.join(' ')).not.toBe(0);
      expect(run.stderr).toMatch(message);
      expect(run.stderr.split('\n').filter((l) => l.startsWith('✗'))).toHaveLength(1);
      await expect(stat(dir())).rejects.toThrow();
    }
  });
});
