/**
 * Last uses of blobs in the SQL metadata store, which GC reads before it sweeps one. Uses noted on hot paths
 * (`note`) wait in memory for the store's next flush; `protect` and `sweepUnused` decide the race between a push
 * linking a blob and a GC removing it:
 * - a store shared by replicas (PostgreSQL) writes a protected use at once, and a sweep holds the use's row
 *   lock (`FOR UPDATE`) while it removes the blob, so a `protect` on any replica waits for it;
 * - a store alone on its file (SQLite: one process) has every sweep in this process: a use noted in memory under
 *   the digest's lock is seen by every later sweep and waits for one under way, with no commit on the push path.
 */
import { KeyedLock } from '../storage/keyed-lock.js';
import { insertRows, type SqlConn, type SqlDatabase } from './sql.js';

/** Inserting a use of a digest: kept if later than the one recorded. */
const LATER_USE =
  ' ON CONFLICT (digest) DO UPDATE SET at = CASE WHEN excluded.at > uses.at THEN excluded.at ELSE uses.at END';

export class SqlUses {
  private readonly noted = new Map<string, number>();
  /**
   * Uses a flush has taken from `noted` and not yet committed: still counted by `usedSince` and the sweeps, which
   * would otherwise find them in neither place while the flush's transaction waits for its turn.
   */
  private readonly writing = new Map<string, number>();
  /** Held per digest by a sweep and by a use protected meanwhile (a store alone on its file only). */
  private readonly lock = new KeyedLock();

  constructor(
    private readonly db: SqlDatabase,
    private readonly shared: boolean,
  ) {}

  note(digest: string, at: number): void {
    this.noted.set(digest, Math.max(this.noted.get(digest) ?? 0, at));
  }

  get pending(): number {
    return this.noted.size;
  }

  /** Writes the uses taken from memory (`take`) in the caller's transaction. */
  static write(c: SqlConn, uses: [string, number][]): Promise<void> {
    return insertRows(c, 'uses', ['digest', 'at'], uses, LATER_USE);
  }

  /** The uses noted since the last call, for the store's flush, which tells `settled` once it has written them. */
  take(): [string, number][] {
    const uses = [...this.noted];
    this.noted.clear();
    for (const [d, at] of uses) this.writing.set(d, Math.max(this.writing.get(d) ?? 0, at));
    return uses;
  }

  /** The flush of `uses` (from `take`) committed them, or failed: then they wait in memory for the next one. */
  settled(uses: [string, number][], committed: boolean): void {
    for (const [d, at] of uses) {
      if (!committed) this.note(d, at);
      // a later take of the same digest keeps its own, later use
      if ((this.writing.get(d) ?? 0) <= at) this.writing.delete(d);
    }
  }

  /** The latest use of `digest` held in memory: noted, or taken by a flush not yet committed. */
  private recent(digest: string): number {
    return Math.max(this.noted.get(digest) ?? 0, this.writing.get(digest) ?? 0);
  }

  async usedSince(digest: string, since: number): Promise<boolean> {
    if (this.recent(digest) >= since) return true;
    const rows = await this.db.all<{ at: number }>('SELECT at FROM uses WHERE digest = ?', [digest]);
    return Number(rows[0]?.at ?? 0) >= since;
  }

  async protect(digests: string[], at: number): Promise<void> {
    const unique = [...new Set(digests)].sort();
    if (!this.shared) {
      for (const d of unique) await this.lock.run(d, async () => this.note(d, at));
      return;
    }
    // one statement, sorted: transactions upserting overlapping sets take their row locks in one order
    if (unique.length > 0)
      await this.db.tx((c) =>
        SqlUses.write(
          c,
          unique.map((d) => [d, at]),
        ),
      );
  }

  sweepUnused(digest: string, since: number, remove: () => Promise<void>): Promise<boolean> {
    if (!this.shared) return this.lock.run(digest, () => this.sweepAlone(digest, since, remove));
    return this.sweepShared(digest, since, remove);
  }

  /**
   * PostgreSQL: the use's row is locked (`FOR UPDATE`, a row to hold even for a digest never noted) for as long as
   * the blob is being removed, so that a `protect` on any replica waits for the removal. The transaction holds one
   * pooled connection; other requests use the others.
   */
  private async sweepShared(digest: string, since: number, remove: () => Promise<void>): Promise<boolean> {
    if (this.recent(digest) >= since) return false;
    return this.db.tx(async (c) => {
      await c.run('INSERT INTO uses (digest, at) VALUES (?, 0) ON CONFLICT (digest) DO NOTHING', [digest]);
      const rows = await c.all<{ at: number }>('SELECT at FROM uses WHERE digest = ? FOR UPDATE', [digest]);
      if (Number(rows[0]?.at ?? 0) >= since) return false;
      await remove();
      await c.run('DELETE FROM uses WHERE digest = ?', [digest]);
      return true;
    });
  }

  /**
   * SQLite (under the digest's lock, which every `protect` of this process takes): the recorded use is read in a
   * transaction of its own, and the blob removed after it, outside any. SQLite's write transactions are the whole
   * process's, one after another: holding one while storage deletes (a blob's directory, several file-system calls)
   * made every other write wait, manifest PUTs included, and let only one sweep run at a time, so that under a steady
   * push load a GC fell further behind at each run. Reading in a transaction keeps its place in their order: uses a
   * flush has just taken from memory are committed before it reads.
   */
  private async sweepAlone(digest: string, since: number, remove: () => Promise<void>): Promise<boolean> {
    if (this.recent(digest) >= since) return false;
    const rows = await this.db.tx((c) => c.all<{ at: number }>('SELECT at FROM uses WHERE digest = ?', [digest]));
    // A use noted in memory while the read waited for its turn (a pull of the blob) keeps the blob too.
    if (Number(rows[0]?.at ?? 0) >= since || this.recent(digest) >= since) return false;
    await remove();
    await this.db.tx((c) => c.run('DELETE FROM uses WHERE digest = ?', [digest]));
    return true;
  }

  /** Forgets uses recorded before `before` (the store flushes first). */
  async prune(before: number): Promise<void> {
    await this.db.tx((c) => c.run('DELETE FROM uses WHERE at < ?', [before]));
  }
}
