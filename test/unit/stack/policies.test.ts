import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { parseStackConfig, type StackConfig } from '../../../src/config/schema.js';
import { parsePolicies } from '../../../src/common/policies.js';
import { buildStackModel } from '../../../src/stack/build-model.js';
import { renderStack } from '../../../src/stack/render.js';
import { buildSwarmModel } from '../../../src/stack/swarm-model.js';

const POLICIES = {
  immutableTags: [{ repos: 'apps/**', tags: 'v*' }],
  retention: { schedule: '24h', rules: [{ repos: 'ci/**', keepLast: 10 }] },
};

function config(input: Record<string, unknown> = {}): StackConfig {
  const result = parseStackConfig({ version: 1, ...input });
  if (!result.config) throw new Error(JSON.stringify(result.problems));
  return result.config;
}

describe('policies in regctl.yaml', () => {
  test('each mistake is one problem at its field', () => {
    const result = parseStackConfig({
      version: 1,
      policies: { immutableTags: [{ repos: 'a', tags: '' }], retention: { rules: [{ repos: 'b', keepLast: 'x' }] } },
    });
    expect(result.problems?.map((p) => `${p.path}: ${p.message}`)).toEqual([
      'policies.immutableTags.0.tags: must be a tag pattern: a glob such as "v*", or a regular expression between slashes',
      'policies.retention.rules.0.keepLast: "x" is not a whole number of tags (0 or more)',
    ]);
    expect(parseStackConfig({ version: 1, policies: 3 }).problems?.[0]?.path).toBe('policies');
  });

  test('rendered to auth/registry.yaml, which the registry reads with --config', () => {
    const cfg = config({ policies: POLICIES });
    const files = renderStack(cfg, { packageDir: '/pkg' });
    const file = files.find((f) => f.path === 'auth/registry.yaml');
    expect(file?.mode.toString(8)).toBe('644');
    const doc = parse(file!.content) as { policies: unknown };
    expect(doc).toEqual({ policies: POLICIES });
    expect(parsePolicies(doc.policies).problems).toEqual([]);
    const regctlYaml = parse(files.find((f) => f.path === 'regctl.yaml')!.content) as { policies: unknown };
    expect(regctlYaml.policies).toEqual(POLICIES);
    const registry = buildStackModel(cfg, 'dev').services.find((s) => s.name === 'registry')!;
    expect(registry.command?.slice(-2)).toEqual(['--config', '/auth/registry.yaml']);
    expect(registry.mounts).toContainEqual({ type: 'bind', source: './auth', target: '/auth', readOnly: true });
  });

  test('a stack without policies renders no file and no --config', () => {
    const cfg = config();
    expect(renderStack(cfg, { packageDir: '/pkg' }).some((f) => f.path === 'auth/registry.yaml')).toBe(false);
    const registry = buildStackModel(cfg, 'dev').services.find((s) => s.name === 'registry')!;
    expect(registry.command).not.toContain('--config');
  });

  test('a swarm stack carries the file as a config', () => {
    const cfg = config({ deploy: { mode: 'swarm', replicas: 1 }, policies: POLICIES });
    const model = buildSwarmModel(cfg, 'dev', { htpasswd: 'h', access: 'a', traefik: 't' });
    expect(model.configs.map((c) => c.key)).toContain('registry-config');
    const registry = model.services.find((s) => s.key === 'registry')!;
    expect(registry.configs).toContainEqual({ source: 'registry-config', target: '/auth/registry.yaml' });
  });
});
