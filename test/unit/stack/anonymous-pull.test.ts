/**
 * Anonymous pull in regctl.yaml (`anonymous: { pull: [patterns] }`, the access file's own key): validated at its
 * field, kept in the re-rendered regctl.yaml, rendered into auth/access.yaml (and so the swarm stack's `access`
 * config), where a registry serving that very file lets anyone pull the public repositories and nothing else. The
 * compose files are the same with or without it: the registry already mounts auth/ and re-reads the access file.
 */
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseStackConfig, type StackConfig } from '../../../src/config/schema.js';
import { COMPOSE_FILES } from '../../../src/stack/compose.js';
import { accessText, renderStack } from '../../../src/stack/render.js';
import { SWARM_COMPOSE_FILE, versionedName } from '../../../src/stack/swarm-model.js';
import { pushImage, startRegistry } from '../registry/helpers.js';

function config(input: Record<string, unknown> = {}): StackConfig {
  const result = parseStackConfig({ version: 1, ...input });
  if (!result.config) throw new Error(JSON.stringify(result.problems));
  return result.config;
}

const file = (files: { path: string; content: string }[], path: string) =>
  files.find((f) => f.path === path)?.content ?? '';

describe('anonymous pull in regctl.yaml', () => {
  it('each mistake is one problem at its field', () => {
    const problems = (anonymous: unknown) =>
      parseStackConfig({ version: 1, anonymous }).problems?.map((p) => `${p.path}: ${p.message}`);
    expect(problems({ pull: ['public/**', 'Bad Name'] })).toEqual([
      'anonymous.pull.1: must be a repository pattern such as public/** (lower case, / and * only)',
    ]);
    expect(problems({ pull: [''] })?.[0]).toMatch(/^anonymous\.pull\.0: /);
    expect(problems({ push: ['public/**'] })?.[0]).toMatch(/^anonymous/);
    expect(problems({ pull: 'public/**' })?.[0]).toMatch(/^anonymous\.pull: /);
  });

  it('renders into auth/access.yaml and back into regctl.yaml; compose files are unchanged', () => {
    const plain = renderStack(config(), { packageDir: '/pkg' });
    const pub = renderStack(config({ anonymous: { pull: ['public/**', 'docs/site'] } }), { packageDir: '/pkg' });
    expect(parse(file(pub, 'auth/access.yaml'))).toMatchObject({ anonymous: { pull: ['public/**', 'docs/site'] } });
    expect(parse(file(plain, 'auth/access.yaml'))).not.toHaveProperty('anonymous');
    expect((parse(file(pub, 'regctl.yaml')) as { anonymous: unknown }).anonymous).toEqual({
      pull: ['public/**', 'docs/site'],
    });
    for (const path of [...Object.values(COMPOSE_FILES), '.env.example']) {
      expect(file(pub, path), path).not.toBe('');
      expect(file(pub, path), path).toBe(file(plain, path));
    }
    // The re-rendered regctl.yaml parses to the same config (init --force keeps it).
    const again = parseStackConfig(parse(file(pub, 'regctl.yaml')) as Record<string, unknown>);
    expect(again.config?.anonymous).toEqual({ pull: ['public/**', 'docs/site'] });
  });

  it('a swarm stack deploys the same access file as its access config', () => {
    const cfg = config({ deploy: { mode: 'swarm', replicas: 1 }, anonymous: { pull: ['public/**'] } });
    const secrets = { username: 'admin', password: 'pw', htpasswd: 'admin:x\n' };
    const files = renderStack(cfg, { packageDir: '/pkg', secrets });
    const access = file(files, 'auth/access.yaml');
    expect(access).toBe(accessText(cfg));
    expect(access).toContain('public/**');
    // Configs are named by a digest of their content: the swarm file names the rendered access file's.
    expect(file(files, SWARM_COMPOSE_FILE)).toContain(versionedName(cfg.name, 'access', access));
  });

  it('the rendered access file makes a registry serve public repositories to anyone, and nothing else', async () => {
    const cfg = config({
      users: { admin: { admin: true } },
      anonymous: { pull: ['public/**'] },
    });
    const reg = await startRegistry({ access: accessText(cfg) });
    try {
      await pushImage(reg, 'public/web', 'v1');
      await pushImage(reg, 'private/web', 'v1');
      const anon = (path: string, method = 'GET') => reg.fetch(path, { method, auth: null });
      expect((await anon('/v2/public/web/tags/list')).status).toBe(200);
      expect((await anon('/v2/private/web/tags/list')).status).toBe(401);
      expect((await anon('/v2/public/web/blobs/uploads/', 'POST')).status).toBe(401);
    } finally {
      await reg.stop();
    }
  });
});
