/**
 * The shared metadata store on PostgreSQL (the `pg` client, pure JavaScript): every replica opens a pool on the
 * same database. Statements are the SQLite store's (sql-store.ts), with `?` placeholders numbered here.
 * Migrations run under a transaction-scoped advisory lock, so replicas starting together apply them once.
 * BIGINT columns come back as JavaScript numbers (times in ms and sizes stay far below 2^53).
 */
import pg from 'pg';
import { KeyLocks } from './key-locks.js';
import { leaseMetaKey, type LeaseAttempt } from './lease.js';
import { MIGRATIONS, MIGRATIONS_TABLE, SCHEMA_VERSION, SchemaTooNewError } from './migrations.js';
import { SqlMetadataStore, type SqlConn, type SqlDatabase, type SqlValue } from './sql-store.js';
import { TAG_CACHE_CHANNEL, TAG_CACHE_TRIGGERS_SQL, TagCache, type CacheChannel } from './tag-cache.js';

/** An arbitrary constant naming the migration lock among advisory locks. */
const MIGRATION_LOCK = 7_203_411;
const INT8_OID = 20;
/** The first key of leases' advisory locks (the second is the lease name's hash). */
const LEASE_LOCKS = 7_203_412;

export interface PostgresOptions {
  /** `postgres://USER@HOST[:PORT]/DB`, without a password. */
  url: string;
  password: string | undefined;
  /** Connections in the pool (default 10). */
  max?: number;
  connectTimeoutMs?: number;
  onError?: (err: Error) => void;
  /** Tag lookups from memory, kept coherent across replicas (tag-cache.ts); default on. */
  tagCache?: boolean;
}

/**
 * Statements with parameters run as named prepared statements: each connection parses and plans one once, then
 * only binds and executes it (a tag lookup costs the server about a quarter of its CPU that way). Statements
 * whose text varies with their input (multi-row inserts, IN lists) could fill a connection with statements used
 * once, so only the first PREPARED_MAX texts, each with at most PREPARED_MAX_PARAMS parameters, get a name.
 */
const PREPARED_MAX = 256;
const PREPARED_MAX_PARAMS = 16;
const statements = new Map<string, { name: string; text: string }>();

function statement(sql: string, params: SqlValue[]): pg.QueryConfig {
  const known = statements.get(sql);
  if (known !== undefined) return { ...known, values: params };
  let n = 0;
  const text = sql.replace(/\?/g, () => `$${++n}`);
  if (n === 0 || n > PREPARED_MAX_PARAMS || statements.size >= PREPARED_MAX) return { text, values: params };
  const named = { name: `regctl_${statements.size}`, text };
  statements.set(sql, named);
  return { ...named, values: params };
}

class Conn implements SqlConn {
  constructor(private readonly q: pg.Pool | pg.PoolClient) {}

  async all<T extends object>(sql: string, params: SqlValue[] = []): Promise<T[]> {
    return (await this.q.query(statement(sql, params))).rows as T[];
  }

  async run(sql: string, params: SqlValue[] = []): Promise<number> {
    return (await this.q.query(statement(sql, params))).rowCount ?? 0;
  }
}

class PostgresDatabase extends Conn implements SqlDatabase {
  readonly kind = 'postgres';
  /** Leases held, released at close: a held lease keeps a client out of the pool, which `end` would wait for. */
  private readonly held = new Set<() => Promise<void>>();
  private readonly keys: KeyLocks;

  constructor(
    private readonly pool: pg.Pool,
    private readonly config: pg.ClientConfig,
  ) {
    super(pool);
    this.keys = new KeyLocks(config);
  }

  holdKeys<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    return this.keys.hold(keys, fn);
  }

  /** A connection of its own that LISTENs on `channel` (tag-cache.ts); `onEnd` once it fails or ends. */
  async listen(channel: string, onMessage: (payload: string) => void, onEnd: () => void): Promise<CacheChannel> {
    const client = new pg.Client({ ...this.config, application_name: 'regctl-listener' });
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      client.removeAllListeners('notification');
      onEnd();
    };
    client.on('error', end);
    client.on('end', end);
    try {
      await client.connect();
      await client.query(`LISTEN ${channel}`);
    } catch (err) {
      ended = true;
      await client.end().catch(() => undefined);
      throw err;
    }
    client.on('notification', (m) => {
      if (m.channel === channel) onMessage(m.payload ?? '');
    });
    return {
      notify: async (payload) => void (await client.query('SELECT pg_notify($1, $2)', [channel, payload])),
      close: async () => {
        ended = true;
        await client.end();
      },
    };
  }

  async tx<T>(fn: (c: SqlConn) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const out = await fn(new Conn(client));
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** A session advisory lock on a connection of its own, held while `fn` runs on the pool. */
  async exclusive<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('SELECT pg_advisory_lock(hashtext($1))', [`regctl:${name}`]);
      try {
        return await fn();
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`regctl:${name}`]);
      }
    } finally {
      client.release();
    }
  }

  /**
   * A session advisory lock taken without waiting, on a connection kept out of the pool while held: the server
   * frees it when that connection ends, so a holder that dies (or loses its connection) frees the lease.
   */
  async tryLease(name: string, holder: string): Promise<LeaseAttempt> {
    const client = await this.pool.connect();
    // A connection lost while held must not crash the process (pg emits 'error' on checked-out clients).
    let lost: Error | undefined;
    const lostSignal = new AbortController();
    const onError = (err: Error): void => {
      lost = err;
      lostSignal.abort(new Error(`the ${name} lease was lost: its database connection failed (${err.message})`));
    };
    client.on('error', onError);
    const key = [LEASE_LOCKS, name];
    let taken = false;
    try {
      const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok', key);
      taken = rows[0]?.ok === true;
      if (!taken) {
        const held = await client.query<{ value: string }>('SELECT value FROM meta WHERE key = $1', [
          leaseMetaKey(name),
        ]);
        return { heldBy: held.rows[0]?.value };
      }
      await client.query(
        'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        [leaseMetaKey(name), holder],
      );
    } catch (err) {
      if (taken) await client.query('SELECT pg_advisory_unlock($1, hashtext($2))', key).catch(() => undefined);
      taken = false;
      throw err;
    } finally {
      if (!taken) {
        client.off('error', onError);
        client.release(lost);
      }
    }
    let released = false;
    const release = async (): Promise<void> => {
      if (released) return;
      released = true;
      this.held.delete(release);
      try {
        if (lost) return;
        await client.query('DELETE FROM meta WHERE key = $1 AND value = $2', [leaseMetaKey(name), holder]);
        await client.query('SELECT pg_advisory_unlock($1, hashtext($2))', key);
      } catch (err) {
        lost = err as Error;
      } finally {
        client.off('error', onError);
        // A connection that failed is closed rather than pooled, which frees the lock if the unlock did not.
        client.release(lost ?? undefined);
      }
    };
    this.held.add(release);
    return { lease: { release, lost: lostSignal.signal } };
  }

  async migrate(): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query(MIGRATIONS_TABLE);
      const { rows } = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
      const current = Number(rows[0]?.v ?? 0);
      if (current > SCHEMA_VERSION) throw new SchemaTooNewError(current);
      for (const m of MIGRATIONS) {
        if (m.version <= current) continue;
        await client.query(m.postgres);
        await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
          m.version,
          m.name,
          Date.now(),
        ]);
      }
      await client.query(TAG_CACHE_TRIGGERS_SQL);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    if (this.pool.ended) return;
    for (const release of [...this.held]) await release();
    await this.keys.close();
    await this.pool.end();
  }
}

const builtinParser = pg.types.getTypeParser as (oid: number, format?: string) => unknown;
const parseInt8 = (v: string): number => Number(v);
const typeParser = ((oid: number, format?: string): unknown =>
  oid === INT8_OID ? parseInt8 : builtinParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'];

/** Connects, brings the schema up to date and returns the store; throws when the database cannot be reached. */
export async function openPostgresStore(opts: PostgresOptions): Promise<SqlMetadataStore> {
  // Given apart, not as `connectionString`: pg lets the URL's (absent) password override the one passed beside it.
  const u = new URL(opts.url);
  const config: pg.ClientConfig = {
    host: decodeURIComponent(u.hostname.replace(/^\[|\]$/g, '')),
    port: u.port === '' ? 5432 : Number(u.port),
    user: decodeURIComponent(u.username),
    database: decodeURIComponent(u.pathname.slice(1)),
    password: opts.password,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
    types: { getTypeParser: typeParser },
  };
  const pool = new pg.Pool({ ...config, max: opts.max ?? 10 });
  // An idle client losing its connection must not crash the process: the next query reconnects.
  pool.on('error', (err) => opts.onError?.(err));
  const db = new PostgresDatabase(pool, config);
  const tags =
    opts.tagCache === false
      ? undefined
      : new TagCache({ listen: (onMessage, onEnd) => db.listen(TAG_CACHE_CHANNEL, onMessage, onEnd) });
  try {
    await db.migrate();
    return await new SqlMetadataStore(db, tags).start();
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
}
