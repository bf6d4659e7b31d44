/**
 * Robot accounts against `regctl serve --auth token` with real clients: a robot (`robot$NAME`, from `robots.yaml`
 * beside htpasswd) logs crane, oras and docker in and pushes inside its pattern; its push outside is DENIED through
 * the client; an expired and a revoked robot are refused at the token endpoint; its secret as Basic on `/v2/` is
 * refused; the admin API shows its last use after a pull. No access file: the user is admin, and the robots still
 * get exactly their patterns.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth } from '../../helpers/auth.js';
import { dockerAvailable, peerAvailable, peerPath } from '../../helpers/peers.js';
import { run } from '../../helpers/run.js';
import { builtCliPresent, startRegistryProcess, type RegistryProcess } from '../../helpers/serve-process.js';
import { writeOciLayout } from './oci-layout.js';

let reg: RegistryProcess;
let work: string;
const secrets: Record<string, string> = {};

/** Writes robots.yaml (one robot per name, pushing and pulling `pattern`) and makes the registry read it now. */
async function writeRobots(robots: Record<string, { pattern: string; expires?: string; revoked?: string }>) {
  const entries: Record<string, unknown> = {};
  for (const [name, r] of Object.entries(robots)) {
    secrets[name] ??= randomBytes(20).toString('base64url');
    entries[name] = {
      secret: bcrypt.hashSync(secrets[name], 5),
      pull: [r.pattern],
      push: [r.pattern],
      created: new Date().toISOString(),
      expires: r.expires ?? new Date(Date.now() + 86_400_000).toISOString(),
      ...(r.revoked ? { revoked: r.revoked } : {}),
    };
  }
  await writeFile(join(reg.authDir, 'robots.yaml'), stringify({ robots: entries }), { mode: 0o600 });
  const res = await fetch(`${reg.url}/admin/v1/reload`, {
    method: 'POST',
    headers: { authorization: basicAuth(reg.username, reg.password) },
  });
  expect(res.status).toBe(200);
}

const ROBOTS = {
  crane: { pattern: 'bots/crane/**' },
  oras: { pattern: 'bots/oras/**' },
  docker: { pattern: 'bots/docker/**' },
  old: { pattern: 'bots/**', expires: '2020-01-01T00:00:00.000Z' },
  fired: { pattern: 'bots/**', revoked: '2026-01-01T00:00:00.000Z' },
};

beforeAll(async () => {
  if (!builtCliPresent()) return;
  work = await mkdtemp(join(tmpdir(), 'regctl-robot-it-'));
  reg = await startRegistryProcess({ args: ['--auth', 'token', '--token-key', join(work, 'token-key.pem')] });
  await writeRobots(ROBOTS);
}, 60_000);
afterAll(async () => {
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const tokenStatus = async (name: string) =>
  (
    await fetch(`${reg.url}/auth/token?service=regctl&scope=repository:bots/x:pull`, {
      headers: { authorization: basicAuth(`robot$${name}`, secrets[name] as string) },
    })
  ).status;

describe.skipIf(!builtCliPresent())('robot accounts: the token endpoint and /v2/ (needs npm run build)', () => {
  it('refuses expired and revoked robots with the reason, and a robot secret as Basic on /v2/', async () => {
    for (const [name, reason] of [
      ['old', 'expired'],
      ['fired', 'revoked'],
    ] as const) {
      const res = await fetch(`${reg.url}/auth/token`, {
        method: 'POST',
        body: new URLSearchParams({ grant_type: 'password', username: `robot$${name}`, password: secrets[name] ?? '' }),
      });
      expect(res.status, name).toBe(401);
      const body = (await res.json()) as { errors: { code: string; message: string }[] };
      expect(body.errors[0]?.code).toBe('UNAUTHORIZED');
      expect(body.errors[0]?.message).toContain(`is ${reason}`);
    }
    expect(await tokenStatus('crane')).toBe(200);
    const basic = await fetch(`${reg.url}/v2/bots/crane/img/tags/list`, {
      headers: { authorization: basicAuth('robot$crane', secrets.crane as string) },
    });
    expect(basic.status).toBe(401);
    expect(((await basic.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe('UNAUTHORIZED');
  });
});

describe.skipIf(!builtCliPresent() || !peerAvailable('crane'))('robot accounts: crane', () => {
  it('pushes inside its pattern, is DENIED outside, and its last use shows after a pull', async () => {
    const env = { DOCKER_CONFIG: join(work, 'crane-config') };
    const crane = (args: string[]) => run(peerPath('crane'), [...args, '--insecure'], { env });
    await run(peerPath('crane'), ['auth', 'login', reg.host, '-u', 'robot$crane', '-p', secrets.crane as string], {
      env,
    });
    const img = await writeOciLayout(join(work, 'cr-src'), { tag: 'v1' });
    await crane(['push', img.dir, `${reg.host}/bots/crane/img:v1`]);
    // crane asks with HEAD first, whose 403 has no body to show the DENIED code of.
    await expect(crane(['push', img.dir, `${reg.host}/bots/oras/img:v1`])).rejects.toThrow(/DENIED|403 Forbidden/);
    const lastUse = async () => {
      const res = await fetch(`${reg.url}/admin/v1/robots`, {
        headers: { authorization: basicAuth(reg.username, reg.password) },
      });
      const body = (await res.json()) as { robots: { name: string; lastUse: string | null }[] };
      return body.robots.find((r) => r.name === 'crane')?.lastUse;
    };
    const afterPush = Date.parse((await lastUse()) ?? '');
    await new Promise((r) => setTimeout(r, 20));
    expect((await crane(['digest', `${reg.host}/bots/crane/img:v1`])).trim()).toBe(img.manifestDigest);
    expect(Date.parse((await lastUse()) ?? '')).toBeGreaterThan(afterPush);
  });
});

describe.skipIf(!builtCliPresent() || !peerAvailable('oras'))('robot accounts: oras', () => {
  it('pushes an artifact inside its pattern and is DENIED outside', async () => {
    const env = { DOCKER_CONFIG: join(work, 'oras-config') };
    const dir = join(work, 'oras');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'report.txt'), 'robot report\n');
    const oras = (args: string[]) => run(peerPath('oras'), args, { env, cwd: dir });
    await oras(['login', '--plain-http', '-u', 'robot$oras', '-p', secrets.oras as string, reg.host]);
    await oras(['push', '--plain-http', `${reg.host}/bots/oras/art:v1`, 'report.txt:text/plain']);
    await expect(
      oras(['push', '--plain-http', `${reg.host}/bots/crane/art:v1`, 'report.txt:text/plain']),
    ).rejects.toThrow(/DENIED|denied|403/);
  });
});

describe.skipIf(!builtCliPresent() || !dockerAvailable())('robot accounts: docker', () => {
  it('logs in as a robot, pushes inside its pattern and is denied outside', async () => {
    const env = { DOCKER_CONFIG: join(work, 'docker-config'), DOCKER_BUILDKIT: '0' };
    const image = `${reg.host}/bots/docker/img:v1`;
    const outside = `${reg.host}/bots/crane/from-docker:v1`;
    const base = `regctl-it/robot-base-${randomBytes(4).toString('hex')}:latest`;
    try {
      await mkdir(join(work, 'rootfs/etc'), { recursive: true });
      await writeFile(join(work, 'rootfs/etc/hello'), `robot ${base}\n`);
      await run('tar', ['-C', join(work, 'rootfs'), '-cf', join(work, 'rootfs.tar'), '.']);
      await run('docker', ['import', join(work, 'rootfs.tar'), base], { env });
      await run('docker', ['tag', base, image], { env });
      await run('docker', ['tag', base, outside], { env });
      const out = await run('docker', ['login', reg.host, '-u', 'robot$docker', '--password-stdin'], {
        env,
        input: secrets.docker as string,
      });
      expect(out).toContain('Login Succeeded');
      expect(await run('docker', ['push', image], { env })).toMatch(/digest: sha256:/);
      await expect(run('docker', ['push', outside], { env })).rejects.toThrow(/denied/i);
    } finally {
      for (const ref of [image, outside, base]) await run('docker', ['rmi', '-f', ref], { env }).catch(() => undefined);
    }
  });
});
