/**
 * Locks on revisions and tags across every process sharing a PostgreSQL store (MetadataStore.holdKeys), so that a
 * manifest PUT on one replica and a delete of the same manifest on another do not interleave their storage and
 * metadata steps (which would leave a tag naming a deleted revision, or metadata naming a revision whose link a
 * delete removed from storage).
 *
 * Session advisory locks on one connection of the process's own, outside the pool: a holder never waits for a
 * pool connection while it keeps one, and a process that dies (or loses that connection) frees its locks with
 * it. A connection waiting on a lock would block every other caller sharing it, so locks are tried, never waited
 * on: a caller takes all its keys at once or none, and tries again after a short pause. Taking all or none also
 * means that no caller holds one key while it waits for another in the same attempt.
 *
 * Session locks are re-entrant, so the process also keeps the set of keys it holds: a second caller in the same
 * process waits for the first to let go, as one in another process would.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { backoffMs } from '../../common/events.js';

/** The first key of these advisory locks (the second is the key's hash); leases and migrations use others. */
const KEY_LOCKS = 7_203_413;
/**
 * Pauses between attempts while a key is held elsewhere: from 1 ms, doubling up to 50 ms, spread a little so that
 * two replicas waiting for the same key do not try again in step.
 */
const FIRST_PAUSE_MS = 1;
const LONGEST_PAUSE_MS = 50;

export class KeyLocks {
  private conn: Promise<pg.Client> | undefined;
  private readonly held = new Set<string>();
  private closed = false;

  constructor(private readonly config: pg.ClientConfig) {}

  /** Runs `fn` holding every key of `keys`; see the file's comment. */
  async hold<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const wanted = [...new Set(keys)].sort();
    const client = await this.take(wanted);
    try {
      return await fn();
    } finally {
      await this.release(client, wanted);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const conn = this.conn;
    this.conn = undefined;
    if (conn) await (await conn.catch(() => undefined))?.end().catch(() => undefined);
  }

  private async take(keys: string[]): Promise<pg.Client> {
    for (let attempt = 1; ; attempt++) {
      if (this.closed) throw new Error('the metadata store is closed');
      if (!keys.some((k) => this.held.has(k))) {
        // Marked before the round trip, so that no other caller of this process tries them meanwhile.
        for (const k of keys) this.held.add(k);
        try {
          const client = await this.connection();
          const { rows } = await client.query<{ k: string; ok: boolean }>(
            'SELECT k, pg_try_advisory_lock($1, hashtext(k)) AS ok FROM unnest($2::text[]) AS k',
            [KEY_LOCKS, keys],
          );
          const taken = rows.filter((r) => r.ok).map((r) => r.k);
          if (taken.length === keys.length) return client;
          await this.unlock(client, taken);
        } catch (err) {
          for (const k of keys) this.held.delete(k);
          throw err;
        }
        for (const k of keys) this.held.delete(k);
      }
      await sleep(backoffMs(attempt, FIRST_PAUSE_MS, LONGEST_PAUSE_MS));
    }
  }

  private async release(client: pg.Client, keys: string[]): Promise<void> {
    try {
      await this.unlock(client, keys);
    } finally {
      for (const k of keys) this.held.delete(k);
    }
  }

  /** Frees `keys` on `client`; a connection that failed has freed them already, as the server ended its session. */
  private async unlock(client: pg.Client, keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    await client
      .query('SELECT pg_advisory_unlock($1, hashtext(k)) FROM unnest($2::text[]) AS k', [KEY_LOCKS, keys])
      .catch(() => undefined);
  }

  /** The lock connection, opened on first use and again after it failed. */
  private connection(): Promise<pg.Client> {
    if (this.conn) return this.conn;
    const client = new pg.Client({ ...this.config, application_name: 'regctl-locks' });
    const conn = client.connect().then(() => client);
    const drop = (): void => {
      if (this.conn === conn) this.conn = undefined;
    };
    client.on('error', drop);
    client.on('end', drop);
    conn.catch(drop);
    this.conn = conn;
    return conn;
  }
}
