/**
 * Failures the reliability runs found, kept as regression tests against the real server on a socket.
 */
import { access, mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, type RegistryServer } from '../../../src/registry/server.js';
import { TEMP_MARKER } from '../../../src/registry/storage/driver.js';
import { FsDriver } from '../../../src/registry/storage/fs-driver.js';
import { tempName } from '../../../src/registry/storage/fs-small-files.js';
import { runFsck } from '../../../src/registry/storage/fsck.js';
import { RegistryStore } from '../../../src/registry/storage/store.js';
import { RegistryClient, imageManifest, sha256 } from './helpers/client.js';

const V2 = 'docker/registry/v2';

describe('regressions found by the reliability runs', () => {
  let dir: string;
  let server: RegistryServer;
  let client: RegistryClient;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regctl-regress-'));
    server = createRegistryServer({ port: 0, dataDir: join(dir, 'data'), noAuth: true, logLevel: 'silent' });
    client = new RegistryClient((await server.listen()).url);
  });
  afterAll(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('GC removes layer links left pointing at blobs a killed GC had already swept', async () => {
    // A GC killed between sweeping a blob and unlinking it leaves `_layers/<digest>/link` without a blob;
    // later GCs used to keep such links forever (fsck: link-dangling).
    const blob = Buffer.from('swept by a GC that was then killed');
    const digest = await client.pushBlobMonolithic('regress/gc', blob);
    await rm(join(dir, 'data', V2, 'blobs/sha256', digest.slice(7, 9), digest.slice(7)), { recursive: true });
    const store = new RegistryStore(new FsDriver(join(dir, 'data')));
    expect((await runFsck(store)).problems.map((p) => p.kind)).toEqual(['link-dangling']);

    await client.json('POST', '/admin/v1/gc', { graceSeconds: 0 });
    await expect(
      access(join(dir, 'data', V2, 'repositories/regress/gc/_layers/sha256', digest.slice(7), 'link')),
    ).rejects.toThrow();
    expect((await runFsck(store)).problems).toEqual([]);
    expect(digest).toBe(sha256(blob));
  });

  it('a manifest delete racing a tag write of the same manifest never leaves the tag pointing at nothing', async () => {
    // Found by the crash harness (seed 42): DELETE by digest interleaved with PUT of the same manifest under
    // another tag removed the revision after the tag was written.
    const config = Buffer.from('{"os":"linux","race":true}');
    const layer = Buffer.from('race layer');
    await client.pushBlobMonolithic('regress/race', config);
    await client.pushBlobMonolithic('regress/race', layer);
    const manifest = imageManifest(config, [layer]);
    const digest = await client.putManifest('regress/race', 'base', manifest);
    for (let i = 0; i < 40; i++) {
      await Promise.allSettled([
        client.putManifest('regress/race', 'latest', manifest),
        client.deleteManifest('regress/race', digest),
      ]);
      const tag = await client.getManifest('regress/race', 'latest');
      const tags = await client.request('GET', '/v2/regress/race/tags/list');
      const listed =
        tags.status === 200 ? ((await tags.json()) as { tags: string[] }).tags : (await tags.arrayBuffer(), []);
      if (listed.includes('latest')) expect(tag.status, `iteration ${i}`).toBe(200);
      const store = new RegistryStore(new FsDriver(join(dir, 'data')));
      const dangling = (await runFsck(store)).problems.filter((p) => p.kind === 'tag-dangling');
      expect(dangling, `iteration ${i}`).toEqual([]);
      await client.putManifest('regress/race', 'base', manifest);
    }
  });

  it('GC removing an emptied repository leaves the repositories nested under its name alone', async () => {
    // `nest` holds only an unreferenced blob, `nest/child` a tagged image: GC sweeps the blob, finds `nest`
    // empty and used to delete its whole directory, taking `nest/child` with it.
    await client.pushBlobMonolithic('nest', Buffer.from('unreferenced blob in the parent'));
    const config = Buffer.from('{"os":"linux","nested":true}');
    const layer = Buffer.from('layer of the nested repository');
    await client.pushBlobMonolithic('nest/child', config);
    await client.pushBlobMonolithic('nest/child', layer);
    const digest = await client.putManifest('nest/child', 'v1', imageManifest(config, [layer]));
    const report = await client.json<{ repositoriesRemoved: string[] }>('POST', '/admin/v1/gc', { graceSeconds: 0 });
    expect(report.repositoriesRemoved).toContain('nest');
    const m = await client.getManifest('nest/child', 'v1');
    expect(m.status).toBe(200);
    expect(m.digest).toBe(digest);
    expect(sha256((await client.getBlob('nest/child', sha256(layer))).body)).toBe(sha256(layer));
    // Also after a restart, which rebuilds the index from disk.
    const again = createRegistryServer({ port: 0, dataDir: join(dir, 'data'), noAuth: true, logLevel: 'silent' });
    const c2 = new RegistryClient((await again.listen()).url);
    expect((await c2.getManifest('nest/child', 'v1')).status).toBe(200);
    await again.close();
  });

  it("the startup cleanup removes a dead process's temp files but never this process's, whatever their mtime", async () => {
    // Found by the crash harness: file times come from a coarse kernel clock, so a temp file written just after
    // startup could look older than the start and be deleted under a write in flight (ENOENT on rename, 500).
    const data = join(dir, 'tmp-cleanup');
    const repoDir = join(data, V2, 'repositories/tmp/app/_manifests/tags/t/current');
    await mkdir(repoDir, { recursive: true });
    // A complete tag beside the temp files: startup removes tag directories without current/link (with whatever
    // they hold), which would hide what this test looks at.
    await writeFile(join(repoDir, 'link'), `sha256:${'0'.repeat(64)}`);
    const own = tempName(join(repoDir, 'link'));
    const foreign = join(repoDir, `.link${TEMP_MARKER}ffffff0123456789abcd`);
    const past = new Date(Date.now() - 60_000);
    for (const f of [own, foreign]) {
      await writeFile(f, 'partial');
      await utimes(f, past, past);
    }
    const s = createRegistryServer({ port: 0, dataDir: data, noAuth: true, logLevel: 'silent' });
    await s.listen();
    try {
      for (
        let i = 0;
        i < 50 &&
        (await access(foreign).then(
          () => true,
          () => false,
        ));
        i++
      )
        await new Promise((r) => setTimeout(r, 50));
      await expect(access(foreign)).rejects.toThrow();
      await expect(access(own)).resolves.toBeUndefined();
    } finally {
      await s.close();
    }
  });

  it('GC keeps the links of blobs that are present', async () => {
    const blob = Buffer.from('a blob pushed and kept by the grace window');
    const digest = await client.pushBlobMonolithic('regress/gc-keep', blob);
    await client.json('POST', '/admin/v1/gc', { graceSeconds: 3600 });
    const got = await client.getBlob('regress/gc-keep', digest);
    expect(got.status).toBe(200);
    expect(sha256(got.body)).toBe(digest);
  });
});
