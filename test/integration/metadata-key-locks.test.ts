import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStore } from '../../src/registry/metadata/postgres-store.js';
import type { SqlMetadataStore } from '../../src/registry/metadata/sql-store.js';
import { gate, settledWithin } from '../helpers/gate.js';
import { postgresAvailable, startPostgres, type PostgresCluster } from '../helpers/postgres.js';

/** A section to hold a key with: entered (the gate reached), then left when the test opens the gate. */
function section(): { entered: Promise<void>; leave: () => void; fn: () => Promise<string> } {
  const g = gate();
  return {
    entered: g.reached,
    leave: g.open,
    fn: async () => {
      await g.wait();
      return 'done';
    },
  };
}

/** `holdKeys` on PostgreSQL (key-locks.ts): two stores on one database stand for two replicas. */
describe.skipIf(!postgresAvailable())('locks on revisions and tags across processes (PostgreSQL)', () => {
  let pg: PostgresCluster;
  let a: SqlMetadataStore;
  let b: SqlMetadataStore;
  let database: string;
  beforeAll(async () => {
    pg = await startPostgres();
    const db = await pg.createDatabase();
    database = db.database;
    [a, b] = await Promise.all([
      openPostgresStore({ url: db.url, password: db.password }),
      openPostgresStore({ url: db.url, password: db.password }),
    ]);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await pg?.stop();
  });

  it('keeps a key from another store while held, and not other keys', async () => {
    const s = section();
    const held = a.holdKeys(['repo@sha256:1', 'repo:v1'], s.fn);
    await s.entered;
    const same = b.holdKeys(['repo:v1', 'repo:v2'], async () => 'b');
    expect(await b.holdKeys(['repo:v2'], async () => 'other key')).toBe('other key');
    expect(await settledWithin(same, 300)).toBe(false);
    s.leave();
    expect(await held).toBe('done');
    expect(await same).toBe('b');
  });

  it('keeps a key from another caller of the same store (the server lock alone would let it in again)', async () => {
    const s = section();
    const held = a.holdKeys(['repo:v3'], s.fn);
    await s.entered;
    const again = a.holdKeys(['repo:v3'], async () => 'second');
    expect(await settledWithin(again, 300)).toBe(false);
    s.leave();
    await held;
    expect(await again).toBe('second');
  });

  it('frees a key when the session holding it ends, as when its process dies', async () => {
    const s = section();
    const held = a.holdKeys(['repo:v4'], s.fn);
    await s.entered;
    const waiting = b.holdKeys(['repo:v4'], async () => 'taken over');
    expect(await settledWithin(waiting, 300)).toBe(false);
    await pg.psql(
      `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'regctl-locks' AND datname = '${database}' AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)`,
      database,
    );
    expect(await waiting).toBe('taken over');
    s.leave();
    expect(await held).toBe('done');
    // The store whose connection was cut takes keys again on a new one.
    expect(await a.holdKeys(['repo:v4'], async () => 'again')).toBe('again');
  });

  it('gives back the keys of a section that throws', async () => {
    await expect(a.holdKeys(['repo:v5'], () => Promise.reject(new Error('planted')))).rejects.toThrow('planted');
    expect(await b.holdKeys(['repo:v5'], async () => 'free')).toBe('free');
  });
});
