/**
 * `regctl robots add NAME --oidc-issuer URL --oidc-audience AUD --oidc-claim k=v` (ops/robots.ts) on a token
 * stack's files, served by a registry reading them, with a local issuer (test/helpers/oidc-issuer.ts) on loopback:
 * the robot has no secret, its pipeline's ID token signs it in, `list` shows the binding, and every mistake in the
 * options is one usage error that writes nothing.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addRobot, listRobots, ROBOTS_FILE } from '../../../src/ops/robots.js';
import { readIfExists } from '../../../src/common/fs.js';
import { captureOutput, startFixture, type Fixture } from '../../helpers/day-two-fixture.js';
import { LocalIssuer } from '../../helpers/oidc-issuer.js';
import { runCli } from '../stack/cli-harness.js';

let fx: Fixture;
let keyDir: string;
let issuer: LocalIssuer;

beforeAll(async () => {
  keyDir = await mkdtemp(join(tmpdir(), 'regctl-robots-oidc-'));
  issuer = new LocalIssuer();
  await issuer.start();
  fx = await startFixture(
    { authMode: 'token', tokenKey: join(keyDir, 'token-key.pem') },
    { registry: { auth: 'token' } },
  );
});
afterAll(async () => {
  await fx.close();
  await issuer.stop();
  await rm(keyDir, { recursive: true, force: true });
});

const add = (name: string, oidc: { issuer: string; audience?: string; claims: string[] }) =>
  addRobot({
    dir: fx.stackDir,
    name,
    patterns: { pull: ['apps/**'], push: ['apps/**'], delete: [] },
    expires: '90d',
    oidc,
    out: captureOutput(),
    env: fx.env,
  });

const login = async (user: string, password: string) =>
  (
    await fetch(`${fx.url}/auth/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'password',
        service: 'regctl',
        username: user,
        password,
        scope: 'repository:apps/app:pull,push',
      }),
    })
  ).status;

describe('OIDC robots from the CLI', () => {
  it('adds a robot with a binding and no secret; its pipeline token signs in, another pipeline does not', async () => {
    const claims = ['repository=org/app', 'ref=refs/heads/main'];
    const r = await add('ci-oidc', { issuer: issuer.url, audience: 'regctl-test', claims });
    expect(r.secret).toBeUndefined();
    expect(r.reloaded).toBe(true);
    const file = parseYaml(await readFile(join(fx.stackDir, ROBOTS_FILE), 'utf8')) as {
      robots: Record<string, Record<string, unknown>>;
    };
    expect(file.robots['ci-oidc']?.secret).toBeUndefined();
    expect(file.robots['ci-oidc']?.oidc).toEqual({
      issuer: issuer.url,
      audience: 'regctl-test',
      claims: { repository: 'org/app', ref: 'refs/heads/main' },
    });
    const mine = await issuer.token({ claims: { repository: 'org/app', ref: 'refs/heads/main' } });
    expect(await login('robot$ci-oidc', mine)).toBe(200);
    const theirs = await issuer.token({ claims: { repository: 'org/other', ref: 'refs/heads/main' } });
    expect(await login('robot$ci-oidc', theirs)).toBe(401);
    const listed = (await listRobots({ dir: fx.stackDir, out: captureOutput(), env: fx.env })).find(
      (x) => x.name === 'ci-oidc',
    );
    expect(listed?.oidc?.claims).toEqual({ repository: 'org/app', ref: 'refs/heads/main' });
    expect(Date.now() - Date.parse(listed?.lastUse ?? '')).toBeLessThan(60_000);
  });

  it('refuses http issuers, a missing audience or issuer, no claim and a malformed claim, writing nothing', async () => {
    const before = await readIfExists(join(fx.stackDir, ROBOTS_FILE));
    const ok = { issuer: issuer.url, audience: 'a', claims: ['repository=org/app'] };
    await expect(add('x1', { ...ok, issuer: 'http://gitlab.example.com' })).rejects.toThrow(/must be https/);
    await expect(add('x2', { ...ok, audience: undefined })).rejects.toThrow(/needs --oidc-audience/);
    await expect(add('x3', { ...ok, issuer: '' })).rejects.toThrow(/need --oidc-issuer/);
    await expect(add('x4', { ...ok, claims: [] })).rejects.toThrow(/at least one --oidc-claim/);
    await expect(add('x5', { ...ok, claims: ['repository'] })).rejects.toThrow(/is not NAME=VALUE/);
    await expect(add('x6', { ...ok, claims: ['=org/app'] })).rejects.toThrow(/is not NAME=VALUE/);
    expect(await readIfExists(join(fx.stackDir, ROBOTS_FILE))).toBe(before);
  });

  it('through the CLI: add prints the binding and no secret, list shows it, a mistake is one line', async () => {
    const env = { PATH: process.env.PATH, ...fx.env };
    const args = ['robots', 'add', 'gl-app', '--push', 'apps/**', '--dir', fx.stackDir, '--oidc-issuer', issuer.url];
    const add = await runCli([...args, '--oidc-audience', 'aud', '--oidc-claim', 'project_path=group/app'], {
      cwd: fx.root,
      env,
    });
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toContain(
      `Robot robot$gl-app added: push apps/**; OIDC ${issuer.url} aud aud project_path=group/app`,
    );
    expect(add.stdout).not.toContain('Secret');
    expect(add.stdout).toContain(`echo "$OIDC_ID_TOKEN" | docker login -u 'robot$gl-app' --password-stdin`);
    const list = await runCli(['robots', 'list', '--dir', fx.stackDir], { cwd: fx.root, env });
    expect(list.stdout).toMatch(
      /robot\$gl-app {2}push apps\/\*\*; OIDC \S+ aud aud project_path=group\/app {2}created/,
    );
    const bad = await runCli([...args.slice(0, -2), '--oidc-issuer', 'http://gitlab.example.com'], {
      cwd: fx.root,
      env,
    });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.split('\n')[0]).toContain('--oidc-issuer "http://gitlab.example.com" must be https');
  });
});
