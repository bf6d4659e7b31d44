import { mkdtemp, readFile, readdir, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import {
  applyPlan,
  atomicWrite,
  conflicts,
  planStack,
  sha256,
  STATE_FILE,
  type StackFile,
} from '../../../src/stack/write.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'regctl-write-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const modeOf = async (path: string) => (await stat(path)).mode & 0o777;

const files = (version: string): StackFile[] => [
  { path: 'a.yaml', content: `a: ${version}\n`, mode: 0o644, secret: false },
  { path: 'sub/b.yaml', content: `b: ${version}\n`, mode: 0o644, secret: false },
  { path: '.env', content: `P=${version}\n`, mode: 0o600, secret: true },
  { path: 'auth/htpasswd', content: `admin:${version}\n`, mode: 0o600, secret: true, keepExisting: true },
];

describe('atomicWrite', () => {
  test('writes content with the exact mode, whatever the umask, and leaves no temp file', async () => {
    const old = process.umask(0o077);
    try {
      await atomicWrite(join(dir, 'x/y/z.txt'), 'hello', 0o644);
    } finally {
      process.umask(old);
    }
    expect(await readFile(join(dir, 'x/y/z.txt'), 'utf8')).toBe('hello');
    expect(await modeOf(join(dir, 'x/y/z.txt'))).toBe(0o644);
    expect(await readdir(join(dir, 'x/y'))).toEqual(['z.txt']);
  });

  test('replacing a file changes its mode too (a secret never stays readable)', async () => {
    const path = join(dir, 's');
    await writeFile(path, 'old', { mode: 0o666 });
    await atomicWrite(path, 'secret', 0o600);
    expect(await modeOf(path)).toBe(0o600);
    expect(await readFile(path, 'utf8')).toBe('secret');
  });

  test('a failed write leaves the old file and no temp file', async () => {
    const path = join(dir, 'keep.txt');
    await writeFile(path, 'old');
    await mkdir(join(dir, 'blocked'));
    await expect(atomicWrite(join(dir, 'blocked'), 'x')).rejects.toThrow();
    expect(await readFile(path, 'utf8')).toBe('old');
    expect((await readdir(dir)).sort()).toEqual(['blocked', 'keep.txt']);
  });
});

describe('plan and apply', () => {
  test('first render: everything is created, secrets 0600, hashes recorded', async () => {
    const plan = await planStack(dir, files('1'));
    expect(plan.map((f) => [f.path, f.status])).toEqual([
      ['a.yaml', 'create'],
      ['sub/b.yaml', 'create'],
      ['.env', 'create'],
      ['auth/htpasswd', 'create'],
    ]);
    const result = await applyPlan(dir, plan);
    expect(result.written).toEqual(['a.yaml', 'sub/b.yaml', '.env', 'auth/htpasswd']);
    expect(await modeOf(join(dir, '.env'))).toBe(0o600);
    expect(await modeOf(join(dir, 'auth/htpasswd'))).toBe(0o600);
    expect(await modeOf(join(dir, 'a.yaml'))).toBe(0o644);
    const state = JSON.parse(await readFile(join(dir, STATE_FILE), 'utf8')) as Record<string, string>;
    expect(state['a.yaml']).toBe(sha256('a: 1\n'));
  });

  test('same render again: unchanged, and the kept secret stays', async () => {
    await applyPlan(dir, await planStack(dir, files('1')));
    const plan = await planStack(dir, files('1'));
    expect(plan.map((f) => f.status)).toEqual(['unchanged', 'unchanged', 'unchanged', 'keep']);
    expect(conflicts(plan)).toEqual([]);
  });

  test('new render: files regctl wrote are "change", hand-edited ones "edited", secrets kept; nothing written without force', async () => {
    await applyPlan(dir, await planStack(dir, files('1')));
    await writeFile(join(dir, 'sub/b.yaml'), 'b: edited by hand\n');
    const plan = await planStack(dir, files('2'));
    expect(plan.map((f) => [f.path, f.status])).toEqual([
      ['a.yaml', 'change'],
      ['sub/b.yaml', 'edited'],
      ['.env', 'change'],
      ['auth/htpasswd', 'keep'],
    ]);
    expect(conflicts(plan).map((f) => f.path)).toEqual(['a.yaml', 'sub/b.yaml', '.env']);
    const result = await applyPlan(dir, plan);
    expect(result.written).toEqual([]);
    expect(await readFile(join(dir, 'a.yaml'), 'utf8')).toBe('a: 1\n');
    expect(await readFile(join(dir, 'sub/b.yaml'), 'utf8')).toBe('b: edited by hand\n');
  });

  test('force: rewrites, saves hand edits as .bak, never touches the kept secret', async () => {
    await applyPlan(dir, await planStack(dir, files('1')));
    await writeFile(join(dir, 'sub/b.yaml'), 'b: edited by hand\n');
    const result = await applyPlan(dir, await planStack(dir, files('2')), { force: true });
    expect(result.written).toEqual(['a.yaml', 'sub/b.yaml', '.env']);
    expect(result.backups).toEqual(['sub/b.yaml.bak']);
    expect(await readFile(join(dir, 'sub/b.yaml.bak'), 'utf8')).toBe('b: edited by hand\n');
    expect(await readFile(join(dir, 'sub/b.yaml'), 'utf8')).toBe('b: 2\n');
    expect(await readFile(join(dir, 'auth/htpasswd'), 'utf8')).toBe('admin:1\n');
    expect(await modeOf(join(dir, '.env'))).toBe(0o600);
    expect((await planStack(dir, files('2'))).map((f) => f.status)).toEqual([
      'unchanged',
      'unchanged',
      'unchanged',
      'keep',
    ]);
  });

  test('a loosened secret gets its mode back on re-run', async () => {
    await applyPlan(dir, await planStack(dir, files('1')));
    const { chmod } = await import('node:fs/promises');
    await chmod(join(dir, 'auth/htpasswd'), 0o644);
    await applyPlan(dir, await planStack(dir, files('1')));
    expect(await modeOf(join(dir, 'auth/htpasswd'))).toBe(0o600);
  });

  test('without a state file, a differing file counts as edited', async () => {
    await writeFile(join(dir, 'a.yaml'), 'a: mine\n');
    expect((await planStack(dir, files('1')))[0]!.status).toBe('edited');
    await mkdir(join(dir, '.regctl'), { recursive: true });
    await writeFile(join(dir, STATE_FILE), 'not json');
    expect((await planStack(dir, files('1')))[0]!.status).toBe('edited');
  });
});
