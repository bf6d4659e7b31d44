import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { resolveServeSettings } from '../../../src/cli/commands/serve.js';
import { Authenticator } from '../../../src/registry/auth/authenticator.js';
import { resolveSettings } from '../../../src/registry/config.js';
import { createRegistryServer } from '../../../src/registry/server.js';
import { basicAuth } from '../../helpers/auth.js';

describe('credential cache setting', () => {
  let dir: string;
  let file: string;
  let auth: Authenticator | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regctl-auth-cache-'));
    file = join(dir, 'htpasswd');
    await writeFile(file, `alice:${bcrypt.hashSync('one', 4)}\n`);
  });
  afterEach(async () => {
    auth?.close();
    auth = undefined;
    vi.restoreAllMocks();
    await rm(dir, { recursive: true, force: true });
  });

  /** Ten authentications of one credential (five at once, then five in turn); returns how many bcrypt compares ran. */
  async function comparesFor(credentialCache: boolean | undefined): Promise<number> {
    const compare = vi.spyOn(bcrypt, 'compare');
    auth = new Authenticator({
      htpasswdPath: file,
      realm: 'r',
      ...(credentialCache === undefined ? {} : { credentialCache }),
    });
    await auth.start();
    const a = auth;
    const users = await Promise.all(Array.from({ length: 5 }, () => a.authenticate(basicAuth('alice', 'one'), 'ip')));
    for (let i = 0; i < 5; i++) users.push(await a.authenticate(basicAuth('alice', 'one'), 'ip'));
    expect(users).toEqual(Array(10).fill('alice'));
    return compare.mock.calls.length;
  }

  it('off: bcrypt runs on every request, concurrent ones included', async () => {
    expect(await comparesFor(false)).toBe(10);
  });

  it('on (the default): bcrypt runs once for the same ten requests', async () => {
    expect(await comparesFor(undefined)).toBe(1);
  });

  it('off: a wrong password is still refused after the right one was accepted', async () => {
    auth = new Authenticator({ htpasswdPath: file, realm: 'r', credentialCache: false });
    await auth.start();
    expect(await auth.authenticate(basicAuth('alice', 'one'), 'ip')).toBe('alice');
    await expect(auth.authenticate(basicAuth('alice', 'two'), 'ip')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
  });

  it('is read from the flag, REGCTL_CREDENTIAL_CACHE and credentialCache in the config file, flag first', async () => {
    expect(resolveSettings({}, {}, {}).credentialCache).toBe(true);
    expect(resolveSettings({}, {}, { credentialCache: false }).credentialCache).toBe(false);
    expect(resolveSettings({}, { REGCTL_CREDENTIAL_CACHE: 'false' }, { credentialCache: true }).credentialCache).toBe(
      false,
    );
    expect(resolveSettings({}, { REGCTL_CREDENTIAL_CACHE: 'true' }, { credentialCache: false }).credentialCache).toBe(
      true,
    );
    expect(resolveSettings({ credentialCache: false }, { REGCTL_CREDENTIAL_CACHE: 'true' }, {}).credentialCache).toBe(
      false,
    );
    expect(() => resolveSettings({}, { REGCTL_CREDENTIAL_CACHE: 'sometimes' }, {})).toThrow(/credential-cache/);
    // `regctl serve --no-credential-cache` gives commander's credentialCache: false; without the flag the
    // environment decides.
    expect((await resolveServeSettings({ credentialCache: false }, {})).credentialCache).toBe(false);
    expect(
      (await resolveServeSettings({ credentialCache: true }, { REGCTL_CREDENTIAL_CACHE: 'false' })).credentialCache,
    ).toBe(false);
  });

  it('reaches the registry: with the cache off every authenticated request over HTTP runs bcrypt', async () => {
    const compare = vi.spyOn(bcrypt, 'compare');
    const server = createRegistryServer({
      port: 0,
      dataDir: join(dir, 'data'),
      htpasswd: file,
      credentialCache: false,
      logLevel: 'silent',
    });
    const { url } = await server.listen();
    try {
      for (let i = 0; i < 4; i++) {
        const res = await fetch(`${url}/v2/`, { headers: { authorization: basicAuth('alice', 'one') } });
        expect(res.status).toBe(200);
      }
      expect(compare.mock.calls.length).toBe(4);
    } finally {
      await server.close();
    }
  });
});
