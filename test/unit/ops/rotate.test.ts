import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDuration, formatDuration } from '../../../src/common/units.js';
import { rotateCredentials } from '../../../src/ops/rotate.js';
import { addUser, permissionsFromFlags } from '../../../src/ops/users.js';
import { parseEnv, setEnvValues } from '../../../src/stack/env.js';
import {
  authHeaders,
  captureOutput,
  getManifestDigest,
  pushImage,
  startFixture,
  type Creds,
  type Fixture,
} from '../../helpers/day-two-fixture.js';

describe('durations', () => {
  it('parses Go-style units and compounds, refuses bare numbers and junk', () => {
    expect(parseDuration('0')).toBe(0);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('7d')).toBe(7 * 86_400_000);
    expect(parseDuration('1.5h')).toBe(5_400_000);
    for (const bad of ['10', '', 'm', '5 min', '-1s', '1h x'])
      expect(() => parseDuration(bad)).toThrow(/not a duration/);
    expect(formatDuration(5_400_000)).toBe('1h30m');
    expect(formatDuration(0)).toBe('0ms');
  });
});

describe('setEnvValues', () => {
  it('replaces one key and keeps every other line and comment', () => {
    const text = '# comment\nCOMPOSE_PROJECT_NAME=x\nREGISTRY_USERNAME=admin\nREGISTRY_PASSWORD=old\n';
    expect(setEnvValues(text, { REGISTRY_PASSWORD: 'new' })).toBe(
      '# comment\nCOMPOSE_PROJECT_NAME=x\nREGISTRY_USERNAME=admin\nREGISTRY_PASSWORD=new\n',
    );
    expect(setEnvValues('A=1\n', { B: '2' })).toBe('A=1\nB=2\n');
  });

  it('replaces every line of a key (export lines included) in place, so the value read back is the new one', () => {
    const text = 'export P=old\n# keep\nQ=1\nP="older"\n';
    const next = setEnvValues(text, { P: 'new', R: 'added' });
    expect(next).toBe('P=new\n# keep\nQ=1\nP=new\nR=added\n');
    expect(parseEnv(next)).toEqual({ P: 'new', Q: '1', R: 'added' });
  });

  it('refuses a value compose would misread and changes nothing', () => {
    for (const bad of ['a$b', 'a#b', 'a"b', "a'b", 'a`b', 'a\\b', 'a\nb', ' lead', 'trail ']) {
      expect(() => setEnvValues('P=old\n', { P: bad }), JSON.stringify(bad)).toThrow(/\.env value of P/);
    }
    expect(setEnvValues('P=old\n', { P: 'inner space ok' })).toBe('P=inner space ok\n');
    expect(() => setEnvValues('', { REGISTRY_PASSWORD: 'a secret with spaces' })).toThrow(
      /REGISTRY_PASSWORD has a space/,
    );
    expect(() => setEnvValues('', { REGISTRY_PASSWORD: 'pässwört' })).toThrow(/outside printable ASCII/);
  });
});

async function v2(url: string, creds: Creds): Promise<number> {
  const res = await fetch(`${url}/v2/`, { headers: authHeaders(creds) });
  await res.arrayBuffer();
  return res.status;
}

describe('rotateCredentials against a real registry', () => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await startFixture();
    await pushImage(fx.url, 'app', 'v1', [Buffer.from('layer')], fx.admin);
  });
  afterAll(async () => fx.close());

  it('with a grace window: old and new both work, then the old is refused without a reload; .env follows', async () => {
    const old = fx.admin;
    const out = captureOutput();
    const r = await rotateCredentials({ dir: fx.stackDir, graceMs: 8000, out, env: fx.env, canShowSecret: false });
    expect(r.user).toBe('admin');
    expect(r.generated).toBe(true);
    expect(r.envUpdated).toBe(true);
    expect(r.reloaded).toBe(true);
    expect(r.verified).toBe(true);
    expect(r.loginCommand).toContain('--password-stdin');
    expect(r.loginCommand).not.toContain(r.password);
    const env = parseEnv(await readFile(join(fx.stackDir, '.env'), 'utf8'));
    expect(env.REGISTRY_PASSWORD).toBe(r.password);
    const fresh = { username: 'admin', password: r.password as string };
    for (const f of ['.env', 'auth/htpasswd', 'auth/htpasswd.grace'])
      expect((await stat(join(fx.stackDir, f))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(fx.stackDir, 'auth/htpasswd.grace'), 'utf8')).toMatch(/^admin:\$2y\$\d\d\$.{53}:\d+\n$/);
    expect(await v2(fx.url, old)).toBe(200);
    expect(await v2(fx.url, fresh)).toBe(200);
    expect(out.lines.join('\n')).not.toContain(r.password);
    await new Promise((res) => setTimeout(res, Math.max(0, Date.parse(r.graceUntil as string) - Date.now() + 300)));
    expect(await v2(fx.url, old)).toBe(401);
    expect(await v2(fx.url, fresh)).toBe(200);
    fx.admin.password = fresh.password;
  });

  it('without a grace window the old secret is refused as soon as the command returns', async () => {
    const old = { ...fx.admin };
    const r = await rotateCredentials({
      dir: fx.stackDir,
      password: 'given-on-stdin-123456',
      graceMs: 0,
      out: captureOutput(),
      env: fx.env,
      canShowSecret: false,
    });
    expect(r.generated).toBe(false);
    expect(r.password).toBeUndefined();
    expect(await v2(fx.url, old)).toBe(401);
    expect(await v2(fx.url, { username: 'admin', password: 'given-on-stdin-123456' })).toBe(200);
    fx.admin.password = 'given-on-stdin-123456';
  });

  it('no request with a valid secret fails while clients pull during a rotation', async () => {
    let current: Creds = { ...fx.admin };
    let stop = false;
    let ok = 0;
    const failures: string[] = [];
    const loop = async () => {
      while (!stop) {
        const creds = current;
        const r = await getManifestDigest(fx.url, 'app', 'v1', creds);
        if (r.status === 200) ok++;
        else failures.push(`${r.status} with ${creds.password === fx.admin.password ? 'old' : 'new'} secret`);
      }
    };
    const clients = [loop(), loop(), loop()];
    await new Promise((r) => setTimeout(r, 200));
    const r = await rotateCredentials({
      dir: fx.stackDir,
      graceMs: 60_000,
      out: captureOutput(),
      env: fx.env,
      canShowSecret: true,
    });
    current = { username: 'admin', password: r.password as string };
    await new Promise((res) => setTimeout(res, 300));
    stop = true;
    await Promise.all(clients);
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(10);
    fx.admin.password = r.password as string;
  });

  it('refuses before changing anything when a generated password would be shown nowhere, or the user is unknown', async () => {
    const out = captureOutput();
    await addUser({
      dir: fx.stackDir,
      name: 'ci',
      permissions: permissionsFromFlags({ pull: ['**'] }),
      password: 'ci-password-123456',
      out,
      env: fx.env,
    });
    const before = await readFile(join(fx.stackDir, 'auth/htpasswd'), 'utf8');
    await expect(
      rotateCredentials({ dir: fx.stackDir, user: 'ci', graceMs: 0, out, env: fx.env, canShowSecret: false }),
    ).rejects.toMatchObject({ code: 'USAGE' });
    await expect(
      rotateCredentials({ dir: fx.stackDir, user: 'ghost', graceMs: 0, out, env: fx.env, canShowSecret: true }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(
      rotateCredentials({
        dir: fx.stackDir,
        password: 'has a space in it',
        graceMs: 0,
        out,
        env: fx.env,
        canShowSecret: true,
      }),
    ).rejects.toMatchObject({ code: 'USAGE' });
    expect(await readFile(join(fx.stackDir, 'auth/htpasswd'), 'utf8')).toBe(before);
    const r = await rotateCredentials({
      dir: fx.stackDir,
      user: 'ci',
      graceMs: 0,
      out,
      env: fx.env,
      canShowSecret: true,
    });
    expect(r.envUpdated).toBe(false);
    expect(r.loginCommand).toContain('-u ci');
    expect(await v2(fx.url, { username: 'ci', password: r.password as string })).toBe(200);
    expect(await v2(fx.url, { username: 'ci', password: 'ci-password-123456' })).toBe(401);
  });
});
