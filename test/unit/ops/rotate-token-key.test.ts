/**
 * `regctl rotate-credentials --token-key` against a registry (in process, over a socket) reading the same auth/
 * directory: the old key's tokens pass during the grace and are refused after it, or at once without one.
 */
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rotateTokenKey } from '../../../src/ops/rotate-token-key.js';
import { createRegistryServer, type RegistryServer } from '../../../src/registry/server.js';
import { basicAuth } from '../../helpers/auth.js';
import { runCli } from '../stack/cli-harness.js';

let dir: string;
let server: RegistryServer;
let url: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'regctl-rotate-key-'));
  await mkdir(join(dir, 'auth'));
  await writeFile(join(dir, 'auth/htpasswd'), `ann:${bcrypt.hashSync('pw', 4)}\n`);
  server = createRegistryServer({
    port: 0,
    dataDir: join(dir, 'data'),
    htpasswd: join(dir, 'auth/htpasswd'),
    authMode: 'token',
    tokenKey: join(dir, 'auth/token-key.pem'),
    logLevel: 'silent',
  });
  url = (await server.listen()).url;
});
afterEach(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

async function token(): Promise<string> {
  const res = await fetch(`${url}/auth/token?service=regctl`, { headers: { Authorization: basicAuth('ann', 'pw') } });
  return ((await res.json()) as { token: string }).token;
}
const status = async (t: string) => (await fetch(`${url}/v2/`, { headers: { Authorization: `Bearer ${t}` } })).status;
const reload = () => server.app.opts.tokens?.reloadKeys();

describe('rotate-credentials --token-key', () => {
  it('with a grace the old key is accepted until it ends, then refused', async () => {
    const old = await token();
    const before = await readFile(join(dir, 'auth/token-key.pem'), 'utf8');
    const r = await rotateTokenKey(dir, 60_000);
    expect(r.previousUntil).not.toBeNull();
    expect(await readFile(join(dir, 'auth/token-key.pem'), 'utf8')).not.toBe(before);
    expect((await stat(join(dir, 'auth/token-key.pem'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'auth/token-key.pem.previous'))).mode & 0o777).toBe(0o600);
    await reload();
    expect(await status(old)).toBe(200);
    const fresh = await token();
    expect(await status(fresh)).toBe(200);
    // A rotation whose grace already ended: the key it replaced (fresh's) is refused, as is the older one.
    await rotateTokenKey(dir, 1000, undefined, () => Date.now() - 5000);
    await reload();
    expect(await status(fresh)).toBe(401);
    expect(await status(old)).toBe(401);
    expect(await status(await token())).toBe(200);
  });

  it('without a grace the old key is refused at once; the CLI says so, and refuses a stack without a key', async () => {
    const old = await token();
    const run = await runCli(['rotate-credentials', '--token-key', '--dir', dir], { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('New token signing key written to auth/token-key.pem');
    await reload();
    expect(await status(old)).toBe(401);
    expect(await status(await token())).toBe(200);
    const empty = await mkdtemp(join(tmpdir(), 'regctl-rotate-nokey-'));
    try {
      const none = await runCli(['rotate-credentials', '--token-key', '--dir', empty], { cwd: empty });
      expect(none.code).not.toBe(0);
      expect(none.stderr).toContain('no token key at auth/token-key.pem');
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
