/** The day-two commands through `main()`: flags, exit codes, JSON on stdout only, human lines, secrets shown where intended. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnv } from '../../../src/stack/env.js';
import { runCli } from '../stack/cli-harness.js';
import { pushImage, startFixture, type Fixture } from '../../helpers/day-two-fixture.js';

describe('day-two commands through the CLI', () => {
  let fx: Fixture;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    fx = await startFixture();
    env = { PATH: process.env.PATH, ...fx.env };
    await pushImage(fx.url, 'app', 'v1', [Buffer.from('cli-layer')], fx.admin);
  });
  afterAll(async () => fx.close());

  it('users add / list / set / remove, human and --json', async () => {
    const add = await runCli(['users', 'add', 'ci', '--pull', '**', '--push', 'apps/**', '--dir', fx.stackDir], {
      cwd: fx.root,
      env,
    });
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toContain('User ci added: pull on **; push on apps/**');
    expect(add.stdout).toMatch(/Password \(shown once, not stored anywhere readable\): [A-Za-z0-9_-]{32}/);
    const list = await runCli(['users', 'list', '--dir', fx.stackDir], { cwd: fx.root, env });
    expect(list.stdout.split('\n').filter(Boolean)).toEqual([
      'admin  admin (everything)  (used by regctl (.env))',
      'ci     pull on **; push on apps/**',
    ]);
    const set = await runCli(['users', 'set', 'ci', '--admin', '--dir', fx.stackDir, '--json'], { cwd: fx.root, env });
    expect(JSON.parse(set.stdout)).toMatchObject({
      user: 'ci',
      permissions: { admin: true, rules: [] },
      reloaded: true,
    });
    const dup = await runCli(['users', 'add', 'ci', '--pull', '**', '--dir', fx.stackDir], { cwd: fx.root, env });
    expect(dup.code).toBe(6);
    expect(dup.stderr).toContain('user ci already exists');
    expect(dup.stderr).toContain('hint:');
    const given = await runCli(
      ['users', 'add', 'bot', '--pull', 'app', '--password-stdin', '--dir', fx.stackDir, '--json'],
      { cwd: fx.root, env, stdin: 'bot-password-12345\n' },
    );
    expect(JSON.parse(given.stdout)).toMatchObject({ user: 'bot', generated: false });
    expect(given.stdout).not.toContain('bot-password-12345');
    const rm = await runCli(['users', 'remove', 'bot', '--dir', fx.stackDir], { cwd: fx.root, env });
    expect(rm.code).toBe(0);
    expect(rm.stdout).toContain('User bot removed');
  });

  it('rotate-credentials: no terminal → the password only in .env, the docker login line printed', async () => {
    const r = await runCli(['rotate-credentials', '--dir', fx.stackDir, '--grace', '1m'], { cwd: fx.root, env });
    expect(r.code, r.stderr).toBe(0);
    const password = parseEnv(await readFile(join(fx.stackDir, '.env'), 'utf8')).REGISTRY_PASSWORD as string;
    expect(password).not.toBe(fx.admin.password);
    expect(r.stdout + r.stderr).not.toContain(password);
    expect(r.stdout).toContain('The old password works until');
    expect(r.stdout).toMatch(
      /Log in: grep '\^REGISTRY_PASSWORD=' .*\.env \| cut -d= -f2- \| docker login 127\.0\.0\.1:\d+ -u admin --password-stdin/,
    );
    fx.admin.password = password;
    const bad = await runCli(['rotate-credentials', '--dir', fx.stackDir, '--grace', 'ten minutes'], {
      cwd: fx.root,
      env,
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('is not a duration');
    const other = await runCli(['rotate-credentials', '--dir', fx.stackDir, '--user', 'ci'], { cwd: fx.root, env });
    expect(other.code).toBe(2);
    expect(other.stderr).toContain('would be shown nowhere');
  });

  it('gc --dry-run human report and --json', async () => {
    const human = await runCli(['gc', '--dir', fx.stackDir, '--dry-run'], { cwd: fx.root, env });
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/Would delete 0 blobs \(0 B\); kept \d+/);
    const json = await runCli(['gc', '--dir', fx.stackDir, '--dry-run', '--json', '--grace', '0'], {
      cwd: fx.root,
      env,
    });
    const doc = JSON.parse(json.stdout) as { dryRun: boolean; kept: { count: number } };
    expect(doc.dryRun).toBe(true);
    expect(doc.kept.count).toBeGreaterThan(0);
  });

  it('backup --json, then restore --data and its refusals with exit codes', async () => {
    const b = await runCli(['backup', '--dir', fx.stackDir, '--out', 'b.tar', '--json'], { cwd: fx.root, env });
    expect(b.code, b.stderr).toBe(0);
    const doc = JSON.parse(b.stdout) as { file: string; repositories: number };
    expect(doc.file).toBe(join(fx.root, 'b.tar'));
    expect(doc.repositories).toBe(1);
    const r = await runCli(['restore', 'b.tar', '--data', 'restored'], { cwd: fx.root, env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Restored backup \S+ \(\d+ files/);
    const again = await runCli(['restore', 'b.tar', '--data', 'restored'], { cwd: fx.root, env });
    expect(again.code).toBe(6);
    expect(again.stderr).toContain('--force');
    const missing = await runCli(['restore', 'nope.tar', '--data', 'elsewhere'], { cwd: fx.root, env });
    expect(missing.code).toBe(12);
    expect(missing.stderr).toContain('nope.tar is not a file');
    const lines = await runCli(['restore', 'b.tar', '--data', 'restored', '--force', '--json-lines'], {
      cwd: fx.root,
      env,
    });
    const events = lines.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { event: string });
    expect(events.at(-1)?.event).toBe('done');
  });
});
