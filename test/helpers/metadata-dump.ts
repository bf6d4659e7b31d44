import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';

/** Where `regctl serve` keeps its SQLite metadata store, relative to the data directory. */
export const METADATA_FILE = 'regctl/metadata.sqlite';

/** The store's own companion files (WAL and its index): their bytes move with checkpoints, not with content. */
export function isMetadataCompanion(rel: string): boolean {
  return rel.startsWith(`${METADATA_FILE}-`);
}

/**
 * The metadata store's SQLite file as a hash of its logical content: repositories, tags, manifests and their
 * references, intents and meta. Left out: the file's bytes (pages and the WAL move on their own, as checkpoints
 * and the batched bookkeeping below run) and that bookkeeping itself (last use of a digest, last pull of a
 * repository), which reads record by design.
 */
export function metadataDump(path: string): string {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const rows: unknown[] = [];
    for (const [table, order] of [
      ['repositories', 'name'],
      ['tags', 'repository_id, name'],
      ['manifests', 'repository_id, digest'],
      ['manifest_references', 'repository_id, manifest_digest, digest'],
      ['intents', 'id'],
      ['meta', 'key'],
    ] as const) {
      const cols = table === 'repositories' ? 'id, name, last_push' : '*';
      rows.push(table, db.prepare(`SELECT ${cols} FROM ${table} ORDER BY ${order}`).all());
    }
    return createHash('sha256').update(JSON.stringify(rows)).digest('hex');
  } finally {
    db.close();
  }
}
