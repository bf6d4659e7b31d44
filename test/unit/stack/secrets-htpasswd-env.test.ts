import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { describe, expect, test } from 'vitest';
import { parseStackConfig } from '../../../src/config/schema.js';
import { parseEnv, renderEnv } from '../../../src/stack/env.js';
import {
  checkHtpasswd,
  formatHtpasswd,
  hashPassword,
  parseHtpasswd,
  removeHtpasswdUser,
  setHtpasswdUser,
} from '../../../src/stack/htpasswd.js';
import { generatePassword, MIN_PASSWORD_LENGTH } from '../../../src/stack/secrets.js';
import { peerAvailable, peerPath } from '../../helpers/peers.js';

const htpasswdBinary = peerAvailable('htpasswd') ? peerPath('htpasswd') : undefined;

describe('generated passwords', () => {
  test('32 URL-safe characters by default, all different', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const p = generatePassword();
      expect(p).toMatch(/^[A-Za-z0-9_-]{32}$/);
      seen.add(p);
    }
    expect(seen.size).toBe(200);
  });

  test('length is honoured and never below the minimum', () => {
    expect(generatePassword(24)).toHaveLength(24);
    expect(generatePassword(41)).toHaveLength(41);
    expect(() => generatePassword(MIN_PASSWORD_LENGTH - 1)).toThrow(RangeError);
  });
});

describe('htpasswd', () => {
  test('hashes are bcrypt $2y$ at cost 10 by default and verify with bcryptjs', () => {
    const hash = hashPassword('s3cret-password');
    expect(hash).toMatch(/^\$2y\$10\$[./A-Za-z0-9]{53}$/);
    expect(bcrypt.compareSync('s3cret-password', hash)).toBe(true);
    expect(bcrypt.compareSync('wrong', hash)).toBe(false);
    expect(hashPassword('x', 5)).toMatch(/^\$2y\$05\$/);
    expect(() => hashPassword('x', 3)).toThrow(RangeError);
  });

  test('set adds or replaces one user and keeps the others in order', () => {
    let text = setHtpasswdUser('', 'admin', 'first-password', 5);
    text = setHtpasswdUser(text, 'ci', 'ci-password', 5);
    const adminHash = parseHtpasswd(text)[0]!.hash;
    text = setHtpasswdUser(text, 'ci', 'new-ci-password', 5);
    expect(parseHtpasswd(text).map((e) => e.user)).toEqual(['admin', 'ci']);
    expect(parseHtpasswd(text)[0]!.hash).toBe(adminHash);
    expect(checkHtpasswd(text, 'ci', 'new-ci-password')).toBe(true);
    expect(checkHtpasswd(text, 'ci', 'ci-password')).toBe(false);
    expect(checkHtpasswd(text, 'nobody', 'x')).toBe(false);
    expect(parseHtpasswd(removeHtpasswdUser(text, 'admin')).map((e) => e.user)).toEqual(['ci']);
  });

  test('parse skips blanks and comments, refuses malformed lines; format refuses bad names', () => {
    expect(parseHtpasswd('# c\n\nadmin:$2y$05$x\r\n')).toEqual([{ user: 'admin', hash: '$2y$05$x' }]);
    expect(() => parseHtpasswd('nocolon\n')).toThrow(/user:hash/);
    expect(() => formatHtpasswd([{ user: 'a:b', hash: 'h' }])).toThrow(/invalid/);
  });

  test.skipIf(!htpasswdBinary)('Apache htpasswd -vB verifies our hashes, and we verify its', () => {
    const dir = mkdtempSync(join(tmpdir(), 'regctl-htpasswd-'));
    try {
      const file = join(dir, 'htpasswd');
      writeFileSync(file, setHtpasswdUser('', 'admin', 'pa55-word-ok', 10));
      const ok = spawnSync(peerPath('htpasswd'), ['-vb', file, 'admin', 'pa55-word-ok'], { encoding: 'utf8' });
      expect(ok.status, ok.stderr).toBe(0);
      const bad = spawnSync(peerPath('htpasswd'), ['-vb', file, 'admin', 'wrong'], { encoding: 'utf8' });
      expect(bad.status).not.toBe(0);
      const theirs = execFileSync(peerPath('htpasswd'), ['-nbB', '-C', '6', 'ci', 'their-password'], {
        encoding: 'utf8',
      }).trim();
      expect(checkHtpasswd(theirs, 'ci', 'their-password')).toBe(true);
      expect(checkHtpasswd(theirs, 'ci', 'other')).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('.env', () => {
  const config = parseStackConfig({
    version: 1,
    name: 'reg',
    host: 'example.test',
    images: { traefik: 'regctl-test/traefik:v3.6' },
  }).config!;

  test('carries project, package dir, host, images and the admin credentials; parses back', () => {
    const text = renderEnv(config, {
      packageDir: '/opt/regctl pkg',
      secrets: { username: 'admin', password: 'Abc_def-123' },
    });
    expect(parseEnv(text)).toEqual({
      COMPOSE_PROJECT_NAME: 'reg',
      REGCTL_PACKAGE_DIR: '/opt/regctl pkg',
      HOST: 'example.test',
      REGISTRY_URL: 'registry.example.test',
      REGCTL_IMAGE: 'regctl:0.1.0',
      TRAEFIK_IMAGE: 'regctl-test/traefik:v3.6',
      BASE_IMAGE: 'node:20-bookworm-slim',
      REGISTRY_USERNAME: 'admin',
      REGISTRY_PASSWORD: 'Abc_def-123',
    });
    expect(text.startsWith('# regctl stack environment')).toBe(true);
  });

  test('without secrets (an example), the password is left empty', () => {
    const env = parseEnv(renderEnv(config, { packageDir: '/x', secrets: undefined }));
    expect(env.REGISTRY_USERNAME).toBe('admin');
    expect(env.REGISTRY_PASSWORD).toBe('');
  });

  test('values compose would misread are refused', () => {
    expect(() => renderEnv(config, { packageDir: '/x', secrets: { username: 'a', password: 'p$x' } })).toThrow(
      /REGISTRY_PASSWORD/,
    );
    expect(() => renderEnv(config, { packageDir: '/x#y', secrets: undefined })).toThrow(/REGCTL_PACKAGE_DIR/);
  });

  test('parseEnv handles quotes, comments and blank lines', () => {
    expect(parseEnv('# c\n\nA="x y"\nB=\'z\'\nC=1=2\nnot a line\n')).toEqual({ A: 'x y', B: 'z', C: '1=2' });
  });
});
