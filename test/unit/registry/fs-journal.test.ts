import type { FileHandle } from 'node:fs/promises';
import { appendFile, mkdtemp, readFile, readdir, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FsDriver, type SyncOps } from '../../../src/registry/storage/fs-driver.js';
import { JOURNAL_DIR, JOURNAL_MAX_DATA, syncFilesystem } from '../../../src/registry/storage/fs-journal.js';
import { createRegistryServer, type RegistryServer } from '../../../src/registry/server.js';
import { sha256 } from './helpers.js';

/**
 * Durability primitives for the journal: journal syncs really sync, but wait for the gate when it is closed;
 * whole-filesystem syncs are counted (and may be made to fail); per-file fsyncs must not happen at all for
 * journaled writes, so they are counted too.
 */
function journalSync() {
  let gate: Promise<void> = Promise.resolve();
  let release: () => void = () => undefined;
  const s = {
    journalSyncs: 0,
    fileSyncs: 0,
    syncAlls: [] as string[][],
    failJournal: undefined as Error | undefined,
    close() {
      gate = new Promise<void>((r) => (release = r));
    },
    open() {
      release();
    },
    ops: {
      syncFile: async (fh: FileHandle) => {
        s.fileSyncs++;
        await fh.sync();
      },
      flushFile: (fh: FileHandle) => fh.datasync(),
      syncDir: async () => undefined,
      syncJournal: async (fh: FileHandle) => {
        await gate;
        if (s.failJournal) throw s.failJournal;
        await fh.datasync();
        s.journalSyncs++;
      },
      syncAll: async (_root: string, files: readonly string[]) => {
        s.syncAlls.push([...files]);
      },
    } satisfies SyncOps,
  };
  return s;
}

const settles = async (p: Promise<unknown>, ms = 100): Promise<boolean> => {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((r) => setTimeout(r, ms));
  return done;
};

let dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  dirs = [];
});
const tempDir = async () => {
  const d = await mkdtemp(join(tmpdir(), 'regctl-journal-'));
  dirs.push(d);
  return d;
};

async function journaled(root: string, sync = journalSync()) {
  const driver = new FsDriver(root, { sync: sync.ops, journal: true });
  await driver.open();
  return { driver, sync };
}

const segments = async (root: string) => (await readdir(join(root, JOURNAL_DIR)).catch(() => [])).sort();
const text = (root: string, p: string) => readFile(join(root, p), 'utf8');

/** What a power cut does to writes the kernel had not written back yet: the files are gone. */
async function losePageCache(root: string, paths: string[]): Promise<void> {
  for (const p of paths) await unlink(join(root, p)).catch(() => undefined);
}

describe('write journal: group commit', () => {
  it('acknowledges and publishes concurrent writes only once their records are synced, in few journal syncs', async () => {
    const root = await tempDir();
    const { driver, sync } = await journaled(root);
    sync.close();
    const writes = Array.from({ length: 16 }, (_, i) => driver.putContent(`r/l${i}/link`, `sha256:${i}`));
    expect(await settles(Promise.race(writes))).toBe(false);
    await expect(text(root, 'r/l0/link')).rejects.toThrow();
    sync.open();
    await Promise.all(writes);
    for (let i = 0; i < 16; i++) expect(await text(root, `r/l${i}/link`)).toBe(`sha256:${i}`);
    // The first write's record went alone; the fifteen that queued behind its sync went together.
    expect(sync.journalSyncs).toBe(2);
    expect(sync.fileSyncs).toBe(0);
  });

  it('a failed journal sync fails the writes of its batch, publishes none of them, and later writes succeed', async () => {
    const root = await tempDir();
    const { driver, sync } = await journaled(root);
    await driver.putContent('a/link', 'old');
    sync.failJournal = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    await expect(driver.putContent('a/link', 'new')).rejects.toThrow('EIO');
    expect(await text(root, 'a/link')).toBe('old');
    expect((await readdir(join(root, 'a'))).sort()).toEqual(['link']);
    sync.failJournal = undefined;
    await driver.putContent('a/link', 'newer');
    expect(await text(root, 'a/link')).toBe('newer');
    // The segment the failure may have torn takes no more records: the next write started a new one.
    expect((await segments(root)).length).toBe(2);
  });

  it('writes several files with one journal sync, published only after it and in the order given', async () => {
    const root = await tempDir();
    const { driver, sync } = await journaled(root);
    sync.close();
    const files = ['blobs/b/data', 'r/_manifests/revisions/d/link', 'r/_manifests/referrers/s/d/link'];
    const writing = driver.putContents(files.map((path, i) => ({ path, data: `content ${i}` })));
    expect(await settles(writing)).toBe(false);
    for (const f of files) await expect(text(root, f)).rejects.toThrow();
    sync.open();
    await writing;
    for (const [i, f] of files.entries()) expect(await text(root, f)).toBe(`content ${i}`);
    expect(sync.journalSyncs).toBe(1);
    expect(sync.fileSyncs).toBe(0);
    // No temporary file left beside any of them.
    expect(await readdir(join(root, 'blobs/b'))).toEqual(['data']);
    // Recovered whole after a crash that lost them from the page cache.
    await losePageCache(root, files);
    await new FsDriver(root).open();
    for (const [i, f] of files.entries()) expect(await text(root, f)).toBe(`content ${i}`);
  });

  it('a batch cut short by the crash keeps its first files, never a later one without them', async () => {
    const root = await tempDir();
    const { driver } = await journaled(root);
    await driver.putContents([
      { path: 'x/content', data: 'the content' },
      { path: 'x/link', data: 'names the content' },
    ]);
    const [segment] = await segments(root);
    const file = join(root, JOURNAL_DIR, segment as string);
    await truncate(file, (await readFile(file)).length - 1);
    await losePageCache(root, ['x/content', 'x/link']);
    await new FsDriver(root).open();
    expect(await text(root, 'x/content')).toBe('the content');
    await expect(text(root, 'x/link')).rejects.toThrow();
  });

  it('content larger than a journal record is synced on its own', async () => {
    const root = await tempDir();
    const { driver, sync } = await journaled(root);
    await driver.putContent('big/data', Buffer.alloc(JOURNAL_MAX_DATA + 1, 1));
    expect(sync.fileSyncs).toBe(1);
    expect(sync.journalSyncs).toBe(0);
  });
});

describe('write journal: recovery after a crash', () => {
  it('writes back every acknowledged file the disk lost, then empties the journal', async () => {
    const root = await tempDir();
    const { driver } = await journaled(root);
    const paths = Array.from({ length: 20 }, (_, i) => `repositories/app/_manifests/tags/t${i}/current/link`);
    await Promise.all(paths.map((p, i) => driver.putContent(p, `sha256:${i}`)));
    await driver.putContent(paths[3] as string, 'sha256:moved');
    await losePageCache(root, paths);
    const restarted = new FsDriver(root);
    await restarted.open();
    for (let i = 0; i < 20; i++)
      expect(await text(root, paths[i] as string)).toBe(i === 3 ? 'sha256:moved' : `sha256:${i}`);
    expect(await segments(root)).toEqual([]);
  });

  it('two processes starting on the same directory at once both recover it', async () => {
    const root = await tempDir();
    const { driver } = await journaled(root);
    const paths = Array.from({ length: 40 }, (_, i) => `tags/t${i}/current/link`);
    for (const [i, p] of paths.entries()) await driver.putContent(p, `sha256:${i}`);
    await losePageCache(root, paths);
    await Promise.all([new FsDriver(root).open(), new FsDriver(root).open()]);
    for (const [i, p] of paths.entries()) expect(await text(root, p)).toBe(`sha256:${i}`);
    expect(await segments(root)).toEqual([]);
  });

  it('stops at a record cut short by the crash and keeps the whole ones before it', async () => {
    const root = await tempDir();
    const { driver } = await journaled(root);
    await driver.putContent('x/a', 'first');
    await driver.putContent('x/b', 'second');
    const [segment] = await segments(root);
    const file = join(root, JOURNAL_DIR, segment as string);
    // The second record loses its last byte, as a write cut by a power failure would leave it; garbage follows.
    const size = (await readFile(file)).length;
    await truncate(file, size - 1);
    await appendFile(file, Buffer.from([0xff, 0xff, 0xff, 0x7f, 1, 2, 3]));
    await losePageCache(root, ['x/a', 'x/b']);
    await new FsDriver(root).open();
    expect(await text(root, 'x/a')).toBe('first');
    await expect(text(root, 'x/b')).rejects.toThrow();
  });

  it('does not bring back what was deleted after it was journaled', async () => {
    const root = await tempDir();
    const { driver } = await journaled(root);
    await driver.putContent('tags/old/current/link', 'sha256:1');
    await driver.putContent('tags/kept/current/link', 'sha256:2');
    await driver.delete('tags/old');
    await driver.putContent('tags/kept/index/link', 'sha256:2'); // a later record: the delete's is synced with it
    await losePageCache(root, ['tags/kept/current/link', 'tags/kept/index/link']);
    await new FsDriver(root).open();
    await expect(text(root, 'tags/old/current/link')).rejects.toThrow();
    expect(await text(root, 'tags/kept/current/link')).toBe('sha256:2');
  });

  it('does not put older journaled content over a file written since without the journal', async () => {
    const root = await tempDir();
    const { driver } = await journaled(root);
    await driver.putContent('blobs/d/data', 'journaled');
    const w = await driver.writer('uploads/u/data', { append: false });
    await new Promise<void>((resolve, reject) =>
      w.end('moved', (err?: Error | null) => (err ? reject(err) : resolve())),
    );
    await driver.move('uploads/u/data', 'blobs/d/data');
    await new FsDriver(root).open();
    expect(await text(root, 'blobs/d/data')).toBe('moved');
  });

  it('a segment file with a damaged record in its middle replays the records before it only', async () => {
    const root = await tempDir();
    const { driver } = await journaled(root);
    await driver.putContent('m/1', 'one');
    const [segment] = await segments(root);
    const file = join(root, JOURNAL_DIR, segment as string);
    const before = (await readFile(file)).length;
    await driver.putContent('m/2', 'two');
    await driver.putContent('m/3', 'three');
    const bytes = await readFile(file);
    bytes[before + 12] = (bytes[before + 12] as number) ^ 0xff; // inside the second record's body: its crc fails
    await writeFile(file, bytes);
    await losePageCache(root, ['m/1', 'm/2', 'm/3']);
    await new FsDriver(root).open();
    expect(await text(root, 'm/1')).toBe('one');
    await expect(text(root, 'm/2')).rejects.toThrow();
    await expect(text(root, 'm/3')).rejects.toThrow();
  });
});

describe('write journal: checkpoints', () => {
  it('syncs every journaled file in place, then removes the segments that held them', async () => {
    const root = await tempDir();
    const { driver, sync } = await journaled(root);
    await driver.putContent('c/1', 'one');
    await driver.putContent('c/2', 'two');
    expect((await segments(root)).length).toBe(1);
    await driver.close();
    expect(sync.syncAlls).toEqual([[join(root, 'c/1'), join(root, 'c/2')]]);
    expect(await segments(root)).toEqual([]);
    // After a checkpoint nothing is left to replay: a recovery writes nothing over newer content.
    await writeFile(join(root, 'c/1'), 'changed offline');
    await new FsDriver(root).open();
    expect(await text(root, 'c/1')).toBe('changed offline');
  });

  it('keeps the segments when the filesystem sync fails, and checkpoints them with the next one', async () => {
    const root = await tempDir();
    const sync = journalSync();
    let fail = true;
    sync.ops.syncAll = async (_root, files) => {
      if (fail) throw Object.assign(new Error('EIO: i/o error, syncfs'), { code: 'EIO' });
      sync.syncAlls.push([...files]);
    };
    const { driver } = await journaled(root, sync);
    await driver.putContent('k/1', 'one');
    await expect(driver.close()).rejects.toThrow('EIO');
    expect((await segments(root)).length).toBe(1);
    fail = false;
    await driver.close();
    expect(await segments(root)).toEqual([]);
    expect(sync.syncAlls).toEqual([[join(root, 'k/1')]]);
  });
});

describe('manifest PUT through the journal', () => {
  let server: RegistryServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('answers 201 only once the records of the manifest, its revision link and its tag are synced', async () => {
    const root = await tempDir();
    const sync = journalSync();
    server = createRegistryServer({
      host: '127.0.0.1',
      port: 0,
      noAuth: true,
      driver: new FsDriver(root, { sync: sync.ops, journal: true }),
      log: () => undefined,
    });
    const { url } = await server.listen();
    const config = Buffer.from('{"os":"linux"}');
    const up = await fetch(`${url}/v2/jr/app/blobs/uploads/?digest=${sha256(config)}`, {
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
    const before = sync.journalSyncs;
    sync.close();
    const put = fetch(`${url}/v2/jr/app/manifests/v1`, {
      method: 'PUT',
      body: new Uint8Array(manifest),
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(await settles(put, 300)).toBe(false);
    sync.open();
    expect((await put).status).toBe(201);
    // One synced batch: the manifest's content, its revision link, the tag's index and current links.
    expect(sync.journalSyncs - before).toBe(1);
    // A crash now, before the kernel wrote the files back: the next start serves the tag from the journal.
    const hex = sha256(manifest).slice('sha256:'.length);
    const repo = 'docker/registry/v2/repositories/jr/app/_manifests';
    await losePageCache(root, [
      `docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`,
      `${repo}/revisions/sha256/${hex}/link`,
      `${repo}/tags/v1/index/sha256/${hex}/link`,
      `${repo}/tags/v1/current/link`,
    ]);
    const restarted = createRegistryServer({
      host: '127.0.0.1',
      port: 0,
      noAuth: true,
      driver: new FsDriver(root),
      log: () => undefined,
    });
    try {
      const got = await fetch(`${(await restarted.listen()).url}/v2/jr/app/manifests/v1`, {
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
      });
      expect(got.status).toBe(200);
      expect(Buffer.from(await got.arrayBuffer())).toEqual(manifest);
    } finally {
      await restarted.close();
    }
  });
});

describe('filesystem sync for checkpoints', () => {
  it('syncs with `sync -f`, and reports its failure', async () => {
    const root = await tempDir();
    await writeFile(join(root, 'f'), 'x');
    await expect(syncFilesystem(root, [join(root, 'f')])).resolves.toBeUndefined();
    await expect(syncFilesystem(join(root, 'absent'), [])).rejects.toThrow(/sync/);
  });

  it('without a `sync` command, syncs each file, skipping those deleted since', async () => {
    const root = await tempDir();
    await writeFile(join(root, 'f'), 'x');
    const path = process.env.PATH;
    process.env.PATH = root; // no `sync` here
    try {
      await expect(syncFilesystem(root, [join(root, 'f'), join(root, 'gone')])).resolves.toBeUndefined();
    } finally {
      process.env.PATH = path;
    }
  });
});
