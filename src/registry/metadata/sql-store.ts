/**
 * The metadata store over SQL, shared by the SQLite and PostgreSQL implementations: the same statements in the
 * portable subset both accept (`?` placeholders, which the PostgreSQL connection numbers; `ON CONFLICT … DO
 * UPDATE`; `RETURNING`; keyset pages ordered by name, bytewise in both, see migrations.ts).
 *
 * Every write runs in `db.tx` (one transaction, so a repository row is created or dropped with the tag or
 * revision that decides it), and every statement touches a bounded number of rows, so no call holds SQLite's
 * synchronous connection for long. A write that changes a repository's tags or manifests locks the repository's
 * row first (sql-rows.ts says why). Last uses and pulls, noted on hot paths, are kept in memory and written in
 * one transaction a second later (or when read, or on close).
 */
import type { RepositoryRecord } from '../storage/repository-index.js';
import { InProcessLeases, type LeaseAttempt } from './lease.js';
import { insertRows, upsertTag, type SqlConn, type SqlDatabase } from './sql.js';
import { dropRepositoryIfEmpty, ensureRepository, insertManifest, lockRepository } from './sql-rows.js';
import { SqlPulls } from './sql-pulls.js';
import { SqlUses } from './sql-uses.js';
import type {
  Intent,
  IntentKey,
  IntentKind,
  ManifestFacts,
  ManifestWrite,
  MetadataStore,
  QuotaUsage,
  ReferrerFacts,
  RepositorySnapshot,
  RepositoryStats,
  SizedDigest,
} from './store.js';
import { readPendingIntents, readReferrers, readRepository, readSnapshot } from './sql-reads.js';
import { readQuotaUsage, RepositoryBytesCache, REPOSITORY_BYTES_SQL } from './sql-usage.js';
import { EVERY_REPOSITORY, type TagCache } from './tag-cache.js';

export type { SqlConn, SqlDatabase, SqlValue } from './sql.js';

const FLUSH_EVERY_MS = 1000;
/** How often a shared store re-counts repositories (other replicas create and drop them too). */
const RECOUNT_EVERY_MS = 30_000;

export class SqlMetadataStore implements MetadataStore {
  readonly kind: string;
  readonly persistent = true;
  readonly shared: boolean;
  intentOwner: string | undefined = undefined;
  private count = 0;
  private readonly uses: SqlUses;
  private readonly pulls = new SqlPulls();
  private readonly timer: NodeJS.Timeout;
  private readonly leases = new InProcessLeases();
  private readonly usage: RepositoryBytesCache;

  constructor(
    private readonly db: SqlDatabase,
    /** Replicas on PostgreSQL: tag lookups from memory, kept coherent (tag-cache.ts). */
    private readonly tagCache?: TagCache,
  ) {
    this.kind = db.kind;
    this.shared = db.kind === 'postgres';
    this.uses = new SqlUses(db, this.shared);
    this.usage = new RepositoryBytesCache(!this.shared);
    let recounted = Date.now();
    this.timer = setInterval(() => {
      void this.flush().catch(() => undefined);
      if (this.shared && Date.now() - recounted >= RECOUNT_EVERY_MS) {
        recounted = Date.now();
        void this.refreshCount().catch(() => undefined);
      }
    }, FLUSH_EVERY_MS);
    this.timer.unref();
  }

  /** The replicas' tag cache (tag-cache.ts): whether it answers now, and its counts; undefined without one. */
  get tagCacheState(): { usable: boolean; hits: number; misses: number } | undefined {
    const t = this.tagCache;
    return t && { usable: t.usable(), hits: t.hits, misses: t.misses };
  }

  /** Reads what must be at hand before serving (the repository count). */
  async start(): Promise<this> {
    await this.tagCache?.start();
    await this.refreshCount();
    return this;
  }

  async catalog(): Promise<string[]> {
    return (await this.db.all<{ name: string }>('SELECT name FROM repositories ORDER BY name')).map((r) => r.name);
  }

  async catalogPage(after: string | undefined, limit: number): Promise<string[]> {
    const rows = await this.db.all<{ name: string }>(
      'SELECT name FROM repositories WHERE name > ? ORDER BY name' + (limit >= 0 ? ' LIMIT ?' : ''),
      limit >= 0 ? [after ?? '', limit] : [after ?? ''],
    );
    return rows.map((r) => r.name);
  }

  repositoryCount(): number {
    return this.count;
  }

  async hasRepository(name: string): Promise<boolean> {
    return (await this.repoId(name)) !== undefined;
  }

  async repository(name: string): Promise<RepositoryRecord | undefined> {
    return readRepository(this.db, name);
  }

  async snapshot(): Promise<RepositorySnapshot[]> {
    return readSnapshot(this.db);
  }

  async tags(name: string): Promise<string[] | undefined> {
    return this.tagsPage(name, undefined, -1);
  }

  async tagsPage(name: string, after: string | undefined, limit: number): Promise<string[] | undefined> {
    const id = await this.repoId(name);
    if (id === undefined) return undefined;
    const rows = await this.db.all<{ name: string }>(
      'SELECT name FROM tags WHERE repository_id = ? AND name > ? ORDER BY name' + (limit >= 0 ? ' LIMIT ?' : ''),
      limit >= 0 ? [id, after ?? '', limit] : [id, after ?? ''],
    );
    return rows.map((r) => r.name);
  }

  async tagTarget(name: string, tag: string): Promise<string | undefined> {
    const rows = await this.db.all<{ digest: string }>(
      'SELECT t.digest FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = ? AND t.name = ?',
      [name, tag],
    );
    return rows[0]?.digest;
  }

  async tagRevision(name: string, tag: string): Promise<string | undefined> {
    const query = async () =>
      (
        await this.db.all<{ digest: string }>(
          `SELECT t.digest FROM tags t
           JOIN repositories r ON r.id = t.repository_id
           JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.digest
           WHERE r.name = ? AND t.name = ?`,
          [name, tag],
        )
      )[0]?.digest;
    return this.tagCache ? this.tagCache.read(name, tag, query) : query();
  }

  async hasRevision(name: string, digest: string): Promise<boolean> {
    const rows = await this.db.all(
      'SELECT 1 AS x FROM manifests m JOIN repositories r ON r.id = m.repository_id WHERE r.name = ? AND m.digest = ?',
      [name, digest],
    );
    return rows.length > 0;
  }

  async addRevision(name: string, digest: string, at: number): Promise<void> {
    await this.write(async (c) => {
      const id = await this.ensureRepo(c, name);
      await c.run(
        `INSERT INTO manifests (repository_id, digest, pushed_at) VALUES (?, ?, ?)
         ON CONFLICT (repository_id, digest) DO UPDATE SET pushed_at = excluded.pushed_at`,
        [id, digest, at],
      );
      await c.run('UPDATE repositories SET last_push = ? WHERE id = ?', [at, id]);
    });
  }

  async addManifest(
    name: string,
    digest: string,
    at: number,
    facts: ManifestFacts,
    also?: ManifestWrite,
  ): Promise<void> {
    await this.changeTags(also?.tags?.length ? [name] : [], async (c) => {
      const id = await this.ensureRepo(c, name);
      await insertManifest(c, id, digest, at, facts);
      await c.run('UPDATE repositories SET last_push = ? WHERE id = ?', [at, id]);
      for (const tag of also?.tags ?? []) await upsertTag(c, id, tag, digest);
      for (const intent of also?.endIntents ?? []) await c.run('DELETE FROM intents WHERE id = ?', [intent]);
    });
    this.usage.drop(name);
  }

  async removeRevision(name: string, digest: string): Promise<void> {
    await this.changeTags([name], async (c) => {
      const id = await this.lockRepo(c, name);
      if (id === undefined) return;
      await c.run('DELETE FROM manifests WHERE repository_id = ? AND digest = ?', [id, digest]);
      await c.run('DELETE FROM manifest_references WHERE repository_id = ? AND manifest_digest = ?', [id, digest]);
      await this.dropIfEmpty(c, id);
    });
    this.usage.drop(name);
  }

  async setTag(name: string, tag: string, digest: string, endIntent?: number): Promise<void> {
    await this.changeTags([name], async (c) => {
      await upsertTag(c, await this.ensureRepo(c, name), tag, digest);
      if (endIntent !== undefined) await c.run('DELETE FROM intents WHERE id = ?', [endIntent]);
    });
  }

  async removeTag(name: string, tag: string): Promise<void> {
    await this.changeTags([name], async (c) => {
      const id = await this.lockRepo(c, name);
      if (id === undefined) return;
      await c.run('DELETE FROM tags WHERE repository_id = ? AND name = ?', [id, tag]);
      await this.dropIfEmpty(c, id);
    });
  }

  async setLastPush(name: string, at: number): Promise<void> {
    await this.write((c) => c.run('UPDATE repositories SET last_push = ? WHERE name = ?', [at, name]));
  }

  async clear(): Promise<void> {
    await this.changeTags([EVERY_REPOSITORY], async (c) => {
      for (const t of ['tags', 'manifest_references', 'manifests', 'repositories']) await c.run(`DELETE FROM ${t}`);
    });
    this.usage.drop();
    await this.refreshCount();
  }

  async load(name: string, record: RepositoryRecord): Promise<void> {
    await this.importRepository(name, record, new Map());
  }

  async importRepository(
    name: string,
    record: RepositoryRecord,
    facts: ReadonlyMap<string, ManifestFacts>,
  ): Promise<void> {
    await this.changeTags([name], async (c) => {
      let id = await this.lockRepo(c, name);
      const pulled = id === undefined ? [] : await SqlPulls.saved(c, id);
      for (const t of id === undefined ? [] : ['tags', 'manifest_references', 'manifests'])
        await c.run(`DELETE FROM ${t} WHERE repository_id = ?`, [id as number]);
      if (record.tags.size === 0 && record.revisions.size === 0) {
        if (id !== undefined) await this.dropIfEmpty(c, id);
        return;
      }
      id ??= await this.ensureRepo(c, name);
      await c.run('UPDATE repositories SET last_push = ? WHERE id = ?', [record.lastPush, id]);
      for (const digest of record.revisions) {
        const f = facts.get(digest);
        if (f) await insertManifest(c, id, digest, record.lastPush, f);
        else
          await c.run('INSERT INTO manifests (repository_id, digest, pushed_at) VALUES (?, ?, ?)', [
            id,
            digest,
            record.lastPush,
          ]);
      }
      const now = Date.now();
      const tagRows = [...record.tags].map(([tag, digest]) => [id, tag, digest, now]);
      await insertRows(c, 'tags', ['repository_id', 'name', 'digest', 'updated_at'], tagRows);
      await SqlPulls.restore(c, id, pulled);
    });
    this.usage.drop(name);
  }

  async referrers(name: string, subject: string): Promise<ReferrerFacts[] | undefined> {
    return readReferrers(this.db, await this.repoId(name), subject);
  }

  notePull(name: string, at = Date.now()): void {
    this.pulls.noteRepository(name, at);
  }

  noteManifestPull(name: string, digest: string, at = Date.now()): void {
    this.pulls.noteManifest(name, digest, at);
  }

  manifestPulls(name: string): Promise<Map<string, number>> {
    return this.pulls.manifestTimes(this.db, name);
  }

  async stats(name: string): Promise<RepositoryStats | undefined> {
    await this.flush();
    const [row] = await this.db.all<{ id: number; last_push: number; last_pull: number }>(
      'SELECT id, last_push, last_pull FROM repositories WHERE name = ?',
      [name],
    );
    if (!row) return undefined;
    const id = Number(row.id);
    const [counts] = await this.db.all<{ tags: number; manifests: number; bytes: number | null }>(
      `SELECT (SELECT count(*) FROM tags WHERE repository_id = ?) AS tags,
              (SELECT count(*) FROM manifests WHERE repository_id = ?) AS manifests,
              (${REPOSITORY_BYTES_SQL}) AS bytes`,
      [id, id, id, id],
    );
    return {
      name,
      tags: Number(counts?.tags ?? 0),
      manifests: Number(counts?.manifests ?? 0),
      lastPush: Number(row.last_push),
      lastPull: Number(row.last_pull),
      bytes: Number(counts?.bytes ?? 0),
    };
  }

  async quotaUsage(name: string, adding: readonly SizedDigest[] = []): Promise<QuotaUsage> {
    return readQuotaUsage(this.db, this.usage, name, await this.repoId(name), adding);
  }

  noteUse(digest: string, at = Date.now()): void {
    this.uses.note(digest, at);
  }

  usedSince(digest: string, since: number): Promise<boolean> {
    return this.uses.usedSince(digest, since);
  }

  protectUses(digests: string[], at = Date.now()): Promise<void> {
    return this.uses.protect(digests, at);
  }

  sweepUnused(digest: string, since: number, remove: () => Promise<void>): Promise<boolean> {
    return this.uses.sweepUnused(digest, since, remove);
  }

  async pruneUses(before: number): Promise<void> {
    await this.flush();
    await this.uses.prune(before);
  }

  async beginIntent(kind: IntentKind, name: string, key: string): Promise<number> {
    return (await this.beginIntents([{ kind, name, key }]))[0] as number;
  }

  async beginIntents(intents: readonly IntentKey[]): Promise<number[]> {
    return this.write(async (c) => {
      const ids: number[] = [];
      for (const { kind, name, key } of intents) {
        const rows = await c.all<{ id: number }>(
          'INSERT INTO intents (kind, repository, key, created_at, owner) VALUES (?, ?, ?, ?, ?) RETURNING id',
          [kind, name, key, Date.now(), this.intentOwner ?? null],
        );
        ids.push(Number(rows[0]?.id));
      }
      return ids;
    });
  }

  async endIntent(id: number): Promise<void> {
    await this.write((c) => c.run('DELETE FROM intents WHERE id = ?', [id]));
  }

  pendingIntents(before?: number, deadOwners: readonly string[] = []): Promise<Intent[]> {
    return readPendingIntents(this.db, before, deadOwners);
  }

  exclusive<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.db.exclusive(name, fn);
  }

  holdKeys<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    return this.db.holdKeys ? this.db.holdKeys(keys, fn) : fn();
  }

  tryLease(name: string, holder: string): Promise<LeaseAttempt> {
    return this.db.tryLease ? this.db.tryLease(name, holder) : this.leases.tryLease(name, holder);
  }

  async getMeta(key: string): Promise<string | undefined> {
    return (await this.db.all<{ value: string }>('SELECT value FROM meta WHERE key = ?', [key]))[0]?.value;
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.write((c) =>
      c.run('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [
        key,
        value,
      ]),
    );
  }

  async ping(): Promise<void> {
    await this.db.all('SELECT 1 AS x');
  }

  async flush(): Promise<void> {
    if (this.uses.pending === 0 && this.pulls.pending === 0) return;
    const uses = this.uses.take();
    const pulls = this.pulls.take();
    let committed = false;
    try {
      await this.write(async (c) => {
        await SqlUses.write(c, uses);
        await SqlPulls.write(c, pulls);
      });
      committed = true;
    } finally {
      this.uses.settled(uses, committed);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    try {
      await this.flush();
    } finally {
      await this.tagCache?.close();
      await this.db.close();
    }
  }

  private async write<T>(fn: (c: SqlConn) => Promise<T>): Promise<T> {
    return this.db.tx(fn);
  }

  /** A write that may change what `tagRevision` answers for `names`: announced to the replicas' caches. */
  private async changeTags<T>(names: readonly string[], fn: (c: SqlConn) => Promise<T>): Promise<T> {
    if (!this.tagCache || names.length === 0) return this.write(fn);
    return this.tagCache.change(names, (announce) =>
      this.write(async (c) => {
        const out = await fn(c);
        await announce(c);
        return out;
      }),
    );
  }

  private async refreshCount(): Promise<void> {
    const [row] = await this.db.all<{ n: number }>('SELECT count(*) AS n FROM repositories');
    this.count = Number(row?.n ?? 0);
  }

  private async repoId(name: string): Promise<number | undefined> {
    const rows = await this.db.all<{ id: number }>('SELECT id FROM repositories WHERE name = ?', [name]);
    return rows[0] === undefined ? undefined : Number(rows[0].id);
  }

  /** ensureRepository, counting a repository it creates. */
  private async ensureRepo(c: SqlConn, name: string): Promise<number> {
    const { id, created } = await ensureRepository(c, this.db.kind, name);
    if (created) this.count++;
    return id;
  }

  private lockRepo(c: SqlConn, name: string): Promise<number | undefined> {
    return lockRepository(c, this.db.kind, name);
  }

  private async dropIfEmpty(c: SqlConn, id: number): Promise<void> {
    if (await dropRepositoryIfEmpty(c, id)) this.count = Math.max(0, this.count - 1);
  }
}
