/** The pull-through cache's settings: entries, their one-line-per-mistake validation, credentials, challenges. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveSettings, SettingsError } from '../../../src/registry/config.js';
import { credentialsEnvName, parseProxies, readCredentials } from '../../../src/registry/proxy/config.js';
import { parseChallenge, retryAfterSeconds } from '../../../src/registry/proxy/upstream.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'regctl-proxy-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('proxies setting', () => {
  it('reads entries from the config file, flags (PREFIX=URL) and the environment, ttl 24h by default', () => {
    const file = {
      proxies: [{ prefix: 'hub', upstream: 'https://registry-1.docker.io/', ttl: '1h', credentialsFile: '/run/hub' }],
    };
    expect(resolveSettings({}, {}, file).proxies).toEqual([
      { prefix: 'hub', upstream: 'https://registry-1.docker.io', credentialsFile: '/run/hub', ttlMs: 3600_000 },
    ]);
    expect(resolveSettings({ proxies: ['ghcr=https://ghcr.io'] }, {}, file).proxies).toEqual([
      { prefix: 'ghcr', upstream: 'https://ghcr.io', credentialsFile: undefined, ttlMs: 24 * 3600_000 },
    ]);
    const env = { REGCTL_PROXIES: 'hub=https://registry-1.docker.io,q=http://127.0.0.1:5001' };
    expect(resolveSettings({}, env, {}).proxies.map((p) => `${p.prefix} ${p.upstream}`)).toEqual([
      'hub https://registry-1.docker.io',
      'q http://127.0.0.1:5001',
    ]);
  });

  it('names every mistake on its own line', () => {
    const bad = [
      { prefix: 'Hub', upstream: 'ftp://x', ttl: '10' },
      { prefix: 'ok', upstream: 'https://u:p@example.com' },
      { prefix: 'ok2', upstream: 'https://example.com/v2/', extra: 1 },
      'nourl',
      { prefix: 'dup', upstream: 'https://a.example' },
      { prefix: 'dup', upstream: 'https://b.example' },
    ];
    let err: unknown;
    try {
      resolveSettings({}, {}, { proxies: bad });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SettingsError);
    expect((err as Error).message.split('\n')).toEqual([
      'proxies[0].prefix: "Hub" must be one lower-case name component (example: hub)',
      'proxies[0].upstream: "ftp://x" must start with https:// or http://',
      'proxies[0].ttl: "10" is not a duration (examples: 30s, 10m, 1h30m, 7d; a bare number needs a unit)',
      'proxies[1].upstream: credentials do not belong in the URL; use credentialsFile or the environment',
      'proxies[2]: unknown key "extra" (known: prefix, upstream, credentialsFile, ttl, mirrorOf, dockerMirror)',
      'proxies[2].upstream: "https://example.com/v2/" must be the registry\'s base URL, without a path or query',
      'proxies[3]: "nourl" is not PREFIX=URL (example: hub=https://registry-1.docker.io)',
      'proxies[5].prefix: "dup" is used twice',
    ]);
  });

  it("takes mirrorOf, the registry host an entry stands for in containerd's ?ns=, only as a host[:port]", () => {
    const entries = parseProxies([
      { prefix: 'hub', upstream: 'http://127.0.0.1:5001', mirrorOf: 'docker.io' },
      { prefix: 'q', upstream: 'https://q.example' },
    ]);
    expect(entries.map((e) => e.mirrorOf)).toEqual(['docker.io', undefined]);
    expect(() =>
      parseProxies([{ prefix: 'hub', upstream: 'https://a.example', mirrorOf: 'https://docker.io/' }]),
    ).toThrow('proxies[0].mirrorOf: "https://docker.io/" must be a registry host[:port] (example: docker.io)');
    expect(() => parseProxies([{ prefix: 'hub', upstream: 'https://a.example', mirrorOf: 5 }])).toThrow(
      /^proxies\[0\]\.mirrorOf: 5 must be/,
    );
  });

  it('takes dockerMirror on one entry at most, and only on one that stands for Docker Hub', () => {
    const hub = { prefix: 'hub', upstream: 'https://registry-1.docker.io', dockerMirror: true };
    expect(parseProxies([hub])[0]?.dockerMirror).toBe(true);
    expect(
      parseProxies([{ prefix: 'h', upstream: 'http://127.0.0.1:5001', mirrorOf: 'docker.io', dockerMirror: true }])[0]
        ?.dockerMirror,
    ).toBe(true);
    expect(parseProxies([{ prefix: 'q', upstream: 'https://q.example' }])[0]?.dockerMirror).toBeUndefined();
    let err: unknown;
    try {
      parseProxies([
        hub,
        { ...hub, prefix: 'hub2' },
        { prefix: 'ghcr', upstream: 'https://ghcr.io', dockerMirror: true },
        { prefix: 'x', upstream: 'https://x.example', dockerMirror: 'yes' },
      ]);
    } catch (e) {
      err = e;
    }
    expect((err as Error).message.split('\n')).toEqual([
      "proxies[1].dockerMirror: only one entry can answer dockerd's registry-mirrors",
      "proxies[2].dockerMirror: dockerd's registry-mirrors are for Docker Hub only; this entry stands for ghcr.io (set mirrorOf: docker.io if its upstream is a copy of Docker Hub)",
      'proxies[3].dockerMirror: must be true or false',
    ]);
  });

  it('reads credentials from a file (user:password or JSON) or the environment, never elsewhere', async () => {
    const entry = parseProxies([{ prefix: 'my-hub', upstream: 'https://r.example' }])[0];
    if (!entry) throw new Error('no entry');
    expect(await readCredentials(entry, {})).toBeUndefined();
    expect(credentialsEnvName('my-hub')).toBe('REGCTL_PROXY_MY_HUB_CREDENTIALS');
    expect(await readCredentials(entry, { REGCTL_PROXY_MY_HUB_CREDENTIALS: 'bob:pa:ss' })).toEqual({
      username: 'bob',
      password: 'pa:ss',
    });
    const plain = join(dir, 'plain');
    await writeFile(plain, 'alice:secret\n', { mode: 0o600 });
    const json = join(dir, 'json');
    await writeFile(json, JSON.stringify({ username: 'carol', password: 'x' }), { mode: 0o600 });
    expect(await readCredentials({ ...entry, credentialsFile: plain }, {})).toEqual({
      username: 'alice',
      password: 'secret',
    });
    expect(await readCredentials({ ...entry, credentialsFile: json }, {})).toEqual({
      username: 'carol',
      password: 'x',
    });
    await expect(readCredentials({ ...entry, credentialsFile: join(dir, 'missing') }, {})).rejects.toThrow(
      /^proxy my-hub: cannot read credentialsFile .*missing \(ENOENT\)$/,
    );
    await writeFile(plain, 'no colon here');
    await expect(readCredentials({ ...entry, credentialsFile: plain }, {})).rejects.toThrow(/expected user:password/);
  });
});

describe('upstream auth challenges', () => {
  it('parses Bearer and Basic challenges, and Retry-After in seconds or as a date', () => {
    expect(
      parseChallenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
      ),
    ).toEqual({
      scheme: 'bearer',
      realm: 'https://auth.docker.io/token',
      service: 'registry.docker.io',
      scope: 'repository:library/alpine:pull',
    });
    expect(parseChallenge('Basic realm="reference-registry"')).toEqual({ scheme: 'basic' });
    expect(parseChallenge('Bearer service="x"')).toBeUndefined();
    expect(retryAfterSeconds('120', 0)).toBe(120);
    expect(retryAfterSeconds(new Date(30_000).toUTCString(), 0)).toBe(30);
    expect(retryAfterSeconds('soon', 0)).toBeUndefined();
  });
});
