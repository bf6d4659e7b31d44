/**
 * The storage driver contract (src/registry/storage/driver.ts) as one suite, run against every driver: memory and
 * filesystem in test/unit/registry/driver-contract.test.ts, S3 on versitygw in
 * test/integration/registry/s3-driver.test.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pMap from 'p-map';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PathNotFoundError, putAll, statFile, type StorageDriver } from '../../src/registry/storage/driver.js';

export interface DriverHarness {
  make(): Promise<StorageDriver>;
  /** Another driver on the same storage, as a second process (replica) would open it. */
  sibling(): Promise<StorageDriver>;
  /** Asserts the storage holds nothing besides what the test left (e.g. no probe files). */
  assertEmpty(): Promise<void>;
  cleanup(): Promise<void>;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function text(stream: Readable): Promise<string> {
  return (await readAll(stream)).toString('utf8');
}

const MiB = 1024 * 1024;

/** `size` bytes sent as chunks of `chunk` bytes. */
function chunked(data: Buffer, chunk: number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunk) parts.push(data.subarray(i, i + chunk));
  return Readable.from(parts);
}

function sha(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The harness and driver of the running test, set before each. */
interface Current {
  h: DriverHarness;
  d: StorageDriver;
}

/**
 * `listsFiles`: whether the driver offers `listFiles` (object stores and the memory driver; the filesystem is
 * walked instead), so that a driver that stopped offering it fails here rather than falling back unseen.
 */
export function describeDriverContract(
  kind: string,
  harness: () => DriverHarness,
  timeout = 30_000,
  listsFiles = true,
): void {
  describe(`storage driver contract: ${kind}`, { timeout }, () => {
    const cur = {} as Current;
    beforeEach(async () => {
      cur.h = harness();
      cur.d = await cur.h.make();
    });
    afterEach(() => cur.h.cleanup());
    contentCases(cur);
    writerCases(cur);
    treeCases(cur);
    listFilesCase(cur, listsFiles);
  });
}

/** `listFiles`: every file under a path at any depth, across listing pages, and nothing beside it. */
function listFilesCase(cur: Current, listsFiles: boolean): void {
  it(listsFiles ? 'listFiles names every file under a path, pages deep' : 'listFiles is not offered', async () => {
    const { d } = cur;
    if (!listsFiles) {
      expect(typeof d.listFiles).toBe('undefined');
      return;
    }
    if (!d.listFiles) throw new Error('the driver does not offer listFiles');
    const names = Array.from({ length: 1_030 }, (_, i) => `t/${i % 3 === 0 ? 'a/b/' : ''}f${i}`);
    await pMap(names, (n) => d.putContent(n, n), { concurrency: 16 });
    await d.putContent('tx/sibling', '1');
    await d.putContent('top', '1');
    const pages: string[][] = [];
    for await (const page of d.listFiles('t')) pages.push(page);
    expect(pages.length).toBeGreaterThan(1);
    expect(pages.flat().sort()).toEqual([...names].sort());
    const none: string[][] = [];
    for await (const page of d.listFiles('absent')) none.push(page);
    expect(none).toEqual([]);
  });
}

/** Whole-file reads and writes: round trips, atomicity, missing paths, the health probe. */
function contentCases(cur: Current): void {
  it('putContent then getContent round-trips and replaces', async () => {
    const { d } = cur;
    await d.putContent('a/b/c', 'one');
    expect((await d.getContent('a/b/c')).toString()).toBe('one');
    await d.putContent('a/b/c', Buffer.from('two'));
    expect((await d.getContent('a/b/c')).toString()).toBe('two');
    expect((await d.stat('a/b/c')).size).toBe(3);
    expect((await d.stat('a/b/c')).isDir).toBe(false);
  });

  it('getContent returns every byte of contents of any size, below and above 64 KiB', async () => {
    const { d } = cur;
    const sizes = [0, 1, 65_535, 65_536, 65_537, 3 * 1024 * 1024 + 7];
    const contents = sizes.map((n) => randomBytes(n));
    for (const [i, data] of contents.entries()) await d.putContent(`sizes/${i}`, data);
    for (const [i, data] of contents.entries()) {
      const back = await d.getContent(`sizes/${i}`);
      expect(back.length).toBe(data.length);
      expect(back.equals(data)).toBe(true);
      expect((await d.stat(`sizes/${i}`)).size).toBe(data.length);
    }
  });

  it('putAll writes every entry, strings and bytes, replacing what was there', async () => {
    const { d } = cur;
    await d.putContent('p/link', 'old');
    await putAll(d, [
      { path: 'p/data', data: Buffer.from('content') },
      { path: 'p/link', data: 'names the content' },
      { path: 'q/r/link', data: 'another' },
    ]);
    expect((await d.getContent('p/data')).toString()).toBe('content');
    expect((await d.getContent('p/link')).toString()).toBe('names the content');
    expect((await d.getContent('q/r/link')).toString()).toBe('another');
    expect((await d.list('p')).map((e) => e.name).sort()).toEqual(['data', 'link']);
  });

  it('statFile finds files only: a directory is as missing as nothing', async () => {
    const { d } = cur;
    await d.putContent('sf/dir/file', 'abc');
    const info = await statFile(d, 'sf/dir/file');
    expect(info.size).toBe(3);
    expect(info.isDir).toBe(false);
    await expect(statFile(d, 'sf/dir')).rejects.toBeInstanceOf(PathNotFoundError);
    await expect(statFile(d, 'sf/nope')).rejects.toBeInstanceOf(PathNotFoundError);
    await expect(statFile(d, 'sf/dir/file/below')).rejects.toBeInstanceOf(PathNotFoundError);
    expect((await d.stat('sf/dir')).isDir).toBe(true);
  });

  it('missing paths throw PathNotFoundError', async () => {
    const { d } = cur;
    await d.putContent('there/file', 'x');
    await expect(d.getContent('nope')).rejects.toBeInstanceOf(PathNotFoundError);
    await expect(d.getContent('there/file/below')).rejects.toBeInstanceOf(PathNotFoundError);
    await expect(d.stat('there/file/below')).rejects.toBeInstanceOf(PathNotFoundError);
    await expect(d.stat('nope/x')).rejects.toBeInstanceOf(PathNotFoundError);
    await expect(d.stat('there/fil')).rejects.toBeInstanceOf(PathNotFoundError);
    await expect(d.list('nope')).rejects.toBeInstanceOf(PathNotFoundError);
    await expect(d.list('ther')).rejects.toBeInstanceOf(PathNotFoundError);
    await expect(d.reader('nope')).rejects.toBeInstanceOf(PathNotFoundError);
    await expect(d.move('nope', 'x')).rejects.toBeInstanceOf(PathNotFoundError);
  });

  it('concurrent putContent to one path leaves one whole value', async () => {
    const { d } = cur;
    const values = Array.from({ length: 20 }, (_, i) => `value-${i}-${'x'.repeat(1000)}`);
    await Promise.all(values.map((v) => d.putContent('race/link', v)));
    expect(values).toContain((await d.getContent('race/link')).toString());
    expect((await d.list('race')).map((e) => e.name)).toEqual(['link']);
  });

  it('readers of one path during a putContent see the old value or the new, never a mix', async () => {
    const { d } = cur;
    const oldValue = 'o'.repeat(256 * 1024);
    const newValue = 'n'.repeat(256 * 1024);
    await d.putContent('atomic/link', oldValue);
    const reads: Promise<string>[] = [];
    const write = d.putContent('atomic/link', newValue);
    for (let i = 0; i < 10; i++) reads.push(d.getContent('atomic/link').then((b) => b.toString()));
    await write;
    for (const r of await Promise.all(reads)) expect([oldValue, newValue]).toContain(r);
    expect((await d.getContent('atomic/link')).toString()).toBe(newValue);
  });

  it('checkWritable succeeds and leaves nothing', async () => {
    const { d, h } = cur;
    await d.checkWritable();
    await h.assertEmpty();
  });
}

/** Streaming writers and moves: appends across writers and processes, ranges, publishing. */
function writerCases(cur: Current): void {
  it('writer appends or truncates; reader serves ranges', async () => {
    const { d } = cur;
    await pipeline(Readable.from([Buffer.from('hello ')]), await d.writer('u/data', { append: true }));
    await pipeline(Readable.from([Buffer.from('world')]), await d.writer('u/data', { append: true }));
    expect(await text(await d.reader('u/data'))).toBe('hello world');
    expect(await text(await d.reader('u/data', { start: 6, end: 10 }))).toBe('world');
    expect(await text(await d.reader('u/data', { start: 0, end: 0 }))).toBe('h');
    expect(await text(await d.reader('u/data', { start: 6 }))).toBe('world');
    await pipeline(Readable.from([Buffer.from('x')]), await d.writer('u/data', { append: false }));
    expect(await text(await d.reader('u/data'))).toBe('x');
  });

  it('an empty writer leaves an empty file', async () => {
    const { d } = cur;
    const w = await d.writer('e/data', { append: false });
    await new Promise<void>((resolve, reject) => w.end((err?: Error | null) => (err ? reject(err) : resolve())));
    expect((await d.stat('e/data')).size).toBe(0);
    expect((await d.getContent('e/data')).length).toBe(0);
  });

  it('appends across writer instances and drivers, past the multipart part size, in 1 MiB chunks', async () => {
    const { d, h } = cur;
    const other = await h.sibling();
    const data = randomBytes(13 * MiB + 12345);
    const seen: Buffer[] = [];
    const cuts = [0, 3 * MiB, 7 * MiB + 5, 7 * MiB + 5, 12 * MiB, data.length];
    for (let i = 0; i + 1 < cuts.length; i++) {
      const driver = i % 2 === 0 ? d : other;
      const w = await driver.writer('up/x/data', { append: true, onData: (c) => seen.push(Buffer.from(c)) });
      await pipeline(chunked(data.subarray(cuts[i], cuts[i + 1]), MiB), w);
      expect((await d.stat('up/x/data')).size).toBe(cuts[i + 1]);
      expect((await other.stat('up/x/data')).size).toBe(cuts[i + 1]);
    }
    expect(sha(Buffer.concat(seen))).toBe(sha(data));
    // a read in the middle of the upload, then more appends, then a read of the whole
    expect(sha(await readAll(await other.reader('up/x/data', { start: 5 * MiB, end: 9 * MiB - 1 })))).toBe(
      sha(data.subarray(5 * MiB, 9 * MiB)),
    );
    const more = randomBytes(2 * MiB + 7);
    await pipeline(chunked(more, MiB), await d.writer('up/x/data', { append: true }));
    const all = Buffer.concat([data, more]);
    expect((await other.stat('up/x/data')).size).toBe(all.length);
    expect(sha(await readAll(await d.reader('up/x/data')))).toBe(sha(all));
    expect(sha(await other.getContent('up/x/data'))).toBe(sha(all));
  });

  it('move publishes a large appended file at its destination', async () => {
    const { d } = cur;
    const data = randomBytes(6 * MiB + 3);
    await pipeline(chunked(data, MiB), await d.writer('up/y/data', { append: true }));
    await d.move('up/y/data', 'blobs/yy/data');
    expect(sha(await readAll(await d.reader('blobs/yy/data')))).toBe(sha(data));
    expect((await d.stat('blobs/yy/data')).size).toBe(data.length);
    await expect(d.stat('up/y/data')).rejects.toBeInstanceOf(PathNotFoundError);
  });

  it('move replaces the destination and removes the source', async () => {
    const { d } = cur;
    await d.putContent('src/data', 'new');
    await d.putContent('dst/x/data', 'old');
    await d.move('src/data', 'dst/x/data');
    expect((await d.getContent('dst/x/data')).toString()).toBe('new');
    await expect(d.stat('src/data')).rejects.toBeInstanceOf(PathNotFoundError);
  });
}

/** Directories: listing (paged), prefix-safe deletes of trees, files and staged uploads. */
function treeCases(cur: Current): void {
  it('list names direct children with their kind', async () => {
    const { d } = cur;
    await d.putContent('r/one/link', '1');
    await d.putContent('r/one/deeper/link', '1');
    await d.putContent('r/two', '2');
    await d.putContent('rx/three', '3');
    const entries = (await d.list('r')).sort((a, b) => a.name.localeCompare(b.name));
    expect(entries).toEqual([
      { name: 'one', isDir: true },
      { name: 'two', isDir: false },
    ]);
    expect((await d.stat('r/one')).isDir).toBe(true);
    expect((await d.list('')).map((e) => e.name).sort()).toEqual(['r', 'rx']);
  });

  it('list returns every entry of a directory larger than one listing page', async () => {
    const { d } = cur;
    const names = Array.from({ length: 1_050 }, (_, i) => `n${String(i).padStart(4, '0')}`);
    await pMap(names, (n) => d.putContent(`big/${n}`, n), { concurrency: 16 });
    const listed = (await d.list('big')).map((e) => e.name).sort();
    expect(listed).toEqual(names);
  });

  it('delete removes a tree and the parents it leaves empty, and ignores absent paths', async () => {
    const { d } = cur;
    await d.putContent('k/a/b/c/link', '1');
    await d.putContent('k/keep', '1');
    await d.delete('k/a/b');
    await expect(d.stat('k/a')).rejects.toBeInstanceOf(PathNotFoundError);
    expect((await d.list('k')).map((e) => e.name)).toEqual(['keep']);
    await d.delete('k/absent/thing');
  });

  it('delete of a path never touches a sibling that shares its prefix', async () => {
    const { d } = cur;
    await d.putContent('p/a/link', '1');
    await d.putContent('p/ab/link', '2');
    await d.putContent('p/a-b/link', '3');
    await d.delete('p/a');
    await expect(d.stat('p/a/link')).rejects.toBeInstanceOf(PathNotFoundError);
    expect((await d.getContent('p/ab/link')).toString()).toBe('2');
    expect((await d.getContent('p/a-b/link')).toString()).toBe('3');
    await d.delete('p/a-b/link');
    expect((await d.getContent('p/ab/link')).toString()).toBe('2');
  });

  it('delete removes a file, and a staged upload with it', async () => {
    const { d } = cur;
    await pipeline(chunked(randomBytes(6 * MiB), MiB), await d.writer('up/z/data', { append: true }));
    await d.putContent('up/z/startedat', 'now');
    await d.delete('up/z/data');
    await expect(d.stat('up/z/data')).rejects.toBeInstanceOf(PathNotFoundError);
    expect((await d.list('up/z')).map((e) => e.name)).toEqual(['startedat']);
    await d.delete('up');
    await expect(d.list('up')).rejects.toBeInstanceOf(PathNotFoundError);
  });
}
