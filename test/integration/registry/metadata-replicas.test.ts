import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postgresAvailable, startPostgres, writePasswordFile, type PostgresCluster } from '../../helpers/postgres.js';
import { pushImage, startRegistry, type TestRegistry } from '../../unit/registry/helpers.js';

/**
 * Two registries on one data directory and one PostgreSQL metadata store (a throwaway cluster), as replicas
 * behind a load balancer would be: what one writes, the other serves at its next request; a restart does not
 * walk storage; a PostgreSQL restart costs no registry restart; the password never reaches a log.
 */
describe.skipIf(!postgresAvailable())('registries sharing a PostgreSQL metadata store', () => {
  let pg: PostgresCluster;
  let secrets: string;
  let password: string;
  let url: string;
  let a: TestRegistry;
  let b: TestRegistry;
  const replica = (dataDir?: string): Promise<TestRegistry> =>
    startRegistry({
      auth: false,
      metadata: { kind: 'postgres', url },
      metadataPasswordFile: join(secrets, 'metadata-password'),
      ...(dataDir ? { dataDir } : {}),
    });

  beforeAll(async () => {
    pg = await startPostgres();
    const db = await pg.createDatabase();
    ({ url, password } = db);
    secrets = await mkdtemp(join(tmpdir(), 'regctl-pg-secret-'));
    await writePasswordFile(secrets, password);
    a = await replica();
    b = await replica(a.data);
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await pg?.stop();
    if (secrets) await rm(secrets, { recursive: true, force: true });
  });

  it('a push on one is served by the other at once: manifest, tags, catalog; a tag delete on the other is seen back', async () => {
    const img = await pushImage(a, 'team/app', 'v1');
    await pushImage(a, 'team/app', 'v2');
    const got = await b.fetch('/v2/team/app/manifests/v1', {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(got.status).toBe(200);
    expect(got.headers.get('docker-content-digest')).toBe(img.digest);
    expect(await (await b.fetch('/v2/team/app/tags/list')).json()).toEqual({ name: 'team/app', tags: ['v1', 'v2'] });
    expect(await (await b.fetch('/v2/_catalog')).json()).toEqual({ repositories: ['team/app'] });
    expect((await b.fetch('/v2/team/app/manifests/v2', { method: 'DELETE' })).status).toBe(202);
    expect(await (await a.fetch('/v2/team/app/tags/list')).json()).toEqual({ name: 'team/app', tags: ['v1'] });
  });

  it('a restarted replica does not import storage again', async () => {
    const c = await replica(a.data);
    try {
      expect(c.logs.filter((l) => l.includes('importing storage'))).toEqual([]);
      expect(await (await c.fetch('/v2/team/app/tags/list')).json()).toEqual({ name: 'team/app', tags: ['v1'] });
    } finally {
      await c.stop();
    }
    expect(a.logs.filter((l) => l.includes('imported storage into the metadata store'))).toHaveLength(1);
  });

  it('keeps serving after PostgreSQL restarts, without a registry restart', async () => {
    await pg.restart();
    // The pool drops connections the server closed, so the first request after the restart already succeeds.
    expect((await a.fetch('/v2/team/app/tags/list')).status).toBe(200);
    expect((await b.fetch('/v2/team/app/manifests/v1', { method: 'HEAD' })).status).toBe(200);
    await pushImage(b, 'team/other', 'v1');
    expect(await (await a.fetch('/v2/_catalog')).json()).toEqual({ repositories: ['team/app', 'team/other'] });
  });

  it('replicas starting together on a volume the store has not seen import it once', async () => {
    const db = await pg.createDatabase();
    const shared = { kind: 'postgres' as const, url: db.url };
    const dir = await mkdtemp(join(tmpdir(), 'regctl-pg-secret2-'));
    const file = await writePasswordFile(dir, db.password);
    const [c, d] = await Promise.all([
      startRegistry({ auth: false, dataDir: a.data, metadata: shared, metadataPasswordFile: file }),
      startRegistry({ auth: false, dataDir: a.data, metadata: shared, metadataPasswordFile: file }),
    ]);
    try {
      const imports = [...c.logs, ...d.logs].filter((l) => l.includes('imported storage into the metadata store'));
      expect(imports).toHaveLength(1);
      expect(await (await d.fetch('/v2/_catalog')).json()).toEqual({ repositories: ['team/app', 'team/other'] });
    } finally {
      await c.stop();
      await d.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('answers /healthz 503 while PostgreSQL is down, and 200 again once it is back, without a restart', async () => {
    expect((await a.fetch('/healthz')).status).toBe(200);
    await pg.halt();
    try {
      const down = await a.fetch('/healthz');
      expect(down.status).toBe(503);
      expect(down.headers.get('retry-after')).toBe('5');
      expect(await down.json()).toEqual({ status: 'unavailable', reason: 'metadata store unreachable' });
    } finally {
      await pg.start();
    }
    expect((await a.fetch('/healthz')).status).toBe(200);
    expect((await a.fetch('/v2/team/app/tags/list')).status).toBe(200);
  });

  it('never writes the database password to a log', () => {
    expect([...a.logs, ...b.logs].join('\n')).not.toContain(password);
  });
});
