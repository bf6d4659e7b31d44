/**
 * What the SQL metadata store needs of a database (SQLite or PostgreSQL), and multi-row inserts: one statement
 * per `ROWS_PER_STATEMENT` rows instead of one per row, which is what makes an import over a network connection
 * (PostgreSQL) take round trips per repository rather than per tag.
 */
import type { LeaseAttempt } from './lease.js';

export type SqlValue = string | number | null;

export interface SqlConn {
  all<T extends object>(sql: string, params?: SqlValue[]): Promise<T[]>;
  /** Runs a statement; returns how many rows it changed. */
  run(sql: string, params?: SqlValue[]): Promise<number>;
}

export interface SqlDatabase extends SqlConn {
  readonly kind: 'sqlite' | 'postgres';
  /** Runs `fn` in one write transaction; a throw rolls it back. */
  tx<T>(fn: (c: SqlConn) => Promise<T>): Promise<T>;
  /** See MetadataStore.exclusive. */
  exclusive<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** See MetadataStore.tryLease; a database without it (SQLite: one process) leases in-process. */
  tryLease?(name: string, holder: string): Promise<LeaseAttempt>;
  /** See MetadataStore.holdKeys; a database without it (SQLite: one process) runs `fn` at once. */
  holdKeys?<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

const ROWS_PER_STATEMENT = 500;

export async function insertRows(
  c: SqlConn,
  table: string,
  columns: readonly string[],
  rows: readonly SqlValue[][],
  onConflict = '',
): Promise<void> {
  const one = `(${columns.map(() => '?').join(', ')})`;
  for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
    const chunk = rows.slice(i, i + ROWS_PER_STATEMENT);
    await c.run(
      `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${chunk.map(() => one).join(', ')}${onConflict}`,
      chunk.flat(),
    );
  }
}

/** Points a tag of the repository `repositoryId` at `digest`, creating the tag or moving it. */
export async function upsertTag(c: SqlConn, repositoryId: number, tag: string, digest: string): Promise<void> {
  await c.run(
    `INSERT INTO tags (repository_id, name, digest, updated_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (repository_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
    [repositoryId, tag, digest, Date.now()],
  );
}
