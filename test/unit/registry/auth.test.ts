import { execFileSync } from 'node:child_process';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { repoPatternToRegExp } from '../../../src/common/repo-pattern.js';
import { resolveServeSettings } from '../../../src/cli/commands/serve.js';
import { AccessPolicy } from '../../../src/registry/auth/access.js';
import { Authenticator, parseBasic } from '../../../src/registry/auth/authenticator.js';
import { parseHtpasswd } from '../../../src/registry/auth/htpasswd.js';
import { FailureThrottle } from '../../../src/registry/auth/throttle.js';
import { resolveSettings } from '../../../src/registry/config.js';
import { RegistryError } from '../../../src/registry/errors.js';
import { createRegistryServer } from '../../../src/registry/server.js';
import { basicAuth } from '../../helpers/auth.js';
import { peerAvailable, peerPath } from '../../helpers/peers.js';

const HTPASSWD = peerAvailable('htpasswd') ? peerPath('htpasswd') : undefined;

async function rejection(p: Promise<unknown>): Promise<RegistryError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RegistryError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

describe('htpasswd parsing', () => {
  it('accepts bcryptjs hashes ($2b$) and $2a$/$2y$, ignores other schemes with a warning', () => {
    const b = bcrypt.hashSync('pw', 4);
    const a = b.replace(/^\$2b\$/, '$2a$');
    const y = b.replace(/^\$2b\$/, '$2y$');
    const { users, warnings } = parseHtpasswd(`# comment\nb:${b}\na:${a}\ny:${y}\nmd5:$apr1$abc$def\nbroken line\n\n`);
    expect([...users.keys()]).toEqual(['b', 'a', 'y']);
    expect(warnings).toHaveLength(2);
    expect(warnings.join('\n')).not.toContain('$apr1');
  });

  it.skipIf(!HTPASSWD)('verifies a hash written by htpasswd -B', async () => {
    const line = execFileSync(HTPASSWD as string, ['-nbB', '-C', '5', 'alice', 's3cret'], { encoding: 'utf8' }).trim();
    const { users } = parseHtpasswd(line);
    const hash = users.get('alice') as string;
    expect(hash).toMatch(/^\$2y\$05\$/);
    expect(await bcrypt.compare('s3cret', hash)).toBe(true);
    expect(await bcrypt.compare('wrong', hash)).toBe(false);
  });

  it('parses Basic headers', () => {
    expect(parseBasic(basicAuth('u', 'p:with:colons'))).toEqual({ user: 'u', password: 'p:with:colons' });
    expect(parseBasic('Bearer abc')).toBeUndefined();
    expect(parseBasic(`Basic ${Buffer.from('nocolon').toString('base64')}`)).toBeUndefined();
    expect(parseBasic(undefined)).toBeUndefined();
  });
});

describe('access policy', () => {
  it('matches * within a segment and ** across segments', () => {
    expect(repoPatternToRegExp('apps/*').test('apps/web')).toBe(true);
    expect(repoPatternToRegExp('apps/*').test('apps/web/api')).toBe(false);
    expect(repoPatternToRegExp('apps/**').test('apps/web/api')).toBe(true);
    expect(repoPatternToRegExp('a.b').test('axb')).toBe(false);
  });

  it('grants per rule, nothing to absent users, everything without a file', () => {
    const p = AccessPolicy.parse(
      'users:\n  admin: { admin: true }\n  ci: { rules: [ { repos: "apps/**", actions: [pull, push] } ] }\n  v:\n',
    );
    expect(p.can('admin', 'x', 'delete')).toBe(true);
    expect(p.can('ci', 'apps/web', 'push')).toBe(true);
    expect(p.can('ci', 'apps/web', 'delete')).toBe(false);
    expect(p.can('ci', 'other', 'pull')).toBe(false);
    expect(p.can('v', 'apps/web', 'pull')).toBe(false);
    expect(p.can('stranger', 'apps/web', 'pull')).toBe(false);
    expect(p.isAdmin('ci')).toBe(false);
    expect(AccessPolicy.open().can('anyone', 'x', 'delete')).toBe(true);
    expect(AccessPolicy.open().isAdmin('anyone')).toBe(true);
  });

  it('grants a/**/b on a/b: ** between slashes stands for zero or more segments', () => {
    const p = AccessPolicy.parse('users:\n  ci: { rules: [ { repos: "apps/**/web", actions: [pull] } ] }\n');
    expect(p.can('ci', 'apps/web', 'pull')).toBe(true);
    expect(p.can('ci', 'apps/team/web', 'pull')).toBe(true);
    expect(p.can('ci', 'apps/team/x/web', 'pull')).toBe(true);
    expect(p.can('ci', 'appsweb', 'pull')).toBe(false);
    expect(p.can('ci', 'apps/webby', 'pull')).toBe(false);
  });

  it('rejects an invalid file with the field path', () => {
    expect(() => AccessPolicy.parse('users:\n  ci: { rules: [ { repos: "x", actions: [fly] } ] }\n')).toThrow(
      /users\.ci\.rules\.0\.actions\.0/,
    );
  });
});

describe('failure throttle', () => {
  it('blocks after maxFailures within the window and clears on success', () => {
    const t = new FailureThrottle({ maxFailures: 3, windowMs: 1000, blockMs: 5000 });
    t.fail('k', 0);
    t.fail('k', 10);
    expect(t.retryAfterMs('k', 20)).toBe(0);
    t.fail('k', 20);
    expect(t.retryAfterMs('k', 20)).toBe(5000);
    expect(t.retryAfterMs('k', 5020)).toBe(0);
    t.fail('j', 0);
    t.fail('j', 2000);
    t.fail('j', 2001);
    expect(t.retryAfterMs('j', 2001)).toBe(0);
    t.succeed('k');
    expect(t.retryAfterMs('k', 30)).toBe(0);
  });
});

describe('Authenticator', () => {
  let dir: string;
  let file: string;
  let auth: Authenticator | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regctl-auth-'));
    file = join(dir, 'htpasswd');
    await writeFile(file, `alice:${bcrypt.hashSync('one', 4)}\n`);
  });
  afterEach(async () => {
    auth?.close();
    auth = undefined;
    vi.restoreAllMocks();
    await rm(dir, { recursive: true, force: true });
  });

  it('accepts the right password, gives one generic 401 otherwise', async () => {
    auth = new Authenticator({ htpasswdPath: file, realm: 'test realm' });
    await auth.start();
    expect(await auth.authenticate(basicAuth('alice', 'one'), '1.1.1.1')).toBe('alice');
    const wrong = await rejection(auth.authenticate(basicAuth('alice', 'two'), '1.1.1.1'));
    const unknown = await rejection(auth.authenticate(basicAuth('mallory', 'two'), '1.1.1.1'));
    const none = await rejection(auth.authenticate(undefined, '1.1.1.1'));
    for (const e of [wrong, unknown, none]) {
      expect(e.code).toBe('UNAUTHORIZED');
      expect(e.message).toBe(wrong.message);
      expect(e.headers['WWW-Authenticate']).toBe('Basic realm="test realm"');
    }
  });

  it('runs bcrypt once per credential (cache), including for unknown users (dummy compare)', async () => {
    const compare = vi.spyOn(bcrypt, 'compare');
    auth = new Authenticator({ htpasswdPath: file, realm: 'r' });
    await auth.start();
    await Promise.all(Array.from({ length: 5 }, () => auth!.authenticate(basicAuth('alice', 'one'), 'ip')));
    for (let i = 0; i < 5; i++) await auth.authenticate(basicAuth('alice', 'one'), 'ip');
    expect(compare).toHaveBeenCalledTimes(1);
    await rejection(auth.authenticate(basicAuth('ghost', 'x'), 'ip2'));
    expect(compare).toHaveBeenCalledTimes(2);
  });

  it('sees an atomic replace of the file (rename over it) and clears the cache', async () => {
    auth = new Authenticator({ htpasswdPath: file, realm: 'r', pollMs: 200 });
    await auth.start();
    expect(await auth.authenticate(basicAuth('alice', 'one'), 'ip')).toBe('alice');
    const tmp = join(dir, '.htpasswd.tmp');
    await writeFile(tmp, `alice:${bcrypt.hashSync('two', 4)}\nbob:${bcrypt.hashSync('three', 4)}\n`);
    await rename(tmp, file);
    await vi.waitFor(async () => expect(await auth!.authenticate(basicAuth('bob', 'three'), 'ip')).toBe('bob'), {
      timeout: 5000,
      interval: 100,
    });
    expect((await rejection(auth.authenticate(basicAuth('alice', 'one'), 'ip'))).code).toBe('UNAUTHORIZED');
    expect(await auth.authenticate(basicAuth('alice', 'two'), 'ip')).toBe('alice');
  });

  it('notices changes by polling when no watch event arrives', async () => {
    auth = new Authenticator({ htpasswdPath: file, realm: 'r', pollMs: 100 });
    await auth.start();
    // Drop the watchers to stand for a bind mount whose changes raise no events.
    (auth as unknown as { watchers: { close(): void }[] }).watchers.forEach((w) => w.close());
    await writeFile(file, `carol:${bcrypt.hashSync('four', 4)}\n`);
    await vi.waitFor(async () => expect(await auth!.authenticate(basicAuth('carol', 'four'), 'ip')).toBe('carol'), {
      timeout: 5000,
      interval: 100,
    });
  });

  it('throttles repeated failures per IP and per user with 429 and Retry-After', async () => {
    auth = new Authenticator({
      htpasswdPath: file,
      realm: 'r',
      throttle: { maxFailures: 3, windowMs: 60_000, blockMs: 30_000 },
    });
    await auth.start();
    for (let i = 0; i < 3; i++) await rejection(auth.authenticate(basicAuth('alice', `bad${i}`), '10.0.0.1'));
    const blocked = await rejection(auth.authenticate(basicAuth('alice', 'one'), '10.0.0.1'));
    expect(blocked.code).toBe('TOOMANYREQUESTS');
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers['Retry-After'])).toBeGreaterThan(0);
    // The user is throttled from another address too.
    expect((await rejection(auth.authenticate(basicAuth('alice', 'one'), '10.0.0.2'))).code).toBe('TOOMANYREQUESTS');
  });

  it('a client whose credentials were verified is not locked out by someone else guessing', async () => {
    auth = new Authenticator({
      htpasswdPath: file,
      realm: 'r',
      throttle: { maxFailures: 3, windowMs: 60_000, blockMs: 30_000 },
    });
    await auth.start();
    expect(await auth.authenticate(basicAuth('alice', 'one'), '10.0.0.9')).toBe('alice');
    for (let i = 0; i < 3; i++) await rejection(auth.authenticate(basicAuth('alice', `guess${i}`), '10.6.6.6'));
    expect((await rejection(auth.authenticate(basicAuth('alice', 'guess9'), '10.0.0.9'))).code).toBe('TOOMANYREQUESTS');
    expect(await auth.authenticate(basicAuth('alice', 'one'), '10.0.0.9')).toBe('alice');
  });

  it('refuses to start on an unreadable htpasswd file', async () => {
    auth = new Authenticator({ htpasswdPath: join(dir, 'missing'), realm: 'r' });
    await expect(auth.start()).rejects.toThrow(/cannot read htpasswd/);
  });

  describe('credential cache setting', () => {
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
});
