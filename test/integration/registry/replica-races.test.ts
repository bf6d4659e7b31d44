import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GC_JOB_KEY } from '../../../src/registry/admin/gc.js';
import type { MetadataStore } from '../../../src/registry/metadata/store.js';
import { gate, settledWithin, type Gate } from '../../helpers/gate.js';
import { postgresAvailable, startPostgres, writePasswordFile, type PostgresCluster } from '../../helpers/postgres.js';
import { pushImage, startRegistry, type TestRegistry } from '../../unit/registry/helpers.js';

const OCI = 'application/vnd.oci.image.manifest.v1+json';

/** Pauses the store's `method` at the gate once, then lets it run. */
function pauseOnce(index: MetadataStore, method: 'removeRevision' | 'removeTag', g: Gate): void {
  const original = index[method].bind(index);
  let paused = false;
  index[method] = async (name: string, key: string) => {
    if (!paused) {
      paused = true;
      await g.wait();
    }
    return original(name, key);
  };
}

/**
 * Two registries on one data directory and one PostgreSQL store, with a write on one replica paused halfway (the
 * metadata store's method held at a gate) while the other writes the same revision or tag. Without locks held
 * across replicas, each race below leaves a tag whose manifest answers 404, or an acknowledged write undone.
 */
describe.skipIf(!postgresAvailable())('writes of one revision or tag racing on two replicas (PostgreSQL)', () => {
  let pg: PostgresCluster;
  let secrets: string;
  let a: TestRegistry;
  let b: TestRegistry;

  beforeAll(async () => {
    pg = await startPostgres();
    const db = await pg.createDatabase();
    secrets = await mkdtemp(join(tmpdir(), 'regctl-pg-races-'));
    const file = await writePasswordFile(secrets, db.password);
    const metadata = { kind: 'postgres' as const, url: db.url };
    a = await startRegistry({ auth: false, metadata, metadataPasswordFile: file });
    b = await startRegistry({ auth: false, metadata, metadataPasswordFile: file, dataDir: a.data });
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await pg?.stop();
    if (secrets) await rm(secrets, { recursive: true, force: true });
  });

  const listed = async (r: TestRegistry, repo: string): Promise<string[]> =>
    (((await (await r.fetch(`/v2/${repo}/tags/list`)).json()) as { tags?: string[] }).tags ?? []).sort();

  /** Every listed tag answers with a manifest on both replicas, and its revision link is in storage. */
  async function expectConsistent(repo: string): Promise<void> {
    for (const r of [a, b])
      for (const tag of await listed(r, repo)) {
        const got = await r.fetch(`/v2/${repo}/manifests/${tag}`, { headers: { accept: OCI } });
        expect(got.status, `${repo}:${tag} on ${r.url}`).toBe(200);
        const [alg, hex] = (got.headers.get('docker-content-digest') ?? '').split(':');
        const link = join(a.data, 'docker/registry/v2/repositories', repo, '_manifests/revisions', alg!, hex!, 'link');
        expect((await stat(link)).isFile()).toBe(true);
      }
  }

  /**
   * A's delete of `digest` in `repo`, held at the store's `method`; meanwhile B PUTs `body` as `tag`. B must wait
   * for A (no answer within 500 ms), then both are answered.
   */
  async function deleteRacingPut(
    repo: string,
    digest: string,
    method: 'removeRevision' | 'removeTag',
    tag: string,
    body: Buffer,
  ): Promise<void> {
    const g = gate();
    pauseOnce(a.server.app.store.index, method, g);
    const del = a.fetch(`/v2/${repo}/manifests/${digest}`, { method: 'DELETE' });
    await g.reached;
    const put = b.fetch(`/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': OCI }, body });
    expect(await settledWithin(put, 500)).toBe(false);
    g.open();
    expect((await del).status).toBe(202);
    expect((await put).status).toBe(201);
  }

  it('a manifest PUT on one waits for a delete of the same manifest on the other, and lands after it', async () => {
    const img = await pushImage(a, 'race/put-delete', 'v1');
    // The delete has removed the tags pointing at the manifest and holds before removing the revision.
    await deleteRacingPut('race/put-delete', img.digest, 'removeRevision', 'latest', img.manifest);
    expect(await listed(b, 'race/put-delete')).toEqual(['latest']);
    await expectConsistent('race/put-delete');
  });

  it('a tag moved on one while a delete on the other removes it where it pointed before stays moved', async () => {
    const first = await pushImage(a, 'race/move', 'v1');
    const second = await pushImage(a, 'race/move', 'v2');
    // Deleting the first manifest removes `v1`, which still points at it; the delete holds just before.
    await deleteRacingPut('race/move', first.digest, 'removeTag', 'v1', second.manifest);
    // The move came after the removal: `v1` exists again, on the second manifest.
    const got = await b.fetch('/v2/race/move/manifests/v1', { headers: { accept: OCI } });
    expect(got.headers.get('docker-content-digest')).toBe(second.digest);
    expect(await listed(a, 'race/move')).toEqual(['v1', 'v2']);
    await expectConsistent('race/move');
  });

  it('a GC whose progress write is slow still shows done on the other replica once it ends', async () => {
    for (let i = 0; i < 3; i++) await pushImage(a, 'race/gc', `v${i}`);
    // The GC's listing of repositories takes 1.1 s, so that it publishes its progress once past its start; that
    // write of the running job takes 400 ms, and the end is written at once.
    const { store } = a.server.app;
    const { index } = store;
    const setMeta = index.setMeta.bind(index);
    const listRepositories = store.allRepositoryDirs.bind(store);
    let writes = 0;
    index.setMeta = async (key: string, value: string) => {
      if (key === GC_JOB_KEY && value.includes('"state":"running"') && writes++ > 0)
        await new Promise((r) => setTimeout(r, 400));
      return setMeta(key, value);
    };
    store.allRepositoryDirs = async () => {
      await new Promise((r) => setTimeout(r, 1100));
      return listRepositories();
    };
    try {
      const res = await a.fetch('/admin/v1/gc', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ graceSeconds: 3600, wait: true }),
      });
      expect(res.status).toBe(200);
      // Past the slow write: the other replica reads what was written last.
      await new Promise((r) => setTimeout(r, 600));
      const seen = (await (await b.fetch('/admin/v1/gc')).json()) as { state: string; error?: string };
      expect(seen.state, seen.error).toBe('done');
      expect(writes).toBeGreaterThan(1);
    } finally {
      index.setMeta = setMeta;
      store.allRepositoryDirs = listRepositories;
    }
  });
});
