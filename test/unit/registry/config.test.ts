import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  loadConfigFile,
  parseDuration,
  parseListen,
  parseSize,
  resolveSettings,
} from '../../../src/registry/config.js';
import { main } from '../../../src/cli/main.js';
import { s3SqliteFile } from '../../../src/registry/metadata/settings.js';
import { createOutput } from '../../../src/cli/output.js';
import { Writable } from 'node:stream';

describe('serve settings', () => {
  it('defaults', () => {
    expect(resolveSettings({}, {}, {})).toEqual({
      host: '127.0.0.1',
      port: 5000,
      data: './data',
      storage: { kind: 'filesystem' },
      htpasswd: undefined,
      access: undefined,
      noAuth: false,
      ui: false,
      logLevel: 'info',
      uploadPurgeAgeMs: 24 * 3600_000,
      minFreeBytes: 0,
      realm: 'regctl',
      corsOrigins: [],
      credentialCache: true,
      metadata: { kind: 'sqlite' },
      metadataPasswordFile: undefined,
      metadataPassword: undefined,
      proxies: [],
      trustedProxies: [],
      authMode: 'basic',
      tokenKey: undefined,
    });
  });

  it('reads the auth mode; token needs a key file; anything else is refused', () => {
    expect(resolveSettings({ auth: 'token', tokenKey: 'auth/token-key.pem' }, {}, {})).toMatchObject({
      authMode: 'token',
      tokenKey: 'auth/token-key.pem',
    });
    expect(resolveSettings({}, { REGCTL_AUTH: 'token', REGCTL_TOKEN_KEY: 'k.pem' }, { auth: 'basic' }).authMode).toBe(
      'token',
    );
    expect(() => resolveSettings({ auth: 'token' }, {}, {})).toThrow(/auth token needs --token-key FILE/);
    expect(() => resolveSettings({}, {}, { auth: 'bearer' })).toThrow(/auth: "bearer" is not basic or token/);
  });

  it('reads trusted proxies from a flag, the environment or a YAML list, and refuses a bad entry', () => {
    expect(resolveSettings({ trustedProxies: '10.0.0.0/8, traefik' }, {}, {}).trustedProxies).toEqual([
      '10.0.0.0/8',
      'traefik',
    ]);
    expect(
      resolveSettings({}, { REGCTL_TRUSTED_PROXIES: '127.0.0.1' }, { trustedProxies: ['x'] }).trustedProxies,
    ).toEqual(['127.0.0.1']);
    expect(resolveSettings({}, {}, { trustedProxies: ['fd00::/8', '172.18.0.3'] }).trustedProxies).toEqual([
      'fd00::/8',
      '172.18.0.3',
    ]);
    expect(() => resolveSettings({ trustedProxies: '10.0.0.0/40' }, {}, {})).toThrow(
      /trusted-proxy: "10.0.0.0\/40" is not a CIDR block/,
    );
    expect(() => resolveSettings({}, {}, { trustedProxies: { a: 1 } })).toThrow(/trusted-proxy: .* is not a list/);
  });

  it('reads the metadata store from flags, environment or file, its password only from the environment or a file', () => {
    expect(resolveSettings({ metadata: 'postgres://regctl@db.internal:5433/reg' }, {}, {}).metadata).toEqual({
      kind: 'postgres',
      url: 'postgres://regctl@db.internal:5433/reg',
    });
    expect(resolveSettings({}, { REGCTL_METADATA: 'memory' }, { metadata: 'sqlite' }).metadata).toEqual({
      kind: 'memory',
    });
    // S3 storage keeps the embedded store in the state directory (by default the data directory); memory on request.
    const onS3 = resolveSettings({ storage: 's3://bucket' }, {}, {});
    expect(onS3.metadata).toEqual({ kind: 'sqlite' });
    expect(onS3.stateDir).toBe('./data');
    expect(resolveSettings({ storage: 's3://bucket', data: '/srv/reg' }, {}, {}).stateDir).toBe('/srv/reg');
    expect(
      resolveSettings({ storage: 's3://bucket' }, { REGCTL_STATE_DIR: '/var/lib/regctl' }, { stateDir: '/x' }).stateDir,
    ).toBe('/var/lib/regctl');
    expect(resolveSettings({ storage: 's3://bucket', metadata: 'memory' }, {}, {}).metadata).toEqual({
      kind: 'memory',
    });
    expect(resolveSettings({}, {}, {}).stateDir).toBeUndefined();
    expect(() => resolveSettings({ stateDir: '/var/lib/regctl' }, {}, {})).toThrow(
      /^state-dir is for --storage s3:\/\/BUCKET; with --data storage the state lives in the data directory$/,
    );
    expect(resolveSettings({}, {}, {}).metadata).toEqual({ kind: 'sqlite' });
    expect(resolveSettings({}, {}, { metadata: 'sqlite:/var/lib/meta.db' }).metadata).toEqual({
      kind: 'sqlite',
      path: '/var/lib/meta.db',
    });
    const s = resolveSettings(
      {},
      { REGCTL_METADATA_PASSWORD: 's3cret', REGCTL_METADATA_PASSWORD_FILE: '/run/secrets/pg' },
      { metadata: 'postgresql://u@h/d' },
    );
    expect([s.metadata, s.metadataPassword, s.metadataPasswordFile]).toEqual([
      { kind: 'postgres', url: 'postgres://u@h/d' },
      's3cret',
      '/run/secrets/pg',
    ]);
    expect(resolveSettings({}, {}, { metadataPasswordFile: '/run/secrets/pg' }).metadataPasswordFile).toBe(
      '/run/secrets/pg',
    );
  });

  it('refuses a bad metadata setting in one line, never repeating a password', () => {
    const cases: [string, RegExp][] = [
      [
        'postgres://regctl:hunter2@db/reg',
        /carries a password; give it in REGCTL_METADATA_PASSWORD or --metadata-password-file/,
      ],
      ['postgres://db/reg', /names no user/],
      ['postgres://u@db/', /must name one database/],
      ['postgres://u@db/a/b', /must name one database/],
      ['postgres://u@db/reg?sslmode=disable', /must not carry parameters/],
      ['mysql://u@db/reg', /is not one of sqlite, sqlite:\/path/],
      ['sqlite:', /needs a file path/],
      ['postgres://u@[::1/reg', /is not a valid URL/],
    ];
    for (const [value, message] of cases) {
      let err: Error | undefined;
      try {
        resolveSettings({ metadata: value }, {}, {});
      } catch (e) {
        err = e as Error;
      }
      expect(err?.message, value).toMatch(message);
      expect(err?.message).toMatch(/^metadata: /);
      expect(err?.message).not.toContain('\n');
      expect(err?.message).not.toContain('hunter2');
    }
  });

  it('refuses a YAML mapping or list where a single value belongs, naming the setting', () => {
    expect(() => resolveSettings({}, {}, { logLevel: { level: 'debug' } })).toThrow(
      /logLevel: \{"level":"debug"\} is not a single value/,
    );
    expect(() => resolveSettings({}, {}, { data: ['a', 'b'] })).toThrow(/data: \["a","b"\] is not a single value/);
    expect(() => resolveSettings({}, {}, { corsOrigins: [{ a: 1 }] })).toThrow(/corsOrigins: .* is not a single value/);
    expect(resolveSettings({}, {}, { corsOrigins: ['https://a.test', 'https://b.test'] }).corsOrigins).toEqual([
      'https://a.test',
      'https://b.test',
    ]);
  });

  it('flags beat env, env beats the config file', () => {
    const file = {
      listen: '0.0.0.0:1',
      data: '/file',
      realm: 'file',
      uploadPurgeAge: '1h',
      corsOrigins: ['https://a'],
    };
    const env = { REGCTL_LISTEN: '0.0.0.0:2', REGCTL_DATA: '/env', REGCTL_NO_AUTH: '1', REGCTL_MIN_FREE: '1GiB' };
    const s = resolveSettings({ listen: '127.0.0.1:3' }, env, file);
    expect(s).toMatchObject({
      host: '127.0.0.1',
      port: 3,
      data: '/env',
      realm: 'file',
      noAuth: true,
      uploadPurgeAgeMs: 3600_000,
      minFreeBytes: 1024 ** 3,
      corsOrigins: ['https://a'],
    });
  });

  it('parses durations, sizes and listen addresses, and rejects nonsense with the setting named', () => {
    expect(parseDuration('90s', 'x')).toBe(90_000);
    expect(parseDuration('2d', 'x')).toBe(172_800_000);
    expect(parseSize('512MiB', 'x')).toBe(512 * 1024 ** 2);
    expect(parseSize('2GB', 'x')).toBe(2e9);
    expect(parseListen('[::1]:5000')).toEqual({ host: '::1', port: 5000 });
    expect(parseListen(':8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(() => parseDuration('soon', 'upload-purge-age')).toThrow(/upload-purge-age/);
    expect(() => parseListen('host:99999')).toThrow(/HOST:PORT/);
    expect(() => resolveSettings({ logLevel: 'loud' }, {}, {})).toThrow(/log-level/);
  });

  it('reads units as common/units does: durations need a unit even as YAML numbers, bare sizes are bytes', () => {
    expect(() => parseDuration('10', 'upload-purge-age')).toThrow(
      /upload-purge-age: "10" is not a duration .*a bare number needs a unit/,
    );
    expect(() => parseDuration(86_400_000, 'upload-purge-age')).toThrow(/a bare number needs a unit/);
    expect(parseDuration(0, 'upload-purge-age')).toBe(0);
    expect(parseDuration('1h30m', 'x')).toBe(5_400_000);
    expect(parseSize(4096, 'min-free')).toBe(4096);
    expect(parseSize('4096', 'min-free')).toBe(4096);
    expect(parseSize('1G', 'min-free')).toBe(1e9);
    expect(() => parseSize(-1, 'min-free')).toThrow(/min-free/);
    expect(() => parseSize('1m', 'min-free')).toThrow(/min-free: "1m" is not a size/);
    expect(() => resolveSettings({}, { REGCTL_UPLOAD_PURGE_AGE: '10' }, {})).toThrow(/upload-purge-age/);
  });

  it('the S3 default store file: one per endpoint, bucket and prefix, in the state directory, the same every start', () => {
    const file = (bucket: string, prefix: string, endpoint?: string) =>
      s3SqliteFile('/var/lib/regctl', { bucket, prefix, endpoint });
    expect(file('reg', 'p')).toMatch(/^\/var\/lib\/regctl\/regctl\/metadata-s3-reg-[0-9a-f]{12}\.sqlite$/);
    expect(file('reg', 'p')).toBe(file('reg', 'p'));
    const all = [file('reg', 'p'), file('reg', 'q'), file('reg2', 'p'), file('reg', 'p', 'http://127.0.0.1:7070')];
    expect(new Set(all).size).toBe(4);
  });

  it('--storage s3:// selects S3 from flags, env or the config file; the S3 settings are parsed and checked', () => {
    const s3 = (bucket: string, prefix: string, extra: object = {}) => ({
      kind: 's3',
      bucket,
      prefix,
      endpoint: undefined,
      region: 'us-east-1',
      pathStyle: false,
      redirect: false,
      ...extra,
    });
    expect(resolveSettings({ storage: 's3://reg-bucket' }, {}, {}).storage).toEqual(s3('reg-bucket', ''));
    expect(
      resolveSettings(
        { storage: 's3://reg-bucket//team/registry/', s3PathStyle: true },
        { REGCTL_S3_ENDPOINT: 'http://127.0.0.1:7070/', AWS_REGION: 'eu-west-3' },
        {},
      ).storage,
    ).toEqual(
      s3('reg-bucket', 'team/registry', { endpoint: 'http://127.0.0.1:7070', region: 'eu-west-3', pathStyle: true }),
    );
    expect(
      resolveSettings(
        {},
        { REGCTL_STORAGE: 's3://from-env/p' },
        { storage: 's3://from-file', s3Region: 'ap-south-1', s3Redirect: true, s3PathStyle: 'yes' },
      ).storage,
    ).toEqual(s3('from-env', 'p', { region: 'ap-south-1', redirect: true, pathStyle: true }));
    expect(resolveSettings({}, { REGCTL_S3_PATH_STYLE: '1', REGCTL_STORAGE: 's3://abc' }, {}).storage).toMatchObject({
      pathStyle: true,
    });
  });

  it('refuses bad S3 settings in one line that says what to fix', () => {
    const bad =
      (flags: object, env: NodeJS.ProcessEnv = {}) =>
      () =>
        resolveSettings(flags, env, {});
    expect(bad({ storage: '/var/lib/registry' })).toThrow(
      /^storage: "\/var\/lib\/registry" is not an s3:\/\/ URL \(example: s3:\/\/my-bucket\/registry; a directory goes in --data\)$/,
    );
    expect(bad({ storage: 's3://Bad_Bucket/x' })).toThrow(
      /^storage: "Bad_Bucket" in s3:\/\/Bad_Bucket\/x is not a bucket name/,
    );
    expect(bad({ storage: 's3://' })).toThrow(/is not a bucket name/);
    expect(bad({ storage: 's3://bucket/a/../b' })).toThrow(/has an empty, "\." or "\.\." segment/);
    expect(bad({ storage: 's3://bucket', s3Endpoint: 'ftp://x' })).toThrow(
      /"ftp:\/\/x" must be an http:\/\/ or https:\/\/ URL/,
    );
    expect(bad({ storage: 's3://bucket', s3Endpoint: 'not a url' })).toThrow(/"not a url" is not a URL/);
    expect(bad({ storage: 's3://bucket', s3Endpoint: 'http://key:secret@h:1' })).toThrow(/must not carry credentials/);
    expect(bad({ storage: 's3://bucket', s3Endpoint: 'http://key:secret@h:1' })).not.toThrow(/secret/);
    expect(bad({ s3Endpoint: 'http://127.0.0.1:7070' })).toThrow(/^s3-endpoint needs --storage s3:\/\/BUCKET/);
    expect(bad({}, { REGCTL_S3_PATH_STYLE: 'true' })).toThrow(/^s3-path-style needs --storage/);
    expect(bad({ storage: 's3://bucket', s3PathStyle: 'maybe' })).toThrow(/s3-path-style: "maybe" is not a boolean/);
  });

  describe('config file', () => {
    let dir: string;
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'regctl-serve-cfg-'));
    });
    afterEach(() => rm(dir, { recursive: true, force: true }));

    it('loads YAML and refuses unknown keys', async () => {
      await writeFile(join(dir, 'ok.yaml'), 'listen: 0.0.0.0:5001\nnoAuth: true\n');
      expect(await loadConfigFile(join(dir, 'ok.yaml'))).toEqual({ listen: '0.0.0.0:5001', noAuth: true });
      await writeFile(join(dir, 'bad.yaml'), 'lisen: x\n');
      await expect(loadConfigFile(join(dir, 'bad.yaml'))).rejects.toThrow(/unknown key "lisen"/);
      await expect(loadConfigFile(join(dir, 'missing.yaml'))).rejects.toThrow(/cannot read/);
    });

    it('takes the S3 settings from the YAML file', async () => {
      await writeFile(
        join(dir, 's3.yaml'),
        'storage: s3://team-registry/prod\ns3Endpoint: https://s3.example.test\ns3Region: eu-west-3\ns3PathStyle: true\n',
      );
      const file = await loadConfigFile(join(dir, 's3.yaml'));
      expect(resolveSettings({}, {}, file).storage).toEqual({
        kind: 's3',
        bucket: 'team-registry',
        prefix: 'prod',
        endpoint: 'https://s3.example.test',
        region: 'eu-west-3',
        pathStyle: true,
        redirect: false,
      });
    });

    it('takes the metadata store and its password file from the file, never the password itself', async () => {
      await writeFile(join(dir, 'pg.yaml'), 'metadata: postgres://regctl@db/reg\nmetadataPasswordFile: /run/pg\n');
      expect(await loadConfigFile(join(dir, 'pg.yaml'))).toEqual({
        metadata: 'postgres://regctl@db/reg',
        metadataPasswordFile: '/run/pg',
      });
      await writeFile(join(dir, 'pw.yaml'), 'metadataPassword: hunter2\n');
      await expect(loadConfigFile(join(dir, 'pw.yaml'))).rejects.toThrow(/unknown key "metadataPassword"/);
    });

    it('regctl serve without htpasswd and without --no-auth refuses with one line and a hint', async () => {
      const err: string[] = [];
      const sink = new Writable({ write: (c, _e, cb) => (err.push(String(c)), cb()) });
      const out = createOutput({ stdout: sink, stderr: sink });
      const code = await main(['node', 'regctl', 'serve', '--data', join(dir, 'data'), '--listen', '127.0.0.1:0'], {
        out,
        env: {},
      });
      expect(code).toBe(2);
      expect(err.join('')).toMatch(/no htpasswd file given/);
    });
  });
});
