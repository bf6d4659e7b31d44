import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { parseStackConfig } from '../../../src/config/schema.js';
import { parsePolicies } from '../../../src/common/policies.js';
import { renderStack } from '../../../src/stack/render.js';

describe('quotas in regctl.yaml', () => {
  test('each mistake is one problem at its field', () => {
    const result = parseStackConfig({
      version: 1,
      policies: { quotas: [{ repos: 'ci/**', limit: '10 GiB' }, { repos: 'x', limit: 5 }, { limit: '1GiB' }] },
    });
    expect(result.problems?.map((p) => `${p.path}: ${p.message}`)).toEqual([
      'policies.quotas.1.limit: 5 is not a size above 0 (examples: 500MiB, 10GiB, 2TB; a number needs a unit)',
      'policies.quotas.2.repos: must be a repository pattern such as "apps/**", or a list of them',
    ]);
  });

  test('rendered to auth/registry.yaml as written, and read back by the registry into the same rule', () => {
    const policies = { quotas: [{ repos: 'ci/**', limit: '10GiB' }] };
    const parsed = parseStackConfig({ version: 1, policies });
    if (!parsed.config) throw new Error(JSON.stringify(parsed.problems));
    const file = renderStack(parsed.config, { packageDir: '/pkg' }).find((f) => f.path === 'auth/registry.yaml');
    const doc = parse(file!.content) as { policies: unknown };
    expect(doc).toEqual({ policies });
    const read = parsePolicies(doc.policies).policies!;
    expect(read.quotas?.map((q) => ({ id: q.id, limitBytes: q.limitBytes }))).toEqual([
      { id: 'policies.quotas[0]', limitBytes: 10 * 1024 ** 3 },
    ]);
  });
});
