/**
 * Settings of `regctl serve`, resolved with the precedence flags > environment > config file > defaults.
 *
 * | flag                 | env                      | config file key   | default           |
 * |----------------------|--------------------------|-------------------|-------------------|
 * | --listen HOST:PORT   | REGCTL_LISTEN            | listen            | 127.0.0.1:5000    |
 * | --data DIR           | REGCTL_DATA              | data              | ./data            |
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
 * Durations: `90s`, `30m`, `24h`, `7d` or milliseconds; sizes: `512MiB`, `2GB`, or bytes.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { isLogLevel, type LogLevel } from './logger.js';

export interface ServeSettings {
  host: string;
  port: number;
  data: string;
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
}

export type RawSettings = Partial<Record<'listen' | 'data' | 'htpasswd' | 'access' | 'noAuth' | 'ui' | 'logLevel' | 'uploadPurgeAge' | 'minFree' | 'realm' | 'corsOrigins' | 'credentialCache', unknown>>;

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
};

export function parseDuration(v: unknown, setting: string): number {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
  const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(v.trim()) : null;
  if (!m) throw new SettingsError(setting, `${setting}: "${String(v)}" is not a duration (examples: 90s, 30m, 24h)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms'];
  return Number(m[1]) * unit;
}

export function parseSize(v: unknown, setting: string): number {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
  const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB|K|M|G|T)?$/i.exec(v.trim()) : null;
  if (!m) throw new SettingsError(setting, `${setting}: "${String(v)}" is not a size (examples: 512MiB, 2GB)`);
  const units: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
  return Math.floor(Number(m[1]) * (units[(m[2] ?? 'b').toLowerCase()] ?? 1));
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
  if (!m || port > 65535) throw new SettingsError('listen', `listen: "${text}" is not HOST:PORT (example: 127.0.0.1:5000)`);
  return { host: m[1] || m[2] || '127.0.0.1', port };
}

export async function loadConfigFile(path: string): Promise<RawSettings> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new SettingsError('config', `config: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text) ?? {};
  } catch (err) {
    throw new SettingsError('config', `config: ${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new SettingsError('config', `config: ${path} must be a YAML mapping`);
  const known = new Set(Object.keys(ENV));
  for (const key of Object.keys(doc)) if (!known.has(key)) throw new SettingsError('config', `config: unknown key "${key}" in ${path}`);
  return doc as RawSettings;
}

/** Merges the three sources (each possibly partial) and validates the result. */
export function resolveSettings(flags: RawSettings, env: NodeJS.ProcessEnv, file: RawSettings): ServeSettings {
  const pick = (key: keyof RawSettings): unknown => {
    if (flags[key] !== undefined) return flags[key];
    const e = env[ENV[key]];
    if (e !== undefined && e !== '') return e;
    return file[key];
  };
  const listen = parseListen(pick('listen') ?? '127.0.0.1:5000');
  const logLevel = String(pick('logLevel') ?? 'info');
  if (!isLogLevel(logLevel)) throw new SettingsError('logLevel', `log-level: "${logLevel}" is not one of debug, info, warn, error, silent`);
  const cors = pick('corsOrigins');
  const corsOrigins = cors === undefined ? [] : Array.isArray(cors) ? cors.map(String) : String(cors).split(',').map((s) => s.trim()).filter(Boolean);
  const str = (k: keyof RawSettings): string | undefined => {
    const v = pick(k);
    return v === undefined || v === null || v === '' ? undefined : String(v);
  };
  return {
    ...listen,
    data: str('data') ?? './data',
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
  };
}
