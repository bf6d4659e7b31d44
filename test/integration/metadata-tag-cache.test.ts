/**
 * The replicas' tag cache (src/registry/metadata/tag-cache.ts) on a real PostgreSQL: two stores on one database
 * stand for two replicas. A tag changed through one is what the other answers next, every time, although the
 * other answers from memory in between; a replica whose listening connection is cut stops answering from memory.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStore } from '../../src/registry/metadata/postgres-store.js';
import type { SqlMetadataStore } from '../../src/registry/metadata/sql-store.js';
import { postgresAvailable, startPostgres, type PostgresCluster } from '../helpers/postgres.js';

const digest = (i: number) => `sha256:${i.toString(16).padStart(64, '0')}`;

async function untilUsable(...stores: SqlMetadataStore[]): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!stores.every((s) => s.tagCacheState?.usable)) {
    if (Date.now() > deadline) throw new Error('the tag caches did not become usable within 15 s');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!postgresAvailable())('tag cache of replicas on PostgreSQL', () => {
  let pg: PostgresCluster;
  beforeAll(async () => {
    pg = await startPostgres();
  });
  afterAll(async () => {
    await pg?.stop();
  });

  async function twoReplicas(): Promise<{ a: SqlMetadataStore; b: SqlMetadataStore; database: string }> {
    const db = await pg.createDatabase();
    const a = await openPostgresStore({ url: db.url, password: db.password });
    const b = await openPostgresStore({ url: db.url, password: db.password });
    return { a, b, database: db.database };
  }

  /** Two replicas with revisions 1..`revisions` of app, app:latest at 1, and `b` answering it from memory. */
  async function cachedLatest(revisions: number) {
    const r = await twoReplicas();
    for (let i = 1; i <= revisions; i++) await r.a.addRevision('app', digest(i), Date.now());
    await r.a.setTag('app', 'latest', digest(1));
    await untilUsable(r.a, r.b);
    expect(await r.b.tagRevision('app', 'latest')).toBe(digest(1));
    expect(await r.b.tagRevision('app', 'latest')).toBe(digest(1));
    const hits = r.b.tagCacheState?.hits ?? 0;
    expect(hits).toBeGreaterThan(0);
    return { ...r, hits };
  }

  it('answers the next read on one replica with the tag just moved or deleted on the other, though it reads from memory', async () => {
    const { a, b } = await twoReplicas();
    const rounds = 150;
    for (let i = 0; i <= rounds; i++) await a.addRevision('app', digest(i), Date.now());
    await a.setTag('app', 'latest', digest(0));
    await untilUsable(a, b);
    const stale: string[] = [];
    for (let i = 1; i <= rounds; i++) {
      const [writer, reader] = i % 2 === 0 ? [a, b] : [b, a];
      // Twice: the first read fills the reader's cache, the second is answered from it.
      expect(await reader.tagRevision('app', 'latest')).toBe(digest(i - 1));
      expect(await reader.tagRevision('app', 'latest')).toBe(digest(i - 1));
      await writer.setTag('app', 'latest', digest(i));
      const seen = await reader.tagRevision('app', 'latest');
      if (seen !== digest(i)) stale.push(`round ${i}: ${seen}`);
    }
    expect(stale).toEqual([]);
    const hits = (a.tagCacheState?.hits ?? 0) + (b.tagCacheState?.hits ?? 0);
    expect(hits).toBeGreaterThanOrEqual(rounds);

    expect(await b.tagRevision('app', 'latest')).toBe(digest(rounds));
    await a.removeTag('app', 'latest');
    expect(await b.tagRevision('app', 'latest')).toBeUndefined();
    await a.setTag('app', 'v1', digest(1));
    expect(await b.tagRevision('app', 'v1')).toBe(digest(1));
    expect(await b.tagRevision('app', 'v1')).toBe(digest(1));
    await a.removeRevision('app', digest(1));
    expect(await b.tagRevision('app', 'v1')).toBeUndefined();
    await Promise.all([a.close(), b.close()]);
  });

  it('drops what another program changed (an older regctl, SQL by hand): the database itself notifies', async () => {
    const { a, b, database, hits } = await cachedLatest(3);
    // No writer waits for these: the notification arrives just after the commit.
    const eventually = async (want: string | undefined): Promise<string | undefined> => {
      const deadline = Date.now() + 5000;
      let seen = await b.tagRevision('app', 'latest');
      while (seen !== want && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        seen = await b.tagRevision('app', 'latest');
      }
      return seen;
    };
    await pg.psql(`UPDATE tags SET digest = '${digest(2)}' WHERE name = 'latest'`, database);
    expect(await eventually(digest(2))).toBe(digest(2));
    expect(await b.tagRevision('app', 'latest')).toBe(digest(2));
    expect(b.tagCacheState?.hits).toBeGreaterThan(hits);
    await pg.psql(`DELETE FROM manifests WHERE digest = '${digest(2)}'`, database);
    expect(await eventually(undefined)).toBeUndefined();
    await pg.psql(
      `INSERT INTO tags (repository_id, name, digest, updated_at)
      SELECT id, 'latest', '${digest(3)}', 0 FROM repositories WHERE name = 'app'
      ON CONFLICT (repository_id, name) DO UPDATE SET digest = excluded.digest`,
      database,
    );
    expect(await eventually(digest(3))).toBe(digest(3));
    await Promise.all([a.close(), b.close()]);
  });

  it('waits for a peer that stays silent no longer than the validity period, and not at all once it said goodbye', async () => {
    const { a, b, database } = await twoReplicas();
    await a.addRevision('app', digest(1), Date.now());
    await untilUsable(a, b);
    // A third process that beats on the channel but never acknowledges (one hung between its beats and its work).
    const beat = (n: number) => pg.psql(`SELECT pg_notify('regctl_tag_cache', 'h silent-peer ${n}')`, database);
    await beat(1);
    const started = performance.now();
    await a.setTag('app', 'latest', digest(1));
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(900);
    expect(waited).toBeLessThan(5000);
    await pg.psql(`SELECT pg_notify('regctl_tag_cache', 'b silent-peer')`, database);
    await new Promise((r) => setTimeout(r, 100));
    const again = performance.now();
    await a.setTag('app', 'latest', digest(1));
    expect(performance.now() - again).toBeLessThan(900);
    await Promise.all([a.close(), b.close()]);
  });

  it('stops answering from memory when its listening connection is cut, and answers again once it is back', async () => {
    const { a, b, database, hits: hitsBefore } = await cachedLatest(2);

    const killed = await pg.psql(
      `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
       WHERE datname = '${database}' AND application_name = 'regctl-listener'`,
    );
    expect(killed).toBe('2');
    // The client learns of the termination from the server's message on that connection.
    const deadline = Date.now() + 5000;
    while (b.tagCacheState?.usable && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(b.tagCacheState?.usable).toBe(false);
    // Both replicas lost their listeners: the write waits out the validity period, the read asks the database.
    await a.setTag('app', 'latest', digest(2));
    expect(await b.tagRevision('app', 'latest')).toBe(digest(2));
    expect(b.tagCacheState?.hits).toBe(hitsBefore);

    await untilUsable(a, b);
    expect(await b.tagRevision('app', 'latest')).toBe(digest(2));
    await a.setTag('app', 'latest', digest(1));
    expect(await b.tagRevision('app', 'latest')).toBe(digest(1));
    expect(await b.tagRevision('app', 'latest')).toBe(digest(1));
    expect(b.tagCacheState?.hits).toBeGreaterThan(hitsBefore);
    await Promise.all([a.close(), b.close()]);
  });
});
