/**
 * Per-repository usage in the SQL metadata store, as `stats().bytes` reports it and quotas (policy/quota.ts)
 * count it: the distinct digests of the repository's manifests and of what they reference, each counted once
 * with its size, so a blob shared by two layers or two manifests of the repository counts once. An indexed read
 * of the repository's own rows, no storage walk; and on a store no other process writes, the sum is kept between
 * writes to the repository (`RepositoryBytesCache`), so a push's uploads do not add it up again each time.
 */
import type { SqlConn } from './sql.js';
import type { QuotaUsage, SizedDigest } from './store.js';

/** The bytes of repository `?` (its id, given twice). */
export const REPOSITORY_BYTES_SQL = `SELECT sum(size) FROM (
  SELECT digest, max(size) AS size FROM (
    SELECT digest, size FROM manifests WHERE repository_id = ? AND size IS NOT NULL
    UNION ALL SELECT digest, size FROM manifest_references WHERE repository_id = ?
  ) AS u GROUP BY digest
) AS g`;

/** Digests are checked in batches, twice this many parameters a statement (SQLite allowed 999 before 3.32). */
const BATCH = 400;

/**
 * Each repository's bytes by name, kept until the store writes that repository's manifests (`drop`, called after
 * the write). A sum computed while a write ran is not kept: the write's `drop` bumps the name's generation.
 * Disabled on a shared store, where other processes write.
 */
export class RepositoryBytesCache {
  private readonly bytes = new Map<string, number>();
  private readonly generations = new Map<string, number>();
  private clears = 0;

  constructor(private readonly enabled: boolean) {}

  async get(name: string, compute: () => Promise<number>): Promise<number> {
    const hit = this.bytes.get(name);
    if (hit !== undefined) return hit;
    const generation = this.generation(name);
    const value = await compute();
    if (this.enabled && this.generation(name) === generation) this.bytes.set(name, value);
    return value;
  }

  /** After a write to the manifests of `name`, or of every repository when no name is given. */
  drop(name?: string): void {
    if (name === undefined) this.clears++;
    else this.generations.set(name, (this.generations.get(name) ?? 0) + 1);
    if (name === undefined) this.bytes.clear();
    else this.bytes.delete(name);
  }

  private generation(name: string): string {
    return `${this.clears}:${this.generations.get(name) ?? 0}`;
  }
}

/** MetadataStore.quotaUsage for repository `name` with id `id` (undefined: not in the store, holds nothing). */
export async function readQuotaUsage(
  c: SqlConn,
  cache: RepositoryBytesCache,
  name: string,
  id: number | undefined,
  adding: readonly SizedDigest[],
): Promise<QuotaUsage> {
  const sizes = new Map<string, number>();
  for (const d of adding) sizes.set(d.digest, Math.max(d.size, sizes.get(d.digest) ?? 0));
  if (id === undefined) return { bytes: 0, added: [...sizes.values()].reduce((a, b) => a + b, 0) };
  const bytes = await cache.get(name, async () => {
    const [row] = await c.all<{ bytes: number | null }>(`SELECT (${REPOSITORY_BYTES_SQL}) AS bytes`, [id, id]);
    return Number(row?.bytes ?? 0);
  });
  const digests = [...sizes.keys()];
  for (let i = 0; i < digests.length; i += BATCH) {
    const batch = digests.slice(i, i + BATCH);
    const marks = batch.map(() => '?').join(', ');
    const held = await c.all<{ digest: string }>(
      `SELECT digest FROM manifests WHERE repository_id = ? AND digest IN (${marks})
       UNION SELECT digest FROM manifest_references WHERE repository_id = ? AND digest IN (${marks})`,
      [id, ...batch, id, ...batch],
    );
    for (const h of held) sizes.delete(h.digest);
  }
  return { bytes, added: [...sizes.values()].reduce((a, b) => a + b, 0) };
}
