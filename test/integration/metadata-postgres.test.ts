import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStore } from '../../src/registry/metadata/postgres-store.js';
import { Membership } from '../../src/registry/metadata/instances.js';
import { recoverIntents, SHARED_INTENT_AGE_MS } from '../../src/registry/metadata/recover.js';
import { MemoryDriver } from '../../src/registry/storage/memory-driver.js';
import { RegistryStore } from '../../src/registry/storage/store.js';
import { metadataContract } from '../helpers/metadata-contract.js';
import { postgresAvailable, startPostgres, type PostgresCluster } from '../helpers/postgres.js';

/** The metadata store contract on a real PostgreSQL (a throwaway cluster), plus what only a server shows. */
describe.skipIf(!postgresAvailable())('PostgreSQL metadata store', () => {
  let pg: PostgresCluster;
  beforeAll(async () => {
    pg = await startPostgres();
  });
  afterAll(async () => {
    await pg?.stop();
  });

  metadataContract('postgres', async () => {
    const db = await pg.createDatabase();
    return openPostgresStore({ url: db.url, password: db.password });
  });

  it('orders names bytewise although the database collation is a linguistic one', async () => {
    const db = await pg.createDatabase({ icuLocale: 'en-US' });
    // The database's own order differs from bytewise: without COLLATE "C" on the columns, pages would too.
    expect(
      await pg.psql(
        `SELECT string_agg(n, ',' ORDER BY n) FROM (VALUES ('a_b'), ('ab'), ('a-b'), ('A')) v(n)`,
        db.database,
      ),
    ).not.toBe('A,a-b,a_b,ab');
    const store = await openPostgresStore({ url: db.url, password: db.password });
    for (const n of ['a_b', 'ab', 'a-b', 'A']) await store.setTag(n, 'v', `sha256:${'a'.repeat(64)}`);
    expect(await store.catalogPage(undefined, 10)).toEqual(['A', 'a-b', 'a_b', 'ab']);
    await store.close();
  });

  it('applies migrations once when two replicas open the database together, and records the version', async () => {
    const db = await pg.createDatabase();
    const [a, b] = await Promise.all([
      openPostgresStore({ url: db.url, password: db.password }),
      openPostgresStore({ url: db.url, password: db.password }),
    ]);
    await a.setTag('shared', 'v1', `sha256:${'a'.repeat(64)}`);
    expect(await b.tagTarget('shared', 'v1')).toBe(`sha256:${'a'.repeat(64)}`);
    expect(await pg.psql('SELECT version FROM schema_migrations ORDER BY version', db.database)).toBe('1\n2');
    await Promise.all([a.close(), b.close()]);
  });

  it('signals a lease lost when its connection drops, and another replica can take it', async () => {
    const db = await pg.createDatabase();
    const [a, b] = await Promise.all([
      openPostgresStore({ url: db.url, password: db.password }),
      openPostgresStore({ url: db.url, password: db.password }),
    ]);
    const held = await a.tryLease('gc', 'replica a');
    if (!('lease' in held)) throw new Error(`not granted: held by ${held.heldBy}`);
    expect(held.lease.lost.aborted).toBe(false);
    expect(await b.tryLease('gc', 'replica b')).toEqual({ heldBy: 'replica a' });
    // The server ends every session holding an advisory lock (the lease's connection), as a restart or a network
    // cut would.
    await pg.psql(
      `SELECT pg_terminate_backend(l.pid) FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted`,
      db.database,
    );
    await expect.poll(() => held.lease.lost.aborted, { timeout: 5000 }).toBe(true);
    expect(String(held.lease.lost.reason)).toMatch(/gc lease was lost/);
    const taken = await b.tryLease('gc', 'replica b');
    expect('lease' in taken).toBe(true);
    if ('lease' in taken) await taken.lease.release();
    await held.lease.release();
    await Promise.all([a.close(), b.close()]);
  });

  it('holds an exclusive section across two processes opening the same database (advisory lock)', async () => {
    const db = await pg.createDatabase();
    const [a, b] = await Promise.all([
      openPostgresStore({ url: db.url, password: db.password }),
      openPostgresStore({ url: db.url, password: db.password }),
    ]);
    const events: string[] = [];
    const section = (s: typeof a, label: string) =>
      s.exclusive('import', async () => {
        events.push(`${label}+`);
        await new Promise((r) => setTimeout(r, 100));
        events.push(`${label}-`);
      });
    await Promise.all([section(a, 'a'), section(b, 'b')]);
    // Each section ends before the other begins: a+ a- b+ b- or b+ b- a+ a-.
    expect(events[0]?.[0]).toBe(events[1]?.[0]);
    expect(events[2]?.[0]).toBe(events[3]?.[0]);
    await Promise.all([a.close(), b.close()]);
  });

  it('leaves a replica the intents of its writes in flight, and finishes those of a dead one', async () => {
    const db = await pg.createDatabase();
    const index = await openPostgresStore({ url: db.url, password: db.password });
    const store = new RegistryStore(new MemoryDriver(), index);
    await index.setTag('r', 'gone', `sha256:${'a'.repeat(64)}`);
    await index.beginIntent('tag-put', 'r', 'gone');
    expect(await recoverIntents(store)).toBe(0);
    expect(await index.tagTarget('r', 'gone')).toBeDefined();
    expect(await recoverIntents(store, Date.now() + SHARED_INTENT_AGE_MS + 1)).toBe(1);
    expect(await index.tagTarget('r', 'gone')).toBeUndefined();
    await index.close();
  });

  it('finishes at once the intents older than every live process; while an older process lives, the age rule holds', async () => {
    const db = await pg.createDatabase();
    const open = () => openPostgresStore({ url: db.url, password: db.password });
    const dead = await open();
    const live = await open();
    await Membership.join(dead);
    const alive = await Membership.join(live);
    await dead.setTag('r', 'half', `sha256:${'b'.repeat(64)}`);
    await dead.beginIntent('tag-put', 'r', 'half');
    await live.setTag('r', 'busy', `sha256:${'c'.repeat(64)}`);
    await live.beginIntent('tag-put', 'r', 'busy');
    // What dying does to a process: its connections close, and with them its lease; it never leaves the list.
    await dead.close();
    const restarted = await open();
    const me = await Membership.join(restarted);
    const store = new RegistryStore(new MemoryDriver(), restarted);
    const cutoff = await me.ownersGoneBefore();
    // live started before the intents and still runs: neither may be finished by age or by the cutoff yet.
    expect(await recoverIntents(store, Date.now(), cutoff)).toBe(0);
    expect((await restarted.pendingIntents()).map((i) => i.key).sort()).toEqual(['busy', 'half']);
    await alive.leave();
    // Now no other process runs: every intent belongs to a gone process and is finished (storage holds neither tag).
    const after = await me.ownersGoneBefore();
    expect(await recoverIntents(store, Date.now(), after)).toBe(2);
    expect(await restarted.tagTarget('r', 'half')).toBeUndefined();
    // The dead process was dropped from the list, the one that left took itself off: only this one remains.
    expect(Object.keys(JSON.parse((await restarted.getMeta('instances')) ?? '{}') as object)).toHaveLength(1);
    await me.leave();
    await Promise.all([live.close(), restarted.close()]);
  });

  it('refuses a wrong password with the server error, never echoing the password', async () => {
    const db = await pg.createDatabase();
    const err = await openPostgresStore({ url: db.url, password: 'not-the-password' }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/password authentication failed/);
    expect(err?.message).not.toContain('not-the-password');
  });
});
