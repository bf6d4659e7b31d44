import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FsDriver, type SyncOps } from '../../../src/registry/storage/fs-driver.js';
import { pathFor } from '../../../src/registry/storage/paths.js';
import { parseDigest } from '../../../src/registry/reference.js';
import { createRegistryServer, type RegistryServer } from '../../../src/registry/server.js';
import { sha256 } from './helpers.js';

/**
 * fsync primitives that really sync files, but only once the test opens the gate (`close('dirs')` gates only
 * the directory syncs); they record what they synced.
 */
function gatedSync(): SyncOps & {
  open(): void;
  close(which?: 'all' | 'dirs'): void;
  holdFlushes(): () => void;
  files: number;
  flushes: number;
  dirs: string[];
} {
  let flushGate: Promise<void> = Promise.resolve();
  let fileGate: Promise<void> = Promise.resolve();
  let dirGate: Promise<void> = Promise.resolve();
  let release: () => void = () => undefined;
  const g = {
    files: 0,
    flushes: 0,
    dirs: [] as string[],
    /** Holds background flushes until the returned function is called. */
    holdFlushes() {
      let releaseFlushes: () => void = () => undefined;
      flushGate = new Promise<void>((r) => (releaseFlushes = r));
      return () => releaseFlushes();
    },
    close(which: 'all' | 'dirs' = 'all') {
      const gate = new Promise<void>((r) => (release = r));
      dirGate = gate;
      if (which === 'all') fileGate = gate;
    },
    open() {
      release();
    },
    async syncFile(fh: Parameters<SyncOps['syncFile']>[0]) {
      await fileGate;
      await fh.sync();
      g.files++;
    },
    async syncDir(dir: string) {
      await dirGate;
      g.dirs.push(dir);
    },
    async flushFile(fh: Parameters<SyncOps['flushFile']>[0]) {
      g.flushes++;
      await flushGate;
      await fh.datasync();
    },
  };
  return g;
}

/**
 * Whether `p` settles within `ms` (by default a few turns of the event loop: enough for any file operation not held
 * by a gate); resolves as soon as it does.
 */
const settles = (p: Promise<unknown>, ms = 100): Promise<boolean> =>
  Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((r) => setTimeout(() => r(false), ms)),
  ]);

let dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  dirs = [];
});
const tempDir = async () => {
  const d = await mkdtemp(join(tmpdir(), 'regctl-durability-'));
  dirs.push(d);
  return d;
};

describe('filesystem driver durability', () => {
  it('does not acknowledge a write, nor publish it, before its fsync completed', async () => {
    const root = await tempDir();
    const sync = gatedSync();
    const driver = new FsDriver(root, { sync });
    sync.close();
    const write = driver.putContent('a/b/link', 'sha256:x');
    expect(await settles(write)).toBe(false);
    await expect(readFile(join(root, 'a/b/link'))).rejects.toThrow();
    expect(sync.files).toBe(0);
    sync.open();
    await write;
    expect(sync.files).toBe(1);
    expect(sync.dirs).toEqual([join(root, 'a/b')]);
    expect((await readFile(join(root, 'a/b/link'))).toString()).toBe('sha256:x');
  });

  it('does not acknowledge a write before the fsync of the directory it was renamed into', async () => {
    const root = await tempDir();
    const sync = gatedSync();
    const driver = new FsDriver(root, { sync });
    sync.close('dirs');
    const write = driver.putContent('a/link', 'sha256:y');
    await expect.poll(() => readFile(join(root, 'a/link'), 'utf8').catch(() => '')).toBe('sha256:y');
    expect(sync.files).toBe(1);
    expect(await settles(write)).toBe(false);
    sync.open();
    await write;
    expect(sync.dirs).toEqual([join(root, 'a')]);
  });

  it('a move (an upload published as a blob) is acknowledged only after the file and the directory are synced', async () => {
    const root = await tempDir();
    const sync = gatedSync();
    const driver = new FsDriver(root, { sync });
    const w = await driver.writer('up/data', { append: false });
    await new Promise<void>((resolve, reject) =>
      w.end('blob', (err?: Error | null) => (err ? reject(err) : resolve())),
    );
    const before = sync.files;
    sync.close();
    const move = driver.move('up/data', 'blobs/x/data');
    expect(await settles(move)).toBe(false);
    sync.open();
    await move;
    expect(sync.files - before).toBe(1);
    expect(sync.dirs).toContain(join(root, 'blobs/x'));
  });

  it('flushes an upload sent in chunks as it grows, without holding a chunk; publishing waits for the flush', async () => {
    const root = await tempDir();
    const sync = gatedSync();
    const driver = new FsDriver(root, { sync });
    const release = sync.holdFlushes();
    const chunk = Buffer.alloc(16 * 1024 * 1024, 7);
    const append = async () => {
      const w = await driver.writer('up/data', { append: true });
      await new Promise<void>((resolve, reject) =>
        w.end(chunk, (err?: Error | null) => (err ? reject(err) : resolve())),
      );
    };
    // Four 16 MiB chunks, each by its own writer: the file crosses 64 MiB in the fourth, which starts a flush.
    for (let i = 0; i < 3; i++) await append();
    expect(sync.flushes).toBe(0);
    // Writing 16 MiB takes a while on a busy machine; a writer waiting on the held flush would never finish.
    expect(await settles(append(), 10_000)).toBe(true);
    expect(sync.flushes).toBe(1);
    const move = driver.move('up/data', 'blobs/y/data');
    expect(await settles(move)).toBe(false);
    release();
    await move;
    expect((await readFile(join(root, 'blobs/y/data'))).length).toBe(64 * 1024 * 1024);
  });

  it('a failed fsync fails the write, leaves the old content and no temporary file', async () => {
    const root = await tempDir();
    const driver = new FsDriver(root);
    await driver.putContent('e/a', 'old');
    const failing = new FsDriver(root, {
      sync: {
        syncFile: async () => {
          throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
        },
        flushFile: async () => undefined,
        syncDir: async () => undefined,
      },
    });
    await expect(failing.putContent('e/a', 'new')).rejects.toThrow('EIO');
    expect(await readdir(join(root, 'e'))).toEqual(['a']);
    expect((await readFile(join(root, 'e/a'))).toString()).toBe('old');
  });
});

describe('manifest PUT durability', () => {
  let server: RegistryServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('answers 201 only once the manifest, its revision link and its tag are synced', async () => {
    const root = await tempDir();
    const sync = gatedSync();
    server = createRegistryServer({
      host: '127.0.0.1',
      port: 0,
      noAuth: true,
      driver: new FsDriver(root, { sync }),
      log: () => undefined,
    });
    const { url } = await server.listen();
    const config = Buffer.from('{"os":"linux"}');
    const up = await fetch(`${url}/v2/dur/app/blobs/uploads/?digest=${sha256(config)}`, {
      method: 'POST',
      body: new Uint8Array(config),
    });
    expect(up.status).toBe(201);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
        layers: [],
      }),
    );
    const before = sync.files;
    sync.close();
    const put = fetch(`${url}/v2/dur/app/manifests/v1`, {
      method: 'PUT',
      body: new Uint8Array(manifest),
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(await settles(put, 300)).toBe(false);
    sync.open();
    const res = await put;
    expect(res.status).toBe(201);
    // The manifest's content, its revision link and the tag's index and current links: four files, each synced.
    expect(sync.files - before).toBe(4);
    const digest = parseDigest(sha256(manifest));
    for (const spec of [
      { kind: 'blobData', digest },
      { kind: 'revisionLink', name: 'dur/app', digest },
      { kind: 'tagCurrentLink', name: 'dur/app', tag: 'v1' },
    ] as const) {
      expect(sync.dirs, spec.kind).toContain(join(root, pathFor(spec), '..'));
    }
  });
});
