/**
 * Last pulls in the SQL metadata store: of each repository (`repositories.last_pull`, for the storage page) and of
 * each manifest (`manifests.pulled_at`, which retention's `keepPulledWithin` reads). Both are noted on the manifest
 * GET path, so noting never waits: times wait in memory for the store's next flush (every second), and a manifest's
 * pull is noted at most once a minute (`MANIFEST_PULL_RESOLUTION_MS`), so a busy manifest costs one row update a
 * minute however often it is pulled. A manifest's recorded last pull is therefore at most a minute early.
 */
import type { SqlConn, SqlDatabase } from './sql.js';

export const MANIFEST_PULL_RESOLUTION_MS = 60_000;

export interface TakenPulls {
  repositories: [string, number][];
  manifests: { name: string; digest: string; at: number }[];
}

export class SqlPulls {
  private readonly repositories = new Map<string, number>();
  private readonly manifests = new Map<string, { name: string; digest: string; at: number }>();
  /** When each manifest's pull was last noted (pending or written), to skip notes within the resolution. */
  private readonly lastNoted = new Map<string, number>();

  noteRepository(name: string, at: number): void {
    this.repositories.set(name, Math.max(this.repositories.get(name) ?? 0, at));
  }

  noteManifest(name: string, digest: string, at: number): void {
    const key = `${name}@${digest}`;
    if (at - (this.lastNoted.get(key) ?? -Infinity) < MANIFEST_PULL_RESOLUTION_MS) return;
    this.lastNoted.set(key, at);
    this.manifests.set(key, { name, digest, at });
  }

  get pending(): number {
    return this.repositories.size + this.manifests.size;
  }

  /** Last pull of each pulled manifest of a repository: what was written, and what waits in memory. */
  async manifestTimes(db: SqlDatabase, name: string): Promise<Map<string, number>> {
    const rows = await db.all<{ digest: string; pulled_at: number }>(
      'SELECT digest, pulled_at FROM manifests WHERE repository_id = (SELECT id FROM repositories WHERE name = ?)',
      [name],
    );
    const known = new Map(rows.map((r) => [r.digest, Number(r.pulled_at)]));
    for (const p of this.manifests.values())
      if (p.name === name && known.has(p.digest)) known.set(p.digest, Math.max(known.get(p.digest) ?? 0, p.at));
    return new Map([...known].filter(([, at]) => at > 0));
  }

  /** What was noted since the last call, for the store's flush; forgets notes older than the resolution. */
  take(now = Date.now()): TakenPulls {
    const taken = { repositories: [...this.repositories], manifests: [...this.manifests.values()] };
    this.repositories.clear();
    this.manifests.clear();
    for (const [key, at] of this.lastNoted) if (now - at >= MANIFEST_PULL_RESOLUTION_MS) this.lastNoted.delete(key);
    return taken;
  }

  /** A repository's recorded manifest pulls, read before an import replaces its rows (`restore` puts them back). */
  static async saved(c: SqlConn, id: number): Promise<[string, number][]> {
    const rows = await c.all<{ digest: string; pulled_at: number }>(
      'SELECT digest, pulled_at FROM manifests WHERE repository_id = ? AND pulled_at > 0',
      [id],
    );
    return rows.map((r) => [r.digest, Number(r.pulled_at)]);
  }

  /** Puts saved pulls back on the manifests the import kept, so a rebuild does not forget what was pulled. */
  static async restore(c: SqlConn, id: number, saved: [string, number][]): Promise<void> {
    for (const [digest, at] of saved)
      await c.run('UPDATE manifests SET pulled_at = ? WHERE repository_id = ? AND digest = ?', [at, id, digest]);
  }

  /**
   * Writes taken pulls in the caller's transaction; a time never goes back. Rows are locked in the order every
   * write of the store locks them, a repository before its manifests (sql-store.ts), and each kind sorted: on
   * PostgreSQL a flush holding a manifest's row while waiting for its repository's could deadlock with a manifest
   * PUT, which holds the repository's row first.
   */
  static async write(c: SqlConn, pulls: TakenPulls): Promise<void> {
    const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
    for (const [name, at] of [...pulls.repositories].sort(([a], [b]) => byName(a, b)))
      await c.run('UPDATE repositories SET last_pull = ? WHERE name = ? AND last_pull < ?', [at, name, at]);
    const manifests = [...pulls.manifests].sort((a, b) => byName(a.name, b.name) || byName(a.digest, b.digest));
    for (const { name, digest, at } of manifests)
      await c.run(
        `UPDATE manifests SET pulled_at = ? WHERE digest = ? AND pulled_at < ?
         AND repository_id = (SELECT id FROM repositories WHERE name = ?)`,
        [at, digest, at, name],
      );
  }
}
