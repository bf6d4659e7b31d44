/**
 * The embedded metadata store: one SQLite file (better-sqlite3, built from source at install) in WAL mode, so
 * the registry and an offline `regctl fsck --rebuild-metadata` can share it (`busy_timeout` makes a writer wait
 * for the other instead of failing). better-sqlite3 is synchronous: every statement the store runs is short
 * (keyed lookups and keyset pages), which keeps each call well under a millisecond on large volumes.
 *
 * One connection per process: write transactions are serialized here (`BEGIN IMMEDIATE` under an in-process
 * lock), because an `await` inside a transaction would otherwise let another request's statement join it; those
 * asked for at the same time share one commit (see `tx`).
 *
 * Durability: commits run with `synchronous = NORMAL` (no fsync per commit; a process killed at any point loses
 * nothing, since the WAL is in the page cache). A power loss or kernel crash may drop the last commits, and with
 * them intents. So the store records, durably, the boot it was opened in, and clears it on a clean close: a
 * store found open from an earlier boot may have lost writes storage kept, and start-up imports storage again.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { KeyedLock } from '../storage/keyed-lock.js';
import { MIGRATIONS, MIGRATIONS_TABLE, SchemaTooNewError } from './migrations.js';
import { IMPORT_STATE_KEY } from './store.js';
import { SqlMetadataStore, type SqlConn, type SqlDatabase, type SqlValue } from './sql-store.js';

/** Transactions in one batch at most (a bound on how long one commit keeps the others waiting). */
const MAX_BATCH = 64;

interface PendingTx {
  fn: (c: SqlConn) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

class SqliteDatabase implements SqlDatabase {
  readonly kind = 'sqlite';
  private readonly statements = new Map<string, Database.Statement>();
  private readonly lock = new KeyedLock();
  private readonly pending: PendingTx[] = [];
  private draining = false;

  constructor(private readonly db: Database.Database) {}

  /** Prepared once per SQL text (transaction control too: cheaper than `exec`, which parses each time). */
  private prepare(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  async all<T extends object>(sql: string, params: SqlValue[] = []): Promise<T[]> {
    const s = this.prepare(sql);
    if (!s.reader) {
      s.run(...params);
      return [];
    }
    return s.all(...params) as T[];
  }

  async run(sql: string, params: SqlValue[] = []): Promise<number> {
    const s = this.prepare(sql);
    return s.reader ? s.all(...params).length : s.run(...params).changes;
  }

  exec(sql: string): void {
    this.db.exec(sql);
  }

  /**
   * Write transactions share commits (a group commit): a transaction asked for while another batch runs waits for
   * it, and every transaction waiting by then runs in the next batch, one `BEGIN IMMEDIATE` … `COMMIT`, each in a
   * savepoint of its own, so that a throw rolls back its own writes only. Each caller is answered once the batch
   * has committed; a failed commit fails every transaction of the batch. With many requests writing at once this
   * makes one commit (one write to the WAL) of what was a commit each.
   */
  tx<T>(fn: (c: SqlConn) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      if (!this.draining) {
        this.draining = true;
        // After the I/O callbacks of this turn of the event loop: the transactions they ask for join the batch.
        setImmediate(() => void this.lock.run('tx', () => this.drain()));
      }
    });
  }

  /** Runs batches until none is waiting (those asked for while one runs make the next). */
  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) await this.runBatch(this.pending.splice(0, MAX_BATCH));
    } finally {
      this.draining = false;
    }
  }

  private async runBatch(batch: PendingTx[]): Promise<void> {
    const outcomes: { ok: boolean; value: unknown }[] = [];
    try {
      this.prepare('BEGIN IMMEDIATE').run();
      if (batch.length === 1) outcomes.push({ ok: true, value: await (batch[0] as PendingTx).fn(this) });
      else
        for (const item of batch) {
          this.prepare('SAVEPOINT tx').run();
          try {
            outcomes.push({ ok: true, value: await item.fn(this) });
            this.prepare('RELEASE tx').run();
          } catch (err) {
            this.prepare('ROLLBACK TO tx').run();
            this.prepare('RELEASE tx').run();
            outcomes.push({ ok: false, value: err });
          }
        }
      this.prepare('COMMIT').run();
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      for (const item of batch) item.reject(err);
      return;
    }
    batch.forEach((item, i) => {
      const outcome = outcomes[i] as { ok: boolean; value: unknown };
      if (outcome.ok) item.resolve(outcome.value);
      else item.reject(outcome.value);
    });
  }

  /** One process uses the file at a time (the registry, or `fsck --rebuild-metadata` with it stopped). */
  exclusive<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.lock.run(`exclusive:${name}`, fn);
  }

  /** Runs `sql` in its own transaction, fsynced before it returns. */
  durably(sql: string, params: SqlValue[] = []): void {
    this.db.pragma('synchronous = FULL');
    try {
      this.db.transaction(() => this.prepare(sql).run(...params))();
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  async close(): Promise<void> {
    // Transactions asked for before the close run first (a batch waits for the next turn of the event loop).
    await this.tx(async () => undefined).catch(() => undefined);
    await this.lock.run('tx', async () => {
      if (!this.db.open) return;
      this.durably('DELETE FROM meta WHERE key = ?', [OPEN_BOOT_KEY]);
      this.db.close();
    });
  }
}

/** `meta` key: the boot the store was opened in, until a clean close. */
export const OPEN_BOOT_KEY = 'open_boot';

/** This machine's boot id (Linux); undefined elsewhere, which turns the check off. */
function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Marks the store open in this boot; a store left open by an earlier boot is marked for import. */
async function markOpen(db: SqliteDatabase): Promise<void> {
  const boot = bootId();
  if (boot === undefined) return;
  const [row] = await db.all<{ value: string }>('SELECT value FROM meta WHERE key = ?', [OPEN_BOOT_KEY]);
  if (row !== undefined && row.value !== boot)
    db.durably('UPDATE meta SET value = ? WHERE key = ?', ['lost-writes', IMPORT_STATE_KEY]);
  db.durably('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [
    OPEN_BOOT_KEY,
    boot,
  ]);
}

/** Opens (creating when absent) the SQLite metadata file at `path` and brings its schema up to date. */
export async function openSqliteStore(path: string): Promise<SqlMetadataStore> {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const raw = new Database(path);
  try {
    raw.pragma('journal_mode = WAL');
    raw.pragma('synchronous = NORMAL');
    raw.pragma('busy_timeout = 5000');
    raw.pragma('cache_size = -8192');
    const db = new SqliteDatabase(raw);
    await db.tx(async () => {
      db.exec(MIGRATIONS_TABLE);
      const [row] = await db.all<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
      const current = row?.v ?? 0;
      if (current > (MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0)) throw new SchemaTooNewError(current);
      for (const m of MIGRATIONS) {
        if (m.version <= current) continue;
        db.exec(m.sqlite);
        await db.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [
          m.version,
          m.name,
          Date.now(),
        ]);
      }
    });
    await markOpen(db);
    return await new SqlMetadataStore(db).start();
  } catch (err) {
    if (raw.open) raw.close();
    throw err;
  }
}
