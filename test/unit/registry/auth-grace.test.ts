import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Authenticator } from '../../../src/registry/auth/authenticator.js';
import { formatGraceFile, graceFilePath, liveGraceEntries, parseGraceFile } from '../../../src/registry/auth/grace.js';
import { RegistryError } from '../../../src/registry/errors.js';
import { basicAuth } from '../../helpers/auth.js';

const hash = (password: string) => bcrypt.hashSync(password, 4);

async function attempt(auth: Authenticator, user: string, password: string): Promise<string> {
  try {
    return await auth.authenticate(basicAuth(user, password), '10.0.0.1');
  } catch (err) {
    if (err instanceof RegistryError) return err.code;
    throw err;
  }
}

describe('grace file format', () => {
  it('round-trips entries and skips comments and blank lines', () => {
    const entries = [
      { user: 'admin', hash: hash('old'), expiresAt: 1_900_000_000 },
      { user: 'ci', hash: hash('older'), expiresAt: 1_800_000_000 },
    ];
    const text = `# old secrets\n\n${formatGraceFile(entries)}`;
    expect(parseGraceFile(text)).toEqual({ entries, warnings: [] });
  });

  it('reports malformed lines without their hash and keeps the good ones', () => {
    const good = `ci:${hash('x')}:1900000000`;
    const parsed = parseGraceFile(
      ['admin:$1$notbcrypt:1900000000', 'nocolon', `ci:${hash('y')}:soon`, good].join('\n'),
    );
    expect(parsed.entries.map((e) => e.user)).toEqual(['ci']);
    expect(parsed.warnings).toHaveLength(3);
    expect(parsed.warnings.join('\n')).not.toContain('$1$');
  });

  it('refuses to write a user name with a colon or a non-bcrypt hash', () => {
    expect(() => formatGraceFile([{ user: 'a:b', hash: hash('x'), expiresAt: 1 }])).toThrow(/invalid user name/);
    expect(() => formatGraceFile([{ user: 'a', hash: 'plain', expiresAt: 1 }])).toThrow(/bcrypt/);
  });

  it('keeps only entries that expire after now', () => {
    const e = (expiresAt: number) => ({ user: 'u', hash: hash('p'), expiresAt });
    expect(liveGraceEntries([e(99), e(100), e(101)], 100).map((x) => x.expiresAt)).toEqual([101]);
  });
});

describe('Authenticator with a grace file', () => {
  let dir: string;
  let htpasswd: string;
  let clock: number;
  let auth: Authenticator | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regctl-grace-'));
    htpasswd = join(dir, 'htpasswd');
    clock = 1_800_000_000_000;
    await writeFile(htpasswd, `admin:${hash('new-secret')}\n`);
  });
  afterEach(async () => {
    auth?.close();
    auth = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  const make = (pollMs = 60_000) =>
    new Authenticator({
      htpasswdPath: htpasswd,
      realm: 'test',
      now: () => clock,
      pollMs,
      throttle: { maxFailures: 1000 },
    });

  it('accepts the old secret until its expiry, then refuses it without a reload, cached or not', async () => {
    await writeFile(graceFilePath(htpasswd), `admin:${hash('old-secret')}:${clock / 1000 + 30}\n`);
    auth = make();
    await auth.start();
    expect(await attempt(auth, 'admin', 'old-secret')).toBe('admin');
    expect(await attempt(auth, 'admin', 'new-secret')).toBe('admin');
    // Served from the cache now; still accepted while the window lasts.
    clock += 29_000;
    expect(await attempt(auth, 'admin', 'old-secret')).toBe('admin');
    clock += 1_000;
    expect(await attempt(auth, 'admin', 'old-secret')).toBe('UNAUTHORIZED');
    expect(await attempt(auth, 'admin', 'old-secret')).toBe('UNAUTHORIZED');
    expect(await attempt(auth, 'admin', 'new-secret')).toBe('admin');
  });

  it('ignores grace entries that already expired when the file is read', async () => {
    await writeFile(graceFilePath(htpasswd), `admin:${hash('old-secret')}:${clock / 1000 - 1}\n`);
    auth = make();
    await auth.start();
    expect(await attempt(auth, 'admin', 'old-secret')).toBe('UNAUTHORIZED');
  });

  it('grace secrets only work for their own user', async () => {
    await writeFile(htpasswd, `admin:${hash('new-secret')}\nci:${hash('ci-secret')}\n`);
    await writeFile(graceFilePath(htpasswd), `admin:${hash('old-secret')}:${clock / 1000 + 30}\n`);
    auth = make();
    await auth.start();
    expect(await attempt(auth, 'ci', 'old-secret')).toBe('UNAUTHORIZED');
    expect(await attempt(auth, 'nobody', 'old-secret')).toBe('UNAUTHORIZED');
  });

  it('picks up a grace file written after start (watch or poll), and its removal', async () => {
    auth = make(50);
    await auth.start();
    expect(await attempt(auth, 'admin', 'old-secret')).toBe('UNAUTHORIZED');
    await writeFile(graceFilePath(htpasswd), `admin:${hash('old-secret')}:${clock / 1000 + 30}\n`);
    await expect
      .poll(() => attempt(auth as Authenticator, 'admin', 'old-secret'), { timeout: 3000, interval: 50 })
      .toBe('admin');
    await rm(graceFilePath(htpasswd));
    await expect
      .poll(() => attempt(auth as Authenticator, 'admin', 'old-secret'), { timeout: 3000, interval: 50 })
      .toBe('UNAUTHORIZED');
  });
});
