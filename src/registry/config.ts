/**
 * Settings of `regctl serve`, resolved with the precedence flags > environment > config file > defaults.
 *
 * | flag                 | env                      | config file key   | default           |
 * |----------------------|--------------------------|-------------------|-------------------|
 * | --listen HOST:PORT   | REGCTL_LISTEN            | listen            | 127.0.0.1:5000    |
 * | --data DIR           | REGCTL_DATA              | data              | ./data            |
 * | --storage URL        | REGCTL_STORAGE           | storage           | (none: --data)    |
 * | --s3-endpoint URL    | REGCTL_S3_ENDPOINT       | s3Endpoint        | (AWS)             |
 * | --s3-region R        | REGCTL_S3_REGION         | s3Region          | AWS_REGION or us-east-1 |
 * | --s3-path-style      | REGCTL_S3_PATH_STYLE=1   | s3PathStyle: true | false             |
 * | --s3-redirect        | REGCTL_S3_REDIRECT=1     | s3Redirect: true  | false             |
 * | --htpasswd FILE      | REGCTL_HTPASSWD          | htpasswd          | (none)            |
 * | --access FILE        | REGCTL_ACCESS            | access            | (none)            |
 * | --no-auth            | REGCTL_NO_AUTH=1         | noAuth: true      | false             |
 * | --config FILE        | REGCTL_CONFIG            | -                 | (none)            |
 * | --ui                 | REGCTL_UI=1              | ui: true          | false             |
 * | --log-level LEVEL    | REGCTL_LOG_LEVEL         | logLevel          | info              |
 * | --upload-purge-age D | REGCTL_UPLOAD_PURGE_AGE  | uploadPurgeAge    | 24h               |
 * | --min-free SIZE      | REGCTL_MIN_FREE          | minFree           | 0 (off)           |
 * | --realm TEXT         | REGCTL_REALM             | realm             | regctl            |
 * | --cors-origin LIST   | REGCTL_CORS_ORIGIN       | corsOrigins       | (none)            |
 * | --no-credential-cache | REGCTL_CREDENTIAL_CACHE=false | credentialCache: false | true (cache on) |
 * | --metadata STORE     | REGCTL_METADATA          | metadata          | sqlite            |
 * | --trusted-proxy LIST | REGCTL_TRUSTED_PROXIES   | trustedProxies    | (none: the peer is the client) |
 * | --auth MODE          | REGCTL_AUTH              | auth              | basic (or token)  |
 * | --token-key FILE     | REGCTL_TOKEN_KEY         | tokenKey          | (none; required with token) |
 * With `auth: token` the realm is also the token `service` (auth/token-service.ts).
 * | --state-dir DIR      | REGCTL_STATE_DIR         | stateDir          | the --data directory (S3 only) |
 * | --metadata-password-file FILE | REGCTL_METADATA_PASSWORD_FILE | metadataPasswordFile | (none)  |
 * | -                    | REGCTL_METADATA_PASSWORD | -                 | (none)            |
 * | --proxy PREFIX=URL (repeatable) | REGCTL_PROXIES (comma-separated) | proxies (list) | (none)     |
 * Pull-through cache entries and their credentials: proxy/config.ts.
 * STORE is `sqlite`, `sqlite:PATH`, `postgres://USER@HOST[:PORT]/DB` or `memory` (metadata/settings.ts). The
 * database password is never a flag, a config key or part of the URL: only the environment or a file.
 * `--storage s3://BUCKET[/PREFIX]` stores the registry in S3 (distribution's key layout under PREFIX) instead of the
 * `--data` directory; the embedded metadata store (`sqlite`) then lives in the state directory (`--state-dir`, by
 * default the `--data` directory), one file per bucket and prefix (metadata/settings.ts `s3SqliteFile`), imported
 * from the bucket at the first start and reused after. With `--data` storage the state lives in the data directory
 * and `--state-dir` is refused. Replicas sharing a bucket need a shared store (`postgres://…`). The S3
 * credentials come from the AWS SDK's default chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE,
 * shared config files), never from these settings.
 * Durations and sizes have the meaning `src/common/units.ts` gives them, wherever they come from:
 * - durations need a unit (`90s`, `30m`, `24h`, `7d`, `1h30m`); a bare number, in a string or as a YAML number, is
 *   refused (only `0` is accepted), so `10` is never silently seconds or milliseconds;
 * - sizes: `512MiB`/`2GiB` are powers of 1024, `500MB`/`2GB` (and `k`/`M`/`G`/`T`) powers of 1000; a bare number, in
 *   a string or as a non-negative YAML number, is bytes.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { parseDuration as parseDurationText, parseSize as parseSizeText, UnitError } from '../common/units.js';
import { TrustedProxies, TrustedProxyError } from '../common/client-address.js';
import { isLogLevel, type LogLevel } from './logger.js';
import { parseS3Endpoint, parseS3Url, S3UrlError } from '../common/s3-url.js';
import type { S3Settings } from './storage/s3/s3-config.js';

/** Where the registry keeps its data: the `data` directory, or an S3 bucket. */
export type StorageSettings = { kind: 'filesystem' } | ({ kind: 's3' } & S3Settings);
import { MetadataSettingError, parseMetadataSetting, type MetadataSetting } from './metadata/settings.js';
import { parseProxies, ProxyConfigError, type ProxyEntry } from './proxy/config.js';

export interface ServeSettings {
  host: string;
  port: number;
  data: string;
  storage: StorageSettings;
  htpasswd: string | undefined;
  access: string | undefined;
  noAuth: boolean;
  ui: boolean;
  logLevel: LogLevel;
  uploadPurgeAgeMs: number;
  minFreeBytes: number;
  realm: string;
  corsOrigins: string[];
  /** Keep verified credentials in memory so bcrypt runs once per credential; off: bcrypt on every request. */
  credentialCache: boolean;
  metadata: MetadataSetting;
  metadataPasswordFile: string | undefined;
  /** Where the registry keeps local state when storage is S3 (the embedded metadata store); undefined otherwise. */
  stateDir: string | undefined;
  /** From REGCTL_METADATA_PASSWORD only. */
  metadataPassword: string | undefined;
  /** Pull-through cache entries (proxy/config.ts). */
  proxies: ProxyEntry[];
  /** Proxies whose forwarding headers name the client: addresses, CIDR blocks, host names (common/client-address.ts). */
  trustedProxies: string[];
  /** basic: Basic credentials on every request; token: Bearer tokens from the registry's token endpoint. */
  authMode: 'basic' | 'token';
  tokenKey: string | undefined;
}

export type RawSettings = Partial<
  Record<
    | 'listen'
    | 'data'
    | 'storage'
    | 's3Endpoint'
    | 's3Region'
    | 's3PathStyle'
    | 's3Redirect'
    | 'htpasswd'
    | 'access'
    | 'noAuth'
    | 'ui'
    | 'logLevel'
    | 'uploadPurgeAge'
    | 'minFree'
    | 'realm'
    | 'corsOrigins'
    | 'credentialCache'
    | 'metadata'
    | 'metadataPasswordFile'
    | 'stateDir'
    | 'proxies'
    | 'trustedProxies'
    | 'auth'
    | 'tokenKey',
    unknown
  >
>;

export class SettingsError extends Error {
  readonly setting: string;
  constructor(setting: string, message: string) {
    super(message);
    this.name = 'SettingsError';
    this.setting = setting;
  }
}

const ENV: Record<keyof RawSettings, string> = {
  listen: 'REGCTL_LISTEN',
  data: 'REGCTL_DATA',
  storage: 'REGCTL_STORAGE',
  s3Endpoint: 'REGCTL_S3_ENDPOINT',
  s3Region: 'REGCTL_S3_REGION',
  s3PathStyle: 'REGCTL_S3_PATH_STYLE',
  s3Redirect: 'REGCTL_S3_REDIRECT',
  htpasswd: 'REGCTL_HTPASSWD',
  access: 'REGCTL_ACCESS',
  noAuth: 'REGCTL_NO_AUTH',
  ui: 'REGCTL_UI',
  logLevel: 'REGCTL_LOG_LEVEL',
  uploadPurgeAge: 'REGCTL_UPLOAD_PURGE_AGE',
  minFree: 'REGCTL_MIN_FREE',
  realm: 'REGCTL_REALM',
  corsOrigins: 'REGCTL_CORS_ORIGIN',
  credentialCache: 'REGCTL_CREDENTIAL_CACHE',
  metadata: 'REGCTL_METADATA',
  metadataPasswordFile: 'REGCTL_METADATA_PASSWORD_FILE',
  stateDir: 'REGCTL_STATE_DIR',
  proxies: 'REGCTL_PROXIES',
  trustedProxies: 'REGCTL_TRUSTED_PROXIES',
  auth: 'REGCTL_AUTH',
  tokenKey: 'REGCTL_TOKEN_KEY',
};

function withSetting<T>(setting: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof UnitError) throw new SettingsError(setting, `${setting}: ${err.message}`);
    throw err;
  }
}

/** Milliseconds. Strings and numbers alike need a unit, except 0 (see the table above). */
export function parseDuration(v: unknown, setting: string): number {
  const text = typeof v === 'number' ? String(v) : v;
  if (typeof text !== 'string')
    throw new SettingsError(setting, `${setting}: ${JSON.stringify(v)} is not a duration (examples: 90s, 30m, 24h)`);
  return withSetting(setting, () => parseDurationText(text));
}

/** Bytes. A non-negative number (from YAML) is bytes; strings go through the one size grammar. */
export function parseSize(v: unknown, setting: string): number {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return Math.floor(v);
  if (typeof v !== 'string')
    throw new SettingsError(setting, `${setting}: ${JSON.stringify(v)} is not a size (examples: 512MiB, 2GB)`);
  return withSetting(setting, () => parseSizeText(v));
}

function parseBool(v: unknown, setting: string): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(1|true|yes|on)$/i.test(v)) return true;
  if (typeof v === 'string' && /^(0|false|no|off|)$/i.test(v)) return false;
  throw new SettingsError(setting, `${setting}: "${String(v)}" is not a boolean`);
}

export function parseListen(v: unknown): { host: string; port: number } {
  const text = String(v);
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text) ?? /^()()(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535)
    throw new SettingsError('listen', `listen: "${text}" is not HOST:PORT (example: 127.0.0.1:5000)`);
  return { host: m[1] || m[2] || '127.0.0.1', port };
}

export async function loadConfigFile(path: string): Promise<RawSettings> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new SettingsError(
      'config',
      `config: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  let doc: unknown;
  try {
    doc = parseYaml(text) ?? {};
  } catch (err) {
    throw new SettingsError('config', `config: ${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new SettingsError('config', `config: ${path} must be a YAML mapping`);
  // `policies` and `events` are read by the registry itself, at start-up and on reload (policy/holder.ts).
  const known = new Set([...Object.keys(ENV), 'policies', 'events']);
  for (const key of Object.keys(doc))
    if (!known.has(key)) throw new SettingsError('config', `config: unknown key "${key}" in ${path}`);
  return doc;
}

function metadataSetting(text: string): MetadataSetting {
  try {
    return parseMetadataSetting(text);
  } catch (err) {
    if (err instanceof MetadataSettingError) throw new SettingsError('metadata', err.message);
    throw err;
  }
}

/** Merges the three sources (each possibly partial) and validates the result. */
export function resolveSettings(flags: RawSettings, env: NodeJS.ProcessEnv, file: RawSettings): ServeSettings {
  const pick = (key: keyof RawSettings): unknown => {
    if (flags[key] !== undefined) return flags[key];
    const e = env[ENV[key]];
    if (e !== undefined && e !== '') return e;
    return file[key];
  };
  /** A setting's value as text; a YAML mapping or list where a scalar belongs is refused, never turned into "[object Object]". */
  const text = (k: keyof RawSettings, v: unknown): string => {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
    throw new SettingsError(k, `${k}: ${JSON.stringify(v)} is not a single value`);
  };
  const listen = parseListen(pick('listen') ?? '127.0.0.1:5000');
  const logLevel = text('logLevel', pick('logLevel') ?? 'info');
  if (!isLogLevel(logLevel))
    throw new SettingsError('logLevel', `log-level: "${logLevel}" is not one of debug, info, warn, error, silent`);
  const cors = pick('corsOrigins');
  const corsOrigins =
    cors === undefined
      ? []
      : Array.isArray(cors)
        ? cors.map((v) => text('corsOrigins', v))
        : text('corsOrigins', cors)
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean);
  const str = (k: keyof RawSettings): string | undefined => {
    const v = pick(k);
    return v === undefined || v === null || v === '' ? undefined : text(k, v);
  };
  const storage = storageSettings(
    str,
    (k, d) => parseBool(pick(k) ?? d, k === 's3PathStyle' ? 's3-path-style' : 's3-redirect'),
    env,
  );
  const data = str('data') ?? './data';
  const stateDir = str('stateDir');
  if (stateDir !== undefined && storage.kind !== 's3')
    throw new SettingsError(
      'stateDir',
      'state-dir is for --storage s3://BUCKET; with --data storage the state lives in the data directory',
    );
  return {
    ...listen,
    data,
    storage,
    htpasswd: str('htpasswd'),
    access: str('access'),
    noAuth: parseBool(pick('noAuth') ?? false, 'no-auth'),
    ui: parseBool(pick('ui') ?? false, 'ui'),
    logLevel,
    uploadPurgeAgeMs: parseDuration(pick('uploadPurgeAge') ?? '24h', 'upload-purge-age'),
    minFreeBytes: parseSize(pick('minFree') ?? 0, 'min-free'),
    realm: str('realm') ?? 'regctl',
    corsOrigins,
    credentialCache: parseBool(pick('credentialCache') ?? true, 'credential-cache'),
    metadata: metadataSetting(str('metadata') ?? 'sqlite'),
    metadataPasswordFile: str('metadataPasswordFile'),
    stateDir: storage.kind === 's3' ? (stateDir ?? data) : undefined,
    metadataPassword: env.REGCTL_METADATA_PASSWORD || undefined,
    proxies: proxySettings(pick('proxies')),
    trustedProxies: trustedProxiesSetting(pick('trustedProxies')),
    authMode: authModeSetting(text('auth', pick('auth') ?? 'basic'), str('tokenKey')),
    tokenKey: str('tokenKey'),
  };
}

function proxySettings(v: unknown): ProxyEntry[] {
  try {
    return parseProxies(v);
  } catch (err) {
    if (err instanceof ProxyConfigError) throw new SettingsError('proxies', err.message);
    throw err;
  }
}

function authModeSetting(mode: string, tokenKey: string | undefined): 'basic' | 'token' {
  if (mode !== 'basic' && mode !== 'token')
    throw new SettingsError('auth', `auth: "${mode}" is not basic or token (example: --auth token --token-key FILE)`);
  if (mode === 'token' && tokenKey === undefined)
    throw new SettingsError('tokenKey', 'auth token needs --token-key FILE (the signing key; created when missing)');
  return mode;
}

/** The trusted proxies, each entry checked now so a typo is refused at start rather than ignored. */
function trustedProxiesSetting(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  try {
    const list = TrustedProxies.parseList(v);
    new TrustedProxies(list);
    return list;
  } catch (err) {
    if (err instanceof TrustedProxyError) throw new SettingsError('trustedProxies', `trusted-proxy: ${err.message}`);
    throw err;
  }
}

/** The storage settings: S3 when `storage` is an s3:// URL; the S3 settings without it are refused. */
function storageSettings(
  str: (k: keyof RawSettings) => string | undefined,
  bool: (k: 's3PathStyle' | 's3Redirect', dflt: boolean) => boolean,
  env: NodeJS.ProcessEnv,
): StorageSettings {
  const url = str('storage');
  const endpoint = str('s3Endpoint');
  const region = str('s3Region');
  const pathStyle = bool('s3PathStyle', false);
  const redirect = bool('s3Redirect', false);
  if (url === undefined) {
    const stray = endpoint
      ? 's3-endpoint'
      : region
        ? 's3-region'
        : pathStyle
          ? 's3-path-style'
          : redirect
            ? 's3-redirect'
            : '';
    if (stray)
      throw new SettingsError('storage', `${stray} needs --storage s3://BUCKET[/PREFIX] (example: s3://registry)`);
    return { kind: 'filesystem' };
  }
  try {
    const { bucket, prefix } = parseS3Url(url);
    return {
      kind: 's3',
      bucket,
      prefix,
      endpoint: endpoint === undefined ? undefined : parseS3Endpoint(endpoint),
      region: region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
      pathStyle,
      redirect,
    };
  } catch (err) {
    if (err instanceof S3UrlError) throw new SettingsError('storage', `storage: ${err.message}`);
    throw err;
  }
}
