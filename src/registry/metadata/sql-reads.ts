/** Reads of the SQL metadata store (sql-store.ts) that take a few statements: see MetadataStore for each. */
import type { SqlDatabase } from './sql.js';
import type { RepositoryRecord } from '../storage/repository-index.js';
import { sortedSnapshot, type Intent, type IntentKind, type ReferrerFacts, type RepositorySnapshot } from './store.js';

/** MetadataStore.pendingIntents. */
export async function readPendingIntents(
  db: SqlDatabase,
  before: number | undefined,
  deadOwners: readonly string[],
): Promise<Intent[]> {
  const owners = deadOwners.length > 0 ? ` OR owner IN (${deadOwners.map(() => '?').join(', ')})` : '';
  const rows = await db.all<{
    id: number;
    kind: IntentKind;
    repository: string;
    key: string;
    created_at: number;
    owner: string | null;
  }>(`SELECT id, kind, repository, key, created_at, owner FROM intents WHERE created_at < ?${owners} ORDER BY id`, [
    before ?? Number.MAX_SAFE_INTEGER,
    ...deadOwners,
  ]);
  return rows.map((r) => ({
    id: Number(r.id),
    kind: r.kind,
    name: r.repository,
    key: r.key,
    createdAt: Number(r.created_at),
    ...(r.owner !== null && r.owner !== undefined ? { owner: r.owner } : {}),
  }));
}

/** MetadataStore.snapshot: every repository's tags and revisions in one read transaction. */
export async function readSnapshot(db: SqlDatabase): Promise<RepositorySnapshot[]> {
  return db.tx(async (c) => {
    // Every statement of a REPEATABLE READ transaction reads as of its first: one moment for the three reads.
    // (SQLite's transactions are serializable already.)
    if (db.kind === 'postgres') await c.run('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    const repos = await c.all<{ id: number; name: string }>('SELECT id, name FROM repositories');
    const tags = await c.all<{ repository_id: number; name: string; digest: string }>(
      'SELECT repository_id, name, digest FROM tags',
    );
    const revs = await c.all<{ repository_id: number; digest: string }>('SELECT repository_id, digest FROM manifests');
    const byId = new Map<number, RepositorySnapshot>();
    for (const r of repos) byId.set(Number(r.id), { name: r.name, tags: [], revisions: [] });
    for (const t of tags) byId.get(Number(t.repository_id))?.tags.push([t.name, t.digest]);
    for (const m of revs) byId.get(Number(m.repository_id))?.revisions.push(m.digest);
    return sortedSnapshot([...byId.values()]);
  });
}

/** MetadataStore.repository. */
export async function readRepository(db: SqlDatabase, name: string): Promise<RepositoryRecord | undefined> {
  const [row] = await db.all<{ id: number; last_push: number }>(
    'SELECT id, last_push FROM repositories WHERE name = ?',
    [name],
  );
  if (!row) return undefined;
  const id = Number(row.id);
  const tags = await db.all<{ name: string; digest: string }>(
    'SELECT name, digest FROM tags WHERE repository_id = ? ORDER BY name',
    [id],
  );
  const revs = await db.all<{ digest: string }>('SELECT digest FROM manifests WHERE repository_id = ?', [id]);
  return {
    tags: new Map(tags.map((t) => [t.name, t.digest])),
    revisions: new Set(revs.map((r) => r.digest)),
    lastPush: Number(row.last_push),
  };
}

/** MetadataStore.referrers, in the repository `id` (undefined: no such repository). */
export async function readReferrers(
  db: SqlDatabase,
  id: number | undefined,
  subject: string,
): Promise<ReferrerFacts[] | undefined> {
  if (id === undefined) return [];
  const unknown = await db.all('SELECT 1 AS x FROM manifests WHERE repository_id = ? AND media_type IS NULL LIMIT 1', [
    id,
  ]);
  if (unknown.length > 0) return undefined;
  const rows = await db.all<{ digest: string; media_type: string; size: number; artifact_type: string | null }>(
    `SELECT digest, media_type, size, artifact_type FROM manifests
     WHERE repository_id = ? AND subject_digest = ? ORDER BY digest`,
    [id, subject],
  );
  return rows.map((r) => {
    const out: ReferrerFacts = { digest: r.digest, mediaType: r.media_type, size: Number(r.size) };
    if (r.artifact_type !== null) out.artifactType = r.artifact_type;
    return out;
  });
}
