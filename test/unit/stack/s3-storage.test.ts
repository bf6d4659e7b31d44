/** A stack whose registry keeps its images in S3: regctl.yaml's storage.url, the rendered files, the keys' file. */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { parseStackConfig, type StackConfig } from '../../../src/config/schema.js';
import { buildStackModel } from '../../../src/stack/build-model.js';
import { buildSwarmModel, type SwarmContents } from '../../../src/stack/swarm-model.js';
import { initInTemp } from './cli-harness.js';

const PG = 'postgres://regctl@db.internal:5432/regctl';
const BUCKET = 's3://registry-bucket/prod';
const KEY_ID = 'AKIAEXAMPLEKEYID0001';
const SECRET = 'wJalrXUtnFEMI-example-secret-key-0001';

function config(input: Record<string, unknown>): StackConfig {
  const result = parseStackConfig({ version: 1, ...input });
  if (!result.config) throw new Error(JSON.stringify(result.problems));
  return result.config;
}
const problems = (input: Record<string, unknown>) =>
  (parseStackConfig({ version: 1, ...input }).problems ?? []).map((p) => `${p.path}: ${p.message}`);

const s3 = { url: BUCKET, endpoint: 'http://s3.internal:7070', region: 'eu-west-3', pathStyle: true };

describe('regctl.yaml storage on S3', () => {
  test('one clear line per mistake', () => {
    expect(problems({ storage: { url: 'https://bucket' } })).toEqual([
      'storage.url: must be s3://BUCKET[/PREFIX], for example s3://registry/prod',
    ]);
    expect(problems({ storage: { url: 's3://Upper_Case' } })).toEqual([
      'storage.url: must be s3://BUCKET[/PREFIX], for example s3://registry/prod',
    ]);
    expect(problems({ storage: { url: BUCKET, endpoint: 'ftp://x' } })).toEqual([
      'storage.endpoint: must be an http(s) URL without a path, for example http://s3:7070',
    ]);
    expect(problems({ storage: { endpoint: 'http://s3:7070' } })).toEqual([
      'storage.endpoint: storage.endpoint needs storage.url: s3://BUCKET',
    ]);
    expect(problems({ storage: { url: BUCKET, pathStyle: 'yes' } })).toEqual([
      'storage.pathStyle: storage.pathStyle is true or false',
    ]);
    expect(problems({ storage: s3 })).toEqual([]);
  });

  test('the registry serves from the bucket and its SDK reads the keys from the mounted file, not the environment', () => {
    const registry = buildStackModel(config({ storage: s3 }), 'dev').services.find((s) => s.name === 'registry')!;
    const command = registry.command!.join(' ');
    expect(command).toContain(
      `--storage ${BUCKET} --s3-endpoint http://s3.internal:7070 --s3-region eu-west-3 --s3-path-style`,
    );
    expect(registry.environment.AWS_SHARED_CREDENTIALS_FILE).toBe('/auth/s3-credentials');
    expect(Object.keys(registry.environment).filter((k) => /ACCESS_KEY/.test(k))).toEqual([]);
    const onVolume = buildStackModel(config({}), 'dev').services.find((s) => s.name === 'registry')!;
    expect(onVolume.command!.join(' ')).not.toContain('--storage');
    expect(onVolume.environment.AWS_SHARED_CREDENTIALS_FILE).toBeUndefined();
    // V8's heap: on S3, whose streams allocate a Buffer per chunk, room above the old generation's live size
    expect(registry.command!.slice(0, 4)).toEqual([
      'node',
      '--min-semi-space-size=4',
      '--max-semi-space-size=4',
      '--heap-growing-percent=300',
    ]);
    expect(registry.command![4]).toBe('/opt/regctl/bin/regctl.js');
    expect(onVolume.command!.slice(0, 3)).toEqual(['node', '--max-semi-space-size=1', '--heap-growing-percent=30']);
  });

  test('swarm: the keys are a secret; with PostgreSQL the registry may run on any node, without it on a manager', () => {
    const contents: SwarmContents = {
      htpasswd: 'admin:$2y$10$abcdefghijklmnopqrstuv\n',
      access: 'users: {}\n',
      traefik: 'entryPoints: {}\n',
      metadataPassword: 'pw\n',
      s3Credentials: `[default]\naws_access_key_id = ${KEY_ID}\naws_secret_access_key = ${SECRET}\n`,
    };
    const swarm = { mode: 'swarm', replicas: 3 };
    const shared = buildSwarmModel(config({ storage: s3, deploy: swarm, metadata: PG }), 'dev', contents);
    const registry = shared.services.find((s) => s.key === 'registry')!;
    expect(registry.secrets).toContainEqual({ source: 's3-credentials', target: '/auth/s3-credentials' });
    expect(shared.secrets.find((s) => s.key === 's3-credentials')?.file).toBe('auth/s3-credentials');
    expect(registry.constraints).toEqual([]);
    const embedded = buildSwarmModel(config({ storage: s3, deploy: { mode: 'swarm' } }), 'dev', contents);
    expect(embedded.services.find((s) => s.key === 'registry')!.constraints).toEqual(['node.role == manager']);
    const { s3Credentials: _, ...without } = contents;
    expect(() => buildSwarmModel(config({ storage: s3 }), 'dev', without)).toThrow(/auth\/s3-credentials/);
  });
});

describe('regctl init --storage s3://', () => {
  const t = initInTemp('regctl-s3-init-');
  beforeEach(t.fresh);
  afterEach(t.cleanup);
  const { dir, init } = t;
  const flags = ['--storage', BUCKET, '--s3-endpoint', 'http://s3.internal:7070', '--s3-path-style'];

  test('writes the keys to auth/s3-credentials (0600, git-ignored) and nowhere else; a second init keeps them', async () => {
    const run = await init(flags, { AWS_ACCESS_KEY_ID: KEY_ID, AWS_SECRET_ACCESS_KEY: SECRET });
    expect(run.code, run.stderr).toBe(0);
    const keys = join(dir(), 'auth/s3-credentials');
    expect(await readFile(keys, 'utf8')).toBe(
      `[default]\naws_access_key_id = ${KEY_ID}\naws_secret_access_key = ${SECRET}\n`,
    );
    expect((await stat(keys)).mode & 0o777).toBe(0o600);
    expect((await readFile(join(dir(), '.gitignore'), 'utf8')).split('\n')).toContain('auth/s3-credentials');
    expect(parse(await readFile(join(dir(), 'regctl.yaml'), 'utf8'))).toMatchObject({
      storage: { url: BUCKET, endpoint: 'http://s3.internal:7070', pathStyle: true },
    });
    // The secret is in no other file of the stack, nor in what init printed.
    const files = (await readdir(dir(), { recursive: true, withFileTypes: true })).filter((f) => f.isFile());
    for (const f of files) {
      const path = join(f.parentPath, f.name);
      if (path === keys) continue;
      expect(await readFile(path, 'utf8'), path).not.toContain(SECRET);
    }
    expect(run.stdout + run.stderr).not.toContain(SECRET);

    const again = await init(['--force', ...flags], { AWS_ACCESS_KEY_ID: 'AKIAOTHER', AWS_SECRET_ACCESS_KEY: 'x' });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout + again.stderr).toMatch(/AWS_ACCESS_KEY_ID ignored: auth\/s3-credentials is kept/);
    expect(await readFile(keys, 'utf8')).toContain(SECRET);
  });

  test('without the keys in the environment: one line naming the variables, exit non-zero, nothing written', async () => {
    const run = await init(flags, { AWS_ACCESS_KEY_ID: KEY_ID });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/--storage s3:\/\/registry-bucket\/prod needs the bucket's S3 keys/);
    expect(run.stderr).toMatch(/AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
    await expect(stat(dir())).rejects.toThrow();
    const bad = await init(['--storage', 'http://bucket'], {
      AWS_ACCESS_KEY_ID: KEY_ID,
      AWS_SECRET_ACCESS_KEY: SECRET,
    });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--storage: must be s3:\/\/BUCKET\[\/PREFIX\]/);
  });
});
