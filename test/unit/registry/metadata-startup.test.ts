import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RegistryApp } from '../../../src/registry/app.js';
import { openSqliteStore } from '../../../src/registry/metadata/sqlite-store.js';
import { pathFor } from '../../../src/registry/storage/paths.js';
import { createRegistryServer } from '../../../src/registry/server.js';
import { countingDriver, digestOf, OCI_MANIFEST, pushImage, Volume } from './metadata-fixture.js';

const volumes: Volume[] = [];
afterEach(async () => {
  for (const v of volumes.splice(0)) await v.remove();
});

async function volumeWith(repos: number): Promise<Volume> {
  const vol = await Volume.create();
  volumes.push(vol);
  const app = await vol.start();
  for (let i = 0; i < repos; i++) await pushImage(app.store, `team${i % 7}/app${i}`, 'v1');
  await vol.stop(app);
  return vol;
}

/** Storage reads (get, read, stat, list) made until `init` returns, with the store the volume holds. */
async function startupReads(vol: Volume): Promise<{ reads: number; app: RegistryApp }> {
  const counting = countingDriver(vol.storage);
  const app = await vol.start({ driver: counting.driver });
  return { reads: counting.reads(), app };
}

describe('start-up with a metadata store', () => {
  it('reads the same few files from storage whether the volume holds 10 or 150 repositories', async () => {
    const small = await volumeWith(10);
    const large = await volumeWith(150);
    const a = await startupReads(small);
    const b = await startupReads(large);
    expect(b.app.store.index.repositoryCount()).toBe(150);
    expect(a.reads).toBe(b.reads);
    expect(b.reads).toBeLessThanOrEqual(2);
    await small.stop(a.app);
    await large.stop(b.app);

    // Without its metadata (first start on an existing volume) the same volume is walked: reads grow with it.
    await rm(large.sqlitePath);
    const imported = await startupReads(large);
    expect(imported.reads).toBeGreaterThan(150 * 3);
    expect(await imported.app.store.index.tags('team3/app3')).toEqual(['v1']);
    await large.stop(imported.app);
  });

  it('imports again when storage was replaced under the store (the marker differs), not otherwise', async () => {
    const vol = await volumeWith(3);
    const logs: string[] = [];
    await vol.stop(await vol.start({ logs }));
    expect(logs.filter((l) => l.includes('importing storage'))).toEqual([]);
    // What a restore does: docker/ is replaced, and our marker beside v2 goes with it.
    await vol.storage.delete(pathFor({ kind: 'metadataMarker' }));
    await vol.storage.delete(pathFor({ kind: 'repository', name: 'team1/app1' }));
    const app = await vol.start({ logs });
    expect(logs.filter((l) => l.includes('importing storage'))).toHaveLength(1);
    expect(await app.store.index.catalog()).toEqual(['team0/app0', 'team2/app2']);
    await vol.stop(app);
  });

  it('a store describing other storage is imported again and its unfinished writes are never applied here', async () => {
    const a = await volumeWith(2);
    const b = await volumeWith(3);
    // a's store holds an intent its crash left: a delete of team0/app0:v1, finished in a's store but not in a's
    // storage. b holds a tag of the same name, which that intent must not touch.
    const store = await openSqliteStore(a.sqlitePath);
    await store.beginIntent('tag-delete', 'team0/app0', 'v1');
    await store.close();
    const logs: string[] = [];
    const app = await b.start({ logs, sqlitePath: a.sqlitePath });
    expect(logs.filter((l) => l.includes('describes other storage'))).toHaveLength(1);
    expect(logs.filter((l) => l.includes('"unfinishedWritesDropped":1'))).toHaveLength(1);
    expect(
      await b.storage.getContent(pathFor({ kind: 'tagCurrentLink', name: 'team0/app0', tag: 'v1' })),
    ).toBeDefined();
    expect(await app.store.index.catalog()).toEqual(['team0/app0', 'team1/app1', 'team2/app2']);
    expect(await app.store.index.pendingIntents()).toEqual([]);
    await b.stop(app);
    // Now the store is b's: the next start on b trusts it, the next on a imports a again.
    const again: string[] = [];
    await b.stop(await b.start({ logs: again, sqlitePath: a.sqlitePath }));
    expect(again.filter((l) => l.includes('importing storage'))).toEqual([]);
    const back = await a.start({ logs: again });
    expect(again.filter((l) => l.includes('importing storage'))).toHaveLength(1);
    expect(await back.store.index.catalog()).toEqual(['team0/app0', 'team1/app1']);
    await a.stop(back);
  });

  it('a rebuild cut off midway is not taken for complete: the next start imports again', async () => {
    const vol = await volumeWith(3);
    const tags = pathFor({ kind: 'tagsRoot', name: 'team1/app1' });
    const failing = countingDriver(vol.storage, { method: 'list', path: (p) => p === tags });
    const app = await vol.start({ driver: failing.driver });
    // The maintenance started with the server walks storage too: done first, so the rebuild meets the failure.
    await app.maintenanceDone();
    failing.reset();
    // What `reload?index=1` or an online fsck repair runs; storage fails halfway through.
    await expect(app.store.buildIndex()).rejects.toThrow(/simulated crash/);
    await vol.stop(app);
    const logs: string[] = [];
    const next = await vol.start({ logs });
    expect(logs.filter((l) => l.includes('importing storage'))).toHaveLength(1);
    expect(await next.store.index.catalog()).toEqual(['team0/app0', 'team1/app1', 'team2/app2']);
    await vol.stop(next);
  });

  it('imports again after the machine went down with the store open, not after a process kill', async () => {
    const vol = await volumeWith(2);
    const markOpen = (boot: string) => {
      // What a store open at the crash leaves: the mark of the boot it was opened in.
      const raw = new Database(vol.sqlitePath);
      raw.prepare(`INSERT INTO meta (key, value) VALUES ('open_boot', ?)`).run(boot);
      raw.close();
    };
    const logs: string[] = [];
    markOpen(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
    await vol.stop(await vol.start({ logs }));
    expect(logs.filter((l) => l.includes('importing storage'))).toEqual([]);
    markOpen('an-earlier-boot');
    const app = await vol.start({ logs });
    expect(logs.filter((l) => l.includes('importing storage'))).toHaveLength(1);
    expect(await app.store.index.catalog()).toEqual(['team0/app0', 'team1/app1']);
    await vol.stop(app);
  });

  it('pages catalog and tags from the store without loading every name', async () => {
    const vol = await Volume.create();
    volumes.push(vol);
    const app = await vol.start({
      wrapStore: (s) =>
        new Proxy(s, {
          get(t, prop, r) {
            if (prop === 'catalog' || prop === 'tags') throw new Error(`listing loaded everything (${prop})`);
            return Reflect.get(t, prop, r) as unknown;
          },
        }),
    });
    for (const name of ['c', 'a', 'b', 'd']) await pushImage(app.store, name, 'v1');
    for (const tag of ['v3', 'v2', 'latest']) await pushImage(app.store, 'a', tag);
    const server = createServer(app.handle).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const first = await fetch(`${url}/v2/_catalog?n=2`);
      expect(await first.json()).toEqual({ repositories: ['a', 'b'] });
      expect(first.headers.get('link')).toBe('</v2/_catalog?n=2&last=b>; rel="next"');
      const last = await fetch(`${url}/v2/_catalog?n=2&last=b`);
      expect(await last.json()).toEqual({ repositories: ['c', 'd'] });
      expect(last.headers.get('link')).toBeNull();
      const tags = await fetch(`${url}/v2/a/tags/list?n=2&last=latest`);
      expect(await tags.json()).toEqual({ name: 'a', tags: ['v1', 'v2'] });
      expect(tags.headers.get('link')).toBe('</v2/a/tags/list?n=2&last=v2>; rel="next"');
      expect((await fetch(`${url}/v2/nope/tags/list?n=2`)).status).toBe(404);
    } finally {
      server.close();
      await vol.stop(app);
    }
  });
});

/** Writes a registry:2 volume by hand (blobs, layer links, a revision, a tag with its index), with no metadata. */
async function writeDistributionVolume(data: string): Promise<{ manifest: string; layer: string }> {
  const put = async (path: string, body: Buffer | string): Promise<void> => {
    await mkdir(dirname(join(data, path)), { recursive: true });
    await writeFile(join(data, path), body);
  };
  const config = Buffer.from('{"architecture":"arm64","os":"linux"}');
  const layer = Buffer.from('a layer written by distribution');
  const name = 'library/alpine';
  for (const b of [config, layer]) {
    const digest = digestOf(b);
    await put(pathFor({ kind: 'blobData', digest }), b);
    await put(pathFor({ kind: 'layerLink', name, digest }), digest.value);
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config).value, size: 37 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer).value, size: 31 }],
    }),
  );
  const digest = digestOf(manifest);
  await put(pathFor({ kind: 'blobData', digest }), manifest);
  await put(pathFor({ kind: 'revisionLink', name, digest }), digest.value);
  await put(pathFor({ kind: 'tagIndexLink', name, tag: '3.20', digest }), digest.value);
  await put(pathFor({ kind: 'tagCurrentLink', name, tag: '3.20' }), digest.value);
  return { manifest: digest.value, layer: digestOf(layer).value };
}

async function treeHash(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else
        out[relative(root, p)] = createHash('sha256')
          .update(await readFile(p))
          .digest('hex');
    }
  };
  await walk(root);
  return out;
}

describe('an existing distribution volume', () => {
  it('is adopted as is: imported at first start into SQLite, served, and its layout left untouched', async () => {
    const data = await mkdtemp(join(tmpdir(), 'regctl-adopt-meta-'));
    try {
      const { manifest, layer } = await writeDistributionVolume(data);
      const before = await treeHash(join(data, 'docker/registry/v2'));
      const logs: string[] = [];
      const start = async () => {
        const server = createRegistryServer({
          port: 0,
          dataDir: data,
          noAuth: true,
          log: (level, msg, fields) => logs.push(JSON.stringify({ level, msg, ...fields })),
        });
        return { server, url: (await server.listen()).url };
      };
      const first = await start();
      expect(await (await fetch(`${first.url}/v2/_catalog`)).json()).toEqual({ repositories: ['library/alpine'] });
      const got = await fetch(`${first.url}/v2/library/alpine/manifests/3.20`, { headers: { accept: OCI_MANIFEST } });
      expect(got.status).toBe(200);
      expect(got.headers.get('docker-content-digest')).toBe(manifest);
      expect((await fetch(`${first.url}/v2/library/alpine/blobs/${layer}`)).status).toBe(200);
      await first.server.close();
      expect(logs.filter((l) => l.includes('imported storage into the metadata store'))).toHaveLength(1);
      expect((await stat(join(data, 'regctl/metadata.sqlite'))).isFile()).toBe(true);
      expect(await treeHash(join(data, 'docker/registry/v2'))).toEqual(before);

      const second = await start();
      expect(await (await fetch(`${second.url}/v2/library/alpine/tags/list`)).json()).toEqual({
        name: 'library/alpine',
        tags: ['3.20'],
      });
      await second.server.close();
      expect(logs.filter((l) => l.includes('importing storage'))).toHaveLength(1);
    } finally {
      await rm(data, { recursive: true, force: true });
    }
  });
});
