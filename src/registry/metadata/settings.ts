/**
 * The metadata setting users type (`--metadata`, `REGCTL_METADATA`, `metadata:` in the config file), and opening
 * the store it names:
 *
 * - `sqlite` (default): embedded, `<data>/regctl/metadata.sqlite`; with S3 storage `<state>/regctl/` and a file per
 *   bucket and prefix (`s3SqliteFile`); `sqlite:PATH` puts the file elsewhere;
 * - `postgres://USER@HOST[:PORT]/DB` (or `postgresql://`): shared by replicas; the password comes from
 *   `REGCTL_METADATA_PASSWORD` or `--metadata-password-file`, never from the URL, the command line or a log;
 * - `memory`: this process only, rebuilt by walking storage at every start (small volumes, tests).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MemoryIndex } from '../storage/memory-index.js';
import type { MetadataStore } from './store.js';

export type MetadataSetting =
  { kind: 'memory' } | { kind: 'sqlite'; path?: string } | { kind: 'postgres'; url: string };

/** A bad setting or an unreachable database, as one line that says what to do. */
export class MetadataSettingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MetadataSettingError';
  }
}

const EXAMPLE = 'sqlite, sqlite:/path/metadata.sqlite, postgres://regctl@db.internal:5432/regctl or memory';

/** The URL with any password replaced, for messages. */
export function redactUrl(text: string): string {
  return text.replace(/^([a-z]+:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}

export function parseMetadataSetting(text: string): MetadataSetting {
  const v = text.trim();
  if (v === 'memory') return { kind: 'memory' };
  if (v === 'sqlite') return { kind: 'sqlite' };
  if (v.startsWith('sqlite:')) {
    const path = v.slice('sqlite:'.length);
    if (path === '') throw new MetadataSettingError(`metadata: "sqlite:" needs a file path (example: ${EXAMPLE})`);
    return { kind: 'sqlite', path };
  }
  if (!/^postgres(ql)?:\/\//i.test(v))
    throw new MetadataSettingError(`metadata: "${redactUrl(v)}" is not one of ${EXAMPLE}`);
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new MetadataSettingError(`metadata: "${redactUrl(v)}" is not a valid URL (example: ${EXAMPLE})`);
  }
  const shown = redactUrl(v);
  if (u.password !== '')
    throw new MetadataSettingError(
      `metadata: ${shown} carries a password; give it in REGCTL_METADATA_PASSWORD or --metadata-password-file instead`,
    );
  if (u.username === '') throw new MetadataSettingError(`metadata: ${shown} names no user (postgres://USER@HOST/DB)`);
  if (u.hostname === '') throw new MetadataSettingError(`metadata: ${shown} names no host (postgres://USER@HOST/DB)`);
  const db = u.pathname.slice(1);
  if (db === '' || db.includes('/'))
    throw new MetadataSettingError(`metadata: ${shown} must name one database (postgres://USER@HOST/DB)`);
  if (u.search !== '' || u.hash !== '')
    throw new MetadataSettingError(`metadata: ${shown} must not carry parameters (postgres://USER@HOST[:PORT]/DB)`);
  return { kind: 'postgres', url: `postgres://${u.username}@${u.host}/${db}` };
}

export interface OpenMetadataOptions {
  /** The data directory, where the default SQLite file lives; undefined for storage that is not a directory. */
  dataDir: string | undefined;
  /** The default SQLite file when the data directory does not hold it (S3 storage: `s3SqliteFile`). */
  sqliteFile?: string;
  password?: string;
  passwordFile?: string;
  onError?: (err: Error) => void;
}

async function readPassword(opts: OpenMetadataOptions): Promise<string | undefined> {
  if (opts.passwordFile === undefined) return opts.password;
  try {
    return (await readFile(opts.passwordFile, 'utf8')).replace(/\r?\n$/, '');
  } catch (err) {
    throw new MetadataSettingError(
      `metadata-password-file: cannot read ${opts.passwordFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}

/** Opens the store a setting names; a MetadataSettingError (one line) when it cannot. */
export async function openMetadataStore(setting: MetadataSetting, opts: OpenMetadataOptions): Promise<MetadataStore> {
  if (setting.kind === 'memory') return new MemoryIndex();
  if (setting.kind === 'sqlite') {
    const path =
      setting.path ??
      opts.sqliteFile ??
      (opts.dataDir === undefined ? undefined : join(opts.dataDir, 'regctl', 'metadata.sqlite'));
    if (path === undefined)
      throw new MetadataSettingError('metadata: sqlite needs a data directory; give sqlite:/path/metadata.sqlite');
    const { openSqliteStore } = await import('./sqlite-store.js');
    try {
      return await openSqliteStore(path);
    } catch (err) {
      throw new MetadataSettingError(`metadata: cannot open ${path}: ${oneLine(err)}`);
    }
  }
  const password = await readPassword(opts);
  const { openPostgresStore } = await import('./postgres-store.js');
  try {
    return await openPostgresStore({ url: setting.url, password, onError: opts.onError });
  } catch (err) {
    const why = oneLine(err);
    throw new MetadataSettingError(
      `metadata: cannot use ${setting.url}: ${password ? why.split(password).join('***') : why}`,
    );
  }
}

/**
 * The default SQLite file of a registry on S3, in its state directory: one per bucket, prefix and endpoint, so
 * registries on different buckets never take turns re-importing one file. Which bucket a file describes is also
 * checked at every start (the storage marker, startup.ts): a file copied or pointed at another bucket is imported
 * again, never trusted.
 */
export function s3SqliteFile(stateDir: string, s3: { bucket: string; prefix: string; endpoint?: string }): string {
  const where = createHash('sha256')
    .update(`${s3.endpoint ?? 'aws'}\n${s3.bucket}\n${s3.prefix}`)
    .digest('hex')
    .slice(0, 12);
  return join(stateDir, 'regctl', `metadata-s3-${s3.bucket}-${where}.sqlite`);
}

function oneLine(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { errors?: Error[] };
  // Node's connection errors to a name with several addresses carry them in `errors`, with an empty message.
  const text = e?.message || e?.errors?.map((x) => x.message).join('; ') || e?.code || String(err);
  return text.split('\n')[0] as string;
}
