import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStore } from '../../src/registry/metadata/postgres-store.js';
import { MIGRATIONS } from '../../src/registry/metadata/migrations.js';
import { Membership } from '../../src/registry/metadata/instances.js';
import { recoverIntents, SHARED_INTENT_AGE_MS } from '../../src/registry/metadata/recover.js';
import { MemoryDriver } from '../../src/registry/storage/memory-driver.js';
import { pathFor } from '../../src/registry/storage/paths.js';
import { RegistryStore } from '../../src/registry/storage/store.js';
import { metadataContract } from '../helpers/metadata-contract.js';
import { quotaUsageContract } from '../helpers/metadata-quota-contract.js';
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
  quotaUsageContract('postgres', async () => {
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

  it('runs a statement with parameters as a named prepared statement, executed again by name', async () => {
    const db = await pg.createDatabase();
    await pg.psql(`ALTER DATABASE ${db.database} SET log_statement = 'all'`);
    const store = await openPostgresStore({ url: db.url, password: db.password, max: 1 });
    await store.setTag('prepared', 'v1', `sha256:${'b'.repeat(64)}`);
    for (let i = 0; i < 3; i++) expect(await store.tagTarget('prepared', 'v1')).toBe(`sha256:${'b'.repeat(64)}`);
    await store.close();
    // pg logs each execution of the extended protocol as "execute NAME: TEXT", <unnamed> for an unnamed one.
    const executes = (await pg.serverLog())
      .split('\n')
      .map((l) => /execute ([^:]+): SELECT t\.digest FROM tags t JOIN repositories/.exec(l)?.[1])
      .filter((name) => name !== undefined);
    expect(executes).toHaveLength(3);
    expect(new Set(executes).size).toBe(1);
    expect(executes[0]).toMatch(/^regctl_\d+$/);
  });

  it('applies migrations once when two replicas open the database together, and records the version', async () => {
    const db = await pg.createDatabase();
    const [a, b] = await Promise.all([
      openPostgresStore({ url: db.url, password: db.password }),
      openPostgresStore({ url: db.url, password: db.password }),
    ]);
    await a.setTag('shared', 'v1', `sha256:${'a'.repeat(64)}`);
    expect(await b.tagTarget('shared', 'v1')).toBe(`sha256:${'a'.repeat(64)}`);
    expect(await pg.psql('SELECT version FROM schema_migrations ORDER BY version', db.database)).toBe(
      MIGRATIONS.map((m) => m.version).join('\n'),
    );
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

  it('flushes pull times while other replicas put the same manifests, without a deadlock', async () => {
    const db = await pg.createDatabase();
    const open = () => openPostgresStore({ url: db.url, password: db.password });
    const [puller, pusher] = await Promise.all([open(), open()]);
    const digests = Array.from({ length: 4 }, (_, i) => `sha256:${String(i).repeat(64)}`);
    const facts = { mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 10, references: [] };
    for (const d of digests) await pusher.addManifest('r', d, 1, facts, { tags: ['latest'] });
    let at = 1_000_000;
    const errors: string[] = [];
    // A replica flushing pulls (the repository's row, then the manifests' rows) while another puts the same
    // manifests again (the same rows in the same order), 150 times each.
    await Promise.all([
      (async () => {
        for (let i = 0; i < 150; i++) {
          at += 60_001;
          puller.notePull('r', at);
          for (const d of digests) puller.noteManifestPull('r', d, at);
          await puller.flush().catch((err: Error) => errors.push(`flush: ${err.message}`));
        }
      })(),
      (async () => {
        for (let i = 0; i < 150; i++) {
          const d = digests[i % digests.length] as string;
          await pusher.addManifest('r', d, 2 + i, facts, { tags: ['latest'] }).catch((err: Error) => {
            errors.push(`put: ${err.message}`);
          });
        }
      })(),
    ]);
    expect(errors).toEqual([]);
    await Promise.all([puller.close(), pusher.close()]);
  });

  it('keeps a manifest put into a repository that another replica empties at the same moment', async () => {
    const db = await pg.createDatabase();
    const open = () => openPostgresStore({ url: db.url, password: db.password });
    const [pusher, deleter] = await Promise.all([open(), open()]);
    const facts = { mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 10, references: [] };
    const digest = (c: string, i: number) => `sha256:${c}${String(i).padStart(63, '0')}`;
    const errors: string[] = [];
    const lost: string[] = [];
    // Each round the deleter removes the repository's only image (its last tag, then its revision, which drops the
    // emptied repository) while the pusher puts a new one in it; the new one must survive whatever the timing.
    for (let i = 0; i < 150; i++) {
      await deleter.addManifest('r', digest('a', i), 1, facts, { tags: ['old'] });
      const fresh = digest('b', i);
      await Promise.all([
        (async () => {
          await deleter.removeTag('r', 'old');
          await deleter.removeRevision('r', digest('a', i));
        })().catch((err: Error) => errors.push(`delete ${i}: ${err.message}`)),
        pusher
          .addManifest('r', fresh, 2, facts, { tags: [`new-${i}`] })
          .catch((err: Error) => errors.push(`put ${i}: ${err.message}`)),
      ]);
      if ((await deleter.tagTarget('r', `new-${i}`)) !== fresh || !(await deleter.hasRevision('r', fresh)))
        lost.push(`round ${i}`);
      await pusher.removeTag('r', `new-${i}`);
      await pusher.removeRevision('r', fresh);
    }
    expect({ errors, lost }).toEqual({ errors: [], lost: [] });
    await Promise.all([pusher.close(), deleter.close()]);
  });

  it('finishes at once the intents of a process found gone, even while an older one lives; never a live one', async () => {
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
    const gone = await me.goneOwners();
    // The dead process's intent carries its id: finished at once, though `live` started before it and still runs;
    // the live process's own intent stays until it ends it (or dies).
    expect(gone?.deadOwners).toHaveLength(1);
    expect(await recoverIntents(store, Date.now(), gone)).toBe(1);
    expect(await restarted.tagTarget('r', 'half')).toBeUndefined();
    expect((await restarted.pendingIntents()).map((i) => i.key)).toEqual(['busy']);
    await alive.leave();
    // Now no other process runs: the rest belongs to gone processes and is finished (storage holds no tag).
    const after = await me.goneOwners();
    expect(await recoverIntents(store, Date.now(), after)).toBe(1);
    expect(await restarted.tagTarget('r', 'busy')).toBeUndefined();
    // The dead process was dropped from the list, the one that left took itself off: only this one remains.
    expect(Object.keys(JSON.parse((await restarted.getMeta('instances')) ?? '{}') as object)).toHaveLength(1);
    await me.leave();
    await Promise.all([live.close(), restarted.close()]);
  });

  it("leaves a write made after a dead process's delete of the same tag and manifest; finishes a delete left alone", async () => {
    const db = await pg.createDatabase();
    const index = await openPostgresStore({ url: db.url, password: db.password });
    const store = new RegistryStore(new MemoryDriver(), index);
    const oci = 'application/vnd.oci.image.manifest.v1+json';
    const config = {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: `sha256:${'1'.repeat(64)}`,
      size: 2,
    };
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: oci, config, layers: [] }));
    const put = () => store.manifests.put('r', { tag: 'v1' }, body, oci, [], { lazy: true });
    const { digest } = await put();
    const links = () =>
      Promise.all(
        [
          pathFor({ kind: 'revisionLink', name: 'r', digest }),
          pathFor({ kind: 'tagCurrentLink', name: 'r', tag: 'v1' }),
        ].map((p) =>
          store.driver.getContent(p).then(
            () => true,
            () => false,
          ),
        ),
      );
    // A delete by digest on a process that died after its metadata steps: rows gone, storage not yet.
    const dieMidDelete = async (owner: string) => {
      index.intentOwner = owner;
      await index.beginIntent('tag-delete', 'r', 'v1');
      await index.removeTag('r', 'v1');
      await index.beginIntent('revision-delete', 'r', digest.value);
      await index.removeRevision('r', digest.value);
      index.intentOwner = undefined;
    };
    await dieMidDelete('dead-1');
    // The client's retry on a live replica writes both again and is answered; finishing the delete would undo it.
    await put();
    expect(await recoverIntents(store, Date.now(), { before: 0, deadOwners: ['dead-1'] })).toBe(2);
    expect(await index.tagTarget('r', 'v1')).toBe(digest.value);
    expect(await index.hasRevision('r', digest.value)).toBe(true);
    expect(await links()).toEqual([true, true]);
    // The same death with nothing written after it: the delete is finished in storage.
    await dieMidDelete('dead-2');
    expect(await recoverIntents(store, Date.now(), { before: 0, deadOwners: ['dead-2'] })).toBe(2);
    expect(await links()).toEqual([false, false]);
    await index.close();
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
