import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PathNotFoundError, type StorageDriver } from '../../../src/registry/storage/driver.js';
import { FsDriver } from '../../../src/registry/storage/fs-driver.js';
import { MemoryDriver } from '../../../src/registry/storage/memory-driver.js';

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

interface Harness {
  make(): Promise<StorageDriver>;
  cleanup(): Promise<void>;
}

const harnesses: Record<string, () => Harness> = {
  filesystem: () => {
    let dir = '';
    return {
      make: async () => {
        dir = await mkdtemp(join(tmpdir(), 'regctl-driver-'));
        return new FsDriver(dir);
      },
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  },
  memory: () => ({ make: async () => new MemoryDriver(), cleanup: async () => undefined }),
};

describe.each(Object.keys(harnesses))('storage driver contract: %s', (kind) => {
  let h: Harness;
  let d: StorageDriver;
  beforeEach(async () => {
    h = (harnesses[kind] as () => Harness)();
    d = await h.make();
  });
  afterEach(() => h.cleanup());

  it('putContent then getContent round-trips and replaces', async () => {
    await d.putContent('a/b/c', 'one');
    expect((await d.getContent('a/b/c')).toString()).toBe('one');
    await d.putContent('a/b/c', Buffer.from('two'));
    expect((await d.getContent('a/b/c')).toString()).toBe('two');
    expect((await d.stat('a/b/c')).size).toBe(3);
  });

  it('missing paths throw PathNotFoundError', async () => {
    await expect(d.getContent('nope')).rejects.toBeInstanceOf(PathNotFoundError);
    await expect(d.stat('nope/x')).rejects.toBeInstanceOf(PathNotFoundError);
    await expect(d.list('nope')).rejects.toBeInstanceOf(PathNotFoundError);
    await expect(d.reader('nope')).rejects.toBeInstanceOf(PathNotFoundError);
    await expect(d.move('nope', 'x')).rejects.toBeInstanceOf(PathNotFoundError);
  });

  it('writer appends or truncates; reader serves ranges', async () => {
    await pipeline(Readable.from([Buffer.from('hello ')]), await d.writer('u/data', { append: true }));
    await pipeline(Readable.from([Buffer.from('world')]), await d.writer('u/data', { append: true }));
    expect(await readAll(await d.reader('u/data'))).toBe('hello world');
    expect(await readAll(await d.reader('u/data', { start: 6, end: 10 }))).toBe('world');
    expect(await readAll(await d.reader('u/data', { start: 0, end: 0 }))).toBe('h');
    await pipeline(Readable.from([Buffer.from('x')]), await d.writer('u/data', { append: false }));
    expect(await readAll(await d.reader('u/data'))).toBe('x');
  });

  it('list names direct children with their kind', async () => {
    await d.putContent('r/one/link', '1');
    await d.putContent('r/two', '2');
    const entries = (await d.list('r')).sort((a, b) => a.name.localeCompare(b.name));
    expect(entries).toEqual([
      { name: 'one', isDir: true },
      { name: 'two', isDir: false },
    ]);
    expect((await d.stat('r/one')).isDir).toBe(true);
  });

  it('move replaces the destination and removes the source', async () => {
    await d.putContent('src/data', 'new');
    await d.putContent('dst/x/data', 'old');
    await d.move('src/data', 'dst/x/data');
    expect((await d.getContent('dst/x/data')).toString()).toBe('new');
    await expect(d.stat('src/data')).rejects.toBeInstanceOf(PathNotFoundError);
  });

  it('delete removes a tree and the parents it leaves empty, and ignores absent paths', async () => {
    await d.putContent('k/a/b/c/link', '1');
    await d.putContent('k/keep', '1');
    await d.delete('k/a/b');
    await expect(d.stat('k/a')).rejects.toBeInstanceOf(PathNotFoundError);
    expect((await d.list('k')).map((e) => e.name)).toEqual(['keep']);
    await d.delete('k/absent/thing');
  });

  it('concurrent putContent to one path leaves one whole value', async () => {
    const values = Array.from({ length: 20 }, (_, i) => `value-${i}-${'x'.repeat(1000)}`);
    await Promise.all(values.map((v) => d.putContent('race/link', v)));
    expect(values).toContain((await d.getContent('race/link')).toString());
    expect((await d.list('race')).map((e) => e.name)).toEqual(['link']);
  });

  it('checkWritable succeeds and leaves nothing', async () => {
    await d.checkWritable();
    if (d instanceof FsDriver) expect(await readdir(d.root)).toEqual([]);
  });
});
