/**
 * Robot accounts end to end in process, over a real socket: `regctl robots add|list|remove` (ops/robots.ts) on a
 * token stack's files, served by a registry reading them (auth/robots.ts). No access file rule covers a robot:
 * the stack's admin is admin, and a robot still gets exactly its patterns.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addRobot, listRobots, removeRobot, ROBOTS_FILE } from '../../../src/ops/robots.js';
import { basicAuth } from '../../helpers/auth.js';
import { captureOutput, startFixture, type Fixture } from '../../helpers/day-two-fixture.js';

let fx: Fixture;
let keyDir: string;

beforeAll(async () => {
  keyDir = await mkdtemp(join(tmpdir(), 'regctl-robots-key-'));
  fx = await startFixture(
    { authMode: 'token', tokenKey: join(keyDir, 'token-key.pem') },
    { registry: { auth: 'token' } },
  );
});
afterAll(async () => {
  await fx.close();
  await rm(keyDir, { recursive: true, force: true });
});

async function token(
  user: string,
  password: string,
  scope: string,
  extra: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${fx.url}/auth/token`, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'password', service: 'regctl', username: user, password, scope, ...extra }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const startUpload = async (bearer: string, repo: string) =>
  fetch(`${fx.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { Authorization: `Bearer ${bearer}` } });

const add = (name: string, expires = '90d', push = ['robots/ok/**']) =>
  addRobot({
    dir: fx.stackDir,
    name,
    patterns: { pull: push, push, delete: [] },
    expires,
    out: captureOutput(),
    env: fx.env,
  });

describe('robot accounts', () => {
  it('add stores only a bcrypt hash in a 0600 file and the robot pushes inside its pattern only', async () => {
    const { robot, secret, reloaded } = await add('ci-one');
    expect(reloaded).toBe(true);
    expect(robot.user).toBe('robot$ci-one');
    const text = await readFile(join(fx.stackDir, ROBOTS_FILE), 'utf8');
    expect((await stat(join(fx.stackDir, ROBOTS_FILE))).mode & 0o777).toBe(0o600);
    expect(text).not.toContain(secret);
    expect((parseYaml(text) as { robots: Record<string, { secret: string }> }).robots['ci-one']?.secret).toMatch(
      /^\$2[aby]\$/,
    );
    const inside = await token(robot.user, secret, 'repository:robots/ok/app:pull,push');
    expect(inside.status).toBe(200);
    expect(inside.body.scope).toBe('repository:robots/ok/app:pull,push');
    expect((await startUpload(inside.body.token as string, 'robots/ok/app')).status).toBe(202);
    // Outside its pattern: nothing granted, and the push itself is DENIED though the access file has no rule for it.
    const outside = await token(robot.user, secret, 'repository:other/app:pull,push');
    expect(outside.body.scope).toBe('');
    const denied = await startUpload(outside.body.token as string, 'other/app');
    expect(denied.status).toBe(403);
    expect(((await denied.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe('DENIED');
    // The admin API is no robot's: a robot is never admin.
    expect((await token(robot.user, 'wrong', 'repository:robots/ok/app:pull')).status).toBe(401);
  });

  it("a robot's secret is refused as Basic credentials on /v2/ and on the admin API", async () => {
    const { robot, secret } = await add('basic-try');
    for (const path of ['/v2/', '/v2/robots/ok/app/tags/list', '/admin/v1/whoami']) {
      const res = await fetch(`${fx.url}${path}`, { headers: { Authorization: basicAuth(robot.user, secret) } });
      expect(res.status, path).toBe(401);
    }
    // The same secret at the token endpoint (GET with Basic, as docker does) works.
    const get = await fetch(`${fx.url}/auth/token?service=regctl&scope=repository:robots/ok/app:pull`, {
      headers: { Authorization: basicAuth(robot.user, secret) },
    });
    expect(get.status).toBe(200);
  });

  it('an expired robot and a removed robot are refused at the token endpoint with the reason', async () => {
    const expired = await add('short', '1s');
    await new Promise((r) => setTimeout(r, 1100));
    const e = await token(expired.robot.user, expired.secret, 'repository:robots/ok/app:pull');
    expect(e.status).toBe(401);
    expect(JSON.stringify(e.body)).toMatch(/UNAUTHORIZED.*expired/);

    const removed = await add('gone');
    const before = await token(removed.robot.user, removed.secret, 'repository:robots/ok/app:pull,push', {
      access_type: 'offline',
    });
    expect(before.status).toBe(200);
    const refresh = async () =>
      (
        await fetch(`${fx.url}/auth/token`, {
          method: 'POST',
          body: new URLSearchParams({
            grant_type: 'refresh_token',
            refresh_token: before.body.refresh_token as string,
          }),
        })
      ).status;
    expect(await refresh()).toBe(200);
    expect((await removeRobot({ dir: fx.stackDir, name: 'gone', out: captureOutput(), env: fx.env })).reloaded).toBe(
      true,
    );
    const r = await token(removed.robot.user, removed.secret, 'repository:robots/ok/app:pull');
    expect(r.status).toBe(401);
    expect(JSON.stringify(r.body)).toMatch(/UNAUTHORIZED.*revoked/);
    // Its refresh token (what docker login keeps) is refused too, and a token issued before stops working at once.
    expect(await refresh()).toBe(401);
    expect((await startUpload(before.body.token as string, 'robots/ok/app')).status).toBe(403);
  });

  it('list shows patterns, expiry, revocation and last use, which survives a restart', async () => {
    const { robot, secret } = await add('lister');
    let list = await listRobots({ dir: fx.stackDir, out: captureOutput(), env: fx.env });
    expect(list.find((r) => r.name === 'lister')?.lastUse).toBeNull();
    expect((await token(robot.user, secret, 'repository:robots/ok/app:pull')).status).toBe(200);
    list = await listRobots({ dir: fx.stackDir, out: captureOutput(), env: fx.env });
    const used = list.find((r) => r.name === 'lister');
    expect(used).toMatchObject({ push: ['robots/ok/**'], revoked: null });
    expect(Date.now() - Date.parse(used?.lastUse ?? '')).toBeLessThan(60_000);
    expect(list.find((r) => r.name === 'gone')?.revoked).toMatch(/^\d{4}-/);
    await fx.restart();
    list = await listRobots({ dir: fx.stackDir, out: captureOutput(), env: fx.env });
    expect(list.find((r) => r.name === 'lister')?.lastUse).toBe(used?.lastUse);
  });

  it('refuses bad names, no patterns, bad durations and existing names, and basic-auth stacks', async () => {
    await expect(add('Bad$Name')).rejects.toThrow(/is not a robot name/);
    await expect(add('nopat', '90d', [])).rejects.toThrow(/without patterns/);
    await expect(add('dur', 'ninety')).rejects.toThrow(/--expires/);
    await expect(add('ci-one')).rejects.toThrow(/already exists/);
    const basic = await startFixture();
    try {
      await expect(
        addRobot({
          dir: basic.stackDir,
          name: 'x',
          patterns: { pull: ['a'], push: [], delete: [] },
          expires: '1d',
          out: captureOutput(),
          env: basic.env,
        }),
      ).rejects.toThrow(/need token auth, and this stack uses basic auth/);
    } finally {
      await basic.close();
    }
  });

  it('a robots file with a mistake is refused by reload and the robots in force stay', async () => {
    const { robot, secret } = await add('stays');
    const path = join(fx.stackDir, ROBOTS_FILE);
    const good = await readFile(path, 'utf8');
    await writeFile(path, good.replace(/secret: .*/m, 'secret: plain-text'), { mode: 0o600 });
    const res = await fetch(`${fx.url}/admin/v1/reload`, {
      method: 'POST',
      headers: { Authorization: basicAuth(fx.admin.username, fx.admin.password) },
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/bcrypt/);
    expect((await token(robot.user, secret, 'repository:robots/ok/app:pull')).status).toBe(200);
    await writeFile(path, good, { mode: 0o600 });
  });
});
