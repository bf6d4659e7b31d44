/**
 * The statements on one repository's rows that the SQL store's writes share, run in the caller's transaction.
 *
 * The lock order of every write: a repository's row first, then its tags and manifests. On PostgreSQL (READ
 * COMMITTED) a replica dropping a repository it saw empty could otherwise drop it under a manifest that another
 * replica was putting into it, leaving the acknowledged manifest pointing at no repository; with the row locked,
 * the drop waits for the put and then sees its manifest. SQLite runs one write transaction at a time already.
 */
import type { SqlConn, SqlDatabase } from './sql.js';
import { insertRows } from './sql.js';
import type { ManifestFacts } from './store.js';

/** Rounds of lock-or-insert before ensureRepository gives up (each miss needs another writer to win a race). */
const ENSURE_ROUNDS = 5;

/**
 * The repository's id, its row locked until the transaction ends (PostgreSQL: `FOR UPDATE`, which waits for a
 * transaction holding it and sees the row as that one left it); undefined when there is no such repository.
 */
export async function lockRepository(c: SqlConn, kind: SqlDatabase['kind'], name: string): Promise<number | undefined> {
  const lock = kind === 'postgres' ? ' FOR UPDATE' : '';
  const rows = await c.all<{ id: number }>(`SELECT id FROM repositories WHERE name = ?${lock}`, [name]);
  return rows[0] === undefined ? undefined : Number(rows[0].id);
}

/** The repository's id, created if missing, its row locked as `lockRepository` leaves it. */
export async function ensureRepository(
  c: SqlConn,
  kind: SqlDatabase['kind'],
  name: string,
): Promise<{ id: number; created: boolean }> {
  // A miss means another transaction created or dropped the row between the two statements: a few rounds settle
  // it unless something keeps racing, which is then an error rather than a wrong id.
  for (let round = 0; round < ENSURE_ROUNDS; round++) {
    const found = await lockRepository(c, kind, name);
    if (found !== undefined) return { id: found, created: false };
    const [created] = await c.all<{ id: number }>(
      'INSERT INTO repositories (name) VALUES (?) ON CONFLICT (name) DO NOTHING RETURNING id',
      [name],
    );
    if (created !== undefined) return { id: Number(created.id), created: true };
  }
  throw new Error(`repository ${name} was created and dropped ${ENSURE_ROUNDS} times while being written`);
}

/** Drops the repository's row if it has no tag and no manifest left; true when it did. */
export async function dropRepositoryIfEmpty(c: SqlConn, id: number): Promise<boolean> {
  const dropped = await c.run(
    `DELETE FROM repositories WHERE id = ?
     AND NOT EXISTS (SELECT 1 FROM tags WHERE repository_id = ?)
     AND NOT EXISTS (SELECT 1 FROM manifests WHERE repository_id = ?)`,
    [id, id, id],
  );
  return dropped > 0;
}

/** Writes a manifest's row (or rewrites it) and the digests it references. */
export async function insertManifest(c: SqlConn, id: number, digest: string, at: number, f: ManifestFacts) {
  await c.run(
    `INSERT INTO manifests (repository_id, digest, media_type, size, config_digest, subject_digest, artifact_type,
       pushed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (repository_id, digest) DO UPDATE SET media_type = excluded.media_type, size = excluded.size,
       config_digest = excluded.config_digest, subject_digest = excluded.subject_digest,
       artifact_type = excluded.artifact_type, pushed_at = excluded.pushed_at`,
    [id, digest, f.mediaType, f.size, f.configDigest ?? null, f.subject ?? null, f.artifactType ?? null, at],
  );
  await c.run('DELETE FROM manifest_references WHERE repository_id = ? AND manifest_digest = ?', [id, digest]);
  await insertRows(
    c,
    'manifest_references',
    ['repository_id', 'manifest_digest', 'digest', 'size'],
    f.references.map((r) => [id, digest, r.digest, r.size]),
    ' ON CONFLICT (repository_id, manifest_digest, digest) DO NOTHING',
  );
}
