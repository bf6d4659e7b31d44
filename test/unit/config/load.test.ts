import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { loadStackConfig } from '../../../src/config/load.js';
import { exitCodeOf } from '../../../src/cli/errors.js';
import { RegctlError } from '../../../src/common/errors.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'regctl-load-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function failure(text: string | undefined): Promise<RegctlError> {
  if (text !== undefined) await writeFile(join(dir, 'regctl.yaml'), text);
  try {
    await loadStackConfig(dir);
  } catch (err) {
    expect(err).toBeInstanceOf(RegctlError);
    return err as RegctlError;
  }
  throw new Error('expected loadStackConfig to throw');
}

describe('loadStackConfig', () => {
  test('reads and validates regctl.yaml', async () => {
    await writeFile(join(dir, 'regctl.yaml'), 'version: 1\nhost: example.com\nports:\n  http: 8080\n');
    const config = await loadStackConfig(dir);
    expect(config.host).toBe('example.com');
    expect(config.ports).toEqual({
      http: 8080,
      https: 443,
      registry: 5000,
      registryBind: '127.0.0.1',
      dashboard: 8080,
    });
  });

  test('no file: CONFIG_MISSING with a hint to run init', async () => {
    const err = await failure(undefined);
    expect(err.code).toBe('CONFIG_MISSING');
    expect(exitCodeOf(err)).toBe(3);
    expect(err.message).toBe(`no regctl.yaml in ${dir}`);
    expect(err.hint).toContain('regctl init');
  });

  test('an invalid field: one line naming the field and the problem', async () => {
    const err = await failure('version: 1\nports:\n  http: 99999\n');
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toBe(`${join(dir, 'regctl.yaml')}: ports.http: ports.http must be 1 to 65535`);
    expect(err.message).not.toContain('\n');
    expect(err.hint).toContain('65535');
  });

  test('several problems: the first in the message, the others as details', async () => {
    const err = await failure('version: 1\nhost: Bad\nacme:\n  email: nope\n');
    expect(err.message).toContain('host: host name "Bad" must be lower case (and 1 more problem)');
    expect(err.details).toEqual(['acme.email: must be an email address']);
  });

  test('broken YAML: the position and a hint', async () => {
    const err = await failure('version: 1\nhost: [unclosed\n');
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toMatch(/regctl\.yaml:\d+:\d+: not valid YAML: /);
    expect(err.message).not.toContain('\n');
    expect(err.hint).toContain('YAML');
  });

  test('a document that is not a mapping', async () => {
    const err = await failure('- a\n- b\n');
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain('expected a mapping');
  });

  test('an empty file is missing version', async () => {
    const err = await failure('');
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain('version: version must be 1');
  });
});
