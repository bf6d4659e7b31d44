/**
 * `regctl robots` and `regctl ci` through the CLI, against a registry serving a token stack's files (and one basic
 * stack, where robots do not exist and `ci` keeps creating an htpasswd user).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth } from '../../helpers/auth.js';
import { startFixture, type Fixture } from '../../helpers/day-two-fixture.js';
import { runCli } from '../stack/cli-harness.js';

let fx: Fixture;
let basic: Fixture;
let keyDir: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  keyDir = await mkdtemp(join(tmpdir(), 'regctl-robots-cli-'));
  fx = await startFixture({ authMode: 'token', tokenKey: join(keyDir, 'key.pem') }, { registry: { auth: 'token' } });
  basic = await startFixture();
  env = { PATH: process.env.PATH, ...fx.env };
});
afterAll(async () => {
  await fx.close();
  await basic.close();
  await rm(keyDir, { recursive: true, force: true });
});

const tokenStatus = async (user: string, secret: string) =>
  (
    await fetch(`${fx.url}/auth/token?service=regctl&scope=repository:apps/api:push`, {
      headers: { Authorization: basicAuth(user, secret) },
    })
  ).status;

describe('regctl robots', () => {
  it('add (--json and human), list, remove', async () => {
    const add = await runCli(['robots', 'add', 'deploy', '--pull', 'apps/**', '--expires', '30d', '--json'], {
      cwd: fx.stackDir,
      env,
    });
    expect(add.code, add.stderr).toBe(0);
    const doc = JSON.parse(add.stdout) as { user: string; secret: string; expires: string; reloaded: boolean };
    expect(doc).toMatchObject({ user: 'robot$deploy', reloaded: true });
    expect(Date.parse(doc.expires) - Date.now()).toBeGreaterThan(29 * 86_400_000);
    const human = await runCli(['robots', 'add', 'pusher', '--push', 'apps/**', '--dir', fx.stackDir], {
      cwd: fx.root,
      env,
    });
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain('Robot robot$pusher added: push apps/**');
    const secret = /Secret \(shown once, only its hash is stored\): (\S+)/.exec(human.stdout)?.[1] ?? '';
    expect(await tokenStatus('robot$pusher', secret)).toBe(200);

    const list = await runCli(['robots', 'list', '--dir', fx.stackDir], { cwd: fx.root, env });
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/robot\$pusher {2}push apps\/\*\* {2}created \S+, expires \S+, last used \d{4}-/);
    expect(list.stdout).toMatch(/robot\$deploy {2}pull apps\/\*\* {2}created .*never used/);

    const rm = await runCli(['robots', 'remove', 'pusher', '--dir', fx.stackDir], { cwd: fx.root, env });
    expect(rm.code, rm.stderr).toBe(0);
    expect(await tokenStatus('robot$pusher', secret)).toBe(401);
    const after = await runCli(['robots', 'list', '--json', '--dir', fx.stackDir], { cwd: fx.root, env });
    const listed = JSON.parse(after.stdout) as { name: string; revoked: string | null }[];
    expect(listed.find((r) => r.name === 'pusher')?.revoked).toMatch(/^\d{4}-/);

    const missing = await runCli(['robots', 'remove', 'nobody', '--dir', fx.stackDir], { cwd: fx.root, env });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('no robot named nobody');
  });

  it('on a basic-auth stack says in one line that robots need token auth, and writes nothing', async () => {
    const r = await runCli(['robots', 'add', 'x', '--pull', 'a', '--dir', basic.stackDir], {
      cwd: basic.root,
      env: { PATH: process.env.PATH, ...basic.env },
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr.split('\n')[0]).toContain('robot accounts need token auth, and this stack uses basic auth');
    await expect(readFile(join(basic.stackDir, 'auth/robots.yaml'))).rejects.toThrow(/ENOENT/);
  });
});

describe('regctl ci', () => {
  it('creates a push-only robot on a token stack, and no htpasswd user', async () => {
    const htpasswd = await readFile(join(fx.stackDir, 'auth/htpasswd'), 'utf8');
    const r = await runCli(['ci', 'github', '--image', 'apps/api', '--registry', 'reg.test', '--json'], {
      cwd: fx.stackDir,
      env,
    });
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { user: string; password: string; pipeline: string };
    expect(doc.user).toBe('robot$ci-apps-api');
    expect(await readFile(join(fx.stackDir, 'auth/htpasswd'), 'utf8')).toBe(htpasswd);
    expect(await tokenStatus(doc.user, doc.password)).toBe(200);
    // Pull and push on its repository only, whatever else it asks for.
    for (const [scope, granted] of [
      ['repository:apps/api:pull,push,delete', 'repository:apps/api:pull,push'],
      ['repository:other/x:pull,push', ''],
    ] as const) {
      const res = await fetch(`${fx.url}/auth/token`, {
        method: 'POST',
        body: new URLSearchParams({ grant_type: 'password', username: doc.user, password: doc.password, scope }),
      });
      expect(((await res.json()) as { scope: string }).scope).toBe(granted);
    }
    const list = await runCli(['robots', 'list', '--json', '--dir', fx.stackDir], { cwd: fx.root, env });
    expect(
      (JSON.parse(list.stdout) as { name: string; push: string[]; delete: string[] }[]).find(
        (x) => x.name === 'ci-apps-api',
      ),
    ).toMatchObject({ push: ['apps/api'], delete: [] });
  });

  it('keeps creating an htpasswd user on a basic stack', async () => {
    const r = await runCli(['ci', 'gitlab', '--image', 'apps/web', '--registry', 'reg.test', '--json'], {
      cwd: basic.stackDir,
      env: { PATH: process.env.PATH, ...basic.env },
    });
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { user: string }).user).toBe('ci-apps-web');
    expect(await readFile(join(basic.stackDir, 'auth/htpasswd'), 'utf8')).toContain('ci-apps-web:');
  });
});
