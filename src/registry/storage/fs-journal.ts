/**
 * The filesystem driver's write journal: how small writes (manifests, links, upload markers) become durable
 * together instead of one fsync at a time.
 *
 * Without it, every small write is a temporary file, an fsync of it, a rename and an fsync of its directory: a
 * manifest PUT with its revision link and its tag makes eight fsyncs, each a round trip to the disk. With it, a
 * write appends a record (path and content) to the journal, and the records of every write that arrives while the
 * journal is being synced go to disk together with the next `fdatasync` of the journal (a group commit). Once its
 * record is durable, the write renames its temporary file into place, unsynced. The kernel writes those files back
 * later; a checkpoint (every few seconds under load) syncs the whole filesystem once (`syncfs`, through `sync -f`)
 * and only then deletes the journal segments it covered. After a crash, `recoverJournal` writes back every file
 * the remaining segments hold before the registry reads anything, so what was acknowledged is what is served.
 *
 * Records are `[u32 body length][u32 crc32 of body][body]`, body = `[u8 kind][u16 path length][path][data]`,
 * paths relative to the driver's root. A record cut short by a crash (its write never acknowledged) ends the
 * replay of its segment. Deletes are recorded too, so that a replay does not bring back what was deleted after
 * being journaled; they are not waited for (a delete was never synced, with or without the journal). A write that
 * bypasses the journal (a move, a large file) records a `drop` of its path after it is durable, so that a replay
 * does not put an older journaled content over it.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdir, open, readdir, readFile, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import { fsyncDir, isAbsent } from '../../common/fs.js';
import { assertRelativePath, tempSuffix } from './driver.js';

const execFileAsync = promisify(execFile);

/** The journal's directory, under the driver's root and beside the storage layout (`docker/`). */
export const JOURNAL_DIR = '.regctl-journal';
/** Content larger than this is written with an fsync of its own instead. */
export const JOURNAL_MAX_DATA = 1024 * 1024;
/** A segment is checkpointed once it holds this many records or bytes, or this long after its first record. */
const SEGMENT_MAX_RECORDS = 4096;
const SEGMENT_MAX_BYTES = 16 * 1024 * 1024;
const CHECKPOINT_AFTER_MS = 5_000;

const PUT = 1;
const DELETE = 2;
const DROP = 3;

/** The durability primitives the journal uses (the filesystem's, or gated ones in tests). */
export interface JournalSync {
  /** Makes what was appended to a journal segment durable (fdatasync). */
  syncJournal: (fh: FileHandle) => Promise<void>;
  /** Makes every file written under `root` durable; `files` are the absolute paths the journal wrote there. */
  syncAll: (root: string, files: readonly string[]) => Promise<void>;
  /** Makes a directory's entries durable. */
  syncDir: (dir: string) => Promise<void>;
}

/**
 * Syncs the filesystem holding `root` in one call (`sync -f`, which is `syncfs`); where no `sync` command exists,
 * syncs each file and its directory instead.
 */
export async function syncFilesystem(root: string, files: readonly string[]): Promise<void> {
  try {
    await execFileAsync('sync', ['-f', root], { timeout: 600_000 });
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  for (const file of files) {
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (err) {
      if (isAbsent(err)) continue; // deleted since: nothing to keep
      throw err;
    }
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
  for (const dir of new Set(files.map((f) => dirname(f)))) {
    try {
      await fsyncDir(dir);
    } catch (err) {
      if (!isAbsent(err)) throw err;
    }
  }
}

function encode(kind: number, path: string, data?: Buffer): Buffer {
  const p = Buffer.from(path);
  const bodyLength = 3 + p.length + (data?.length ?? 0);
  const record = Buffer.allocUnsafe(8 + bodyLength);
  record.writeUInt32LE(bodyLength, 0);
  record.writeUInt8(kind, 8);
  record.writeUInt16LE(p.length, 9);
  p.copy(record, 11);
  data?.copy(record, 11 + p.length);
  record.writeUInt32LE(crc32(record.subarray(8)), 4);
  return record;
}

type JournalRecord = { kind: number; path: string; data: Buffer };

/** The whole records of a segment, in order, up to the first one that is cut short or damaged. */
function* decode(segment: Buffer): Generator<JournalRecord> {
  let at = 0;
  while (at + 8 <= segment.length) {
    const length = segment.readUInt32LE(at);
    if (length < 3 || at + 8 + length > segment.length) return;
    const body = segment.subarray(at + 8, at + 8 + length);
    if (crc32(body) !== segment.readUInt32LE(at + 4)) return;
    const pathLength = body.readUInt16LE(1);
    if (3 + pathLength > length) return;
    yield {
      kind: body.readUInt8(0),
      path: body.subarray(3, 3 + pathLength).toString(),
      data: body.subarray(3 + pathLength),
    };
    at += 8 + length;
  }
}

/** Segment files in the order they were written. */
async function segmentFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => /^\d{16}\.log$/.test(n)).sort();
  } catch (err) {
    if (isAbsent(err)) return [];
    throw err;
  }
}

/**
 * Brings back every file the journal under `root` holds (what a crash may have kept from reaching the disk),
 * makes them durable, then removes the journal. Returns how many files were written. Runs before anything reads
 * the storage: the driver's `open`, and tools that work on a data directory offline. Several processes starting
 * on one directory at once may all run it: they write the same content, and a segment one of them already
 * removed is skipped by the others.
 */
export async function recoverJournal(root: string, sync: Pick<JournalSync, 'syncAll' | 'syncDir'>): Promise<number> {
  const dir = join(root, JOURNAL_DIR);
  const names = await segmentFiles(dir);
  if (names.length === 0) return 0;
  const files = new Map<string, Buffer>();
  for (const name of names) {
    let segment: Buffer;
    try {
      segment = await readFile(join(dir, name));
    } catch (err) {
      if (isAbsent(err)) continue; // recovered and removed by another process starting on the same directory
      throw err;
    }
    for (const r of decode(segment)) {
      if (r.kind === PUT) {
        assertRelativePath(r.path);
        files.delete(r.path); // keeps the map in write order
        files.set(r.path, r.data);
      } else if (r.kind === DROP) {
        files.delete(r.path);
      } else if (r.kind === DELETE) {
        for (const p of [...files.keys()]) if (p === r.path || p.startsWith(`${r.path}/`)) files.delete(p);
      }
    }
  }
  const written: string[] = [];
  for (const [path, data] of files) {
    const abs = join(root, path);
    await mkdir(dirname(abs), { recursive: true });
    const tmp = join(dirname(abs), `.${basename(abs)}${tempSuffix()}`);
    await writeWhole(tmp, data);
    await rename(tmp, abs);
    written.push(abs);
  }
  await sync.syncAll(root, written);
  for (const name of names) {
    await unlink(join(dir, name)).catch((err: unknown) => {
      if (!isAbsent(err)) throw err;
    });
  }
  await sync.syncDir(dir);
  return written.length;
}

async function writeWhole(path: string, data: Buffer): Promise<void> {
  const fh = await open(path, 'w', 0o644);
  try {
    await fh.writeFile(data);
  } finally {
    await fh.close();
  }
}

type Waiter = { record: Buffer; resolve: () => void; reject: (err: unknown) => void };

/** One file of the journal: records appended in batches, one fdatasync per batch. */
class Segment {
  readonly file: string;
  records = 0;
  bytes = 0;
  /** Puts whose record is in this segment and whose file is not renamed into place yet. */
  unapplied = 0;
  /** Paths put through this segment. */
  readonly paths: string[] = [];
  broken: Error | undefined;
  queue: Waiter[] = [];
  flushing: Promise<void> | undefined;
  private fh: FileHandle | undefined;
  private written = 0;
  private onApplied: (() => void) | undefined;

  constructor(
    dir: string,
    readonly seq: number,
    private readonly sync: JournalSync,
  ) {
    this.file = join(dir, `${String(seq).padStart(16, '0')}.log`);
  }

  /** Resolves once `record` (holding `count` records) is durable, with the records queued beside it. */
  append(record: Buffer, count = 1): Promise<void> {
    this.records += count;
    this.bytes += record.length;
    const done = new Promise<void>((resolve, reject) => this.queue.push({ record, resolve, reject }));
    this.flushing ??= this.flush();
    return done;
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0);
      try {
        if (this.broken !== undefined) throw this.broken;
        this.fh ??= await open(this.file, 'a', 0o600);
        let rest = batch.map((w) => w.record);
        while (rest.length > 0) {
          let { bytesWritten } = await this.fh.writev(rest);
          this.written += bytesWritten;
          while (rest.length > 0 && bytesWritten >= (rest[0] as Buffer).length)
            bytesWritten -= (rest.shift() as Buffer).length;
          if (bytesWritten > 0) rest = [(rest[0] as Buffer).subarray(bytesWritten), ...rest.slice(1)];
        }
        await this.sync.syncJournal(this.fh);
        for (const w of batch) w.resolve();
      } catch (err) {
        // What follows a failed write in the file may be torn: the segment takes no more records.
        this.broken ??= err instanceof Error ? err : new Error(String(err));
        for (const w of batch) w.reject(err);
      }
    }
    this.flushing = undefined;
  }

  applied(): void {
    this.unapplied--;
    if (this.unapplied === 0) this.onApplied?.();
  }

  /** Resolves once every record is written and every put it holds has its file in place. */
  async settled(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.unapplied > 0) await new Promise<void>((r) => (this.onApplied = r));
  }

  async close(): Promise<void> {
    await this.fh?.close();
    this.fh = undefined;
  }
}

export class FsJournal {
  private readonly dir: string;
  private active: Segment | undefined;
  private sealed: Segment[] = [];
  private nextSeq = 1;
  /** Path → the newest segment holding a put of it that no checkpoint covered yet. */
  private readonly pending = new Map<string, Segment>();
  private checkpointing: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly root: string,
    private readonly sync: JournalSync,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {
    this.dir = join(root, JOURNAL_DIR);
  }

  /** Creates the journal's directory; the first segment number follows any segment left (recovered) there. */
  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const last = (await segmentFiles(this.dir)).pop();
    if (last) this.nextSeq = Number(last.slice(0, 16)) + 1;
  }

  /**
   * Journals a put of `data` at `path` and resolves once it is durable, with a function to call once the file
   * is in place (renamed) or its write given up.
   */
  put(path: string, data: Buffer): Promise<() => void> {
    return this.putMany([{ path, data }]);
  }

  /**
   * `put` of several files in one append: durable together, with one sync. A replay of an append torn by a
   * crash keeps the records before the tear (each is checked on its own), so an entry may rely on earlier ones.
   */
  async putMany(entries: readonly { path: string; data: Buffer }[]): Promise<() => void> {
    const seg = this.segment();
    seg.unapplied += entries.length;
    for (const { path } of entries) {
      seg.paths.push(path);
      this.pending.set(path, seg);
    }
    const done = once(() => {
      for (let i = 0; i < entries.length; i++) seg.applied();
    });
    try {
      await seg.append(Buffer.concat(entries.map((e) => encode(PUT, e.path, e.data))), entries.length);
    } catch (err) {
      done();
      throw err;
    }
    return done;
  }

  /** Records the deletion of `path` and everything under it, when a replay could otherwise bring some back. */
  delete(path: string): void {
    if (this.pending.size === 0) return;
    this.segment()
      .append(encode(DELETE, path))
      .catch(() => undefined);
  }

  /** After a write to `path` that bypassed the journal is durable: a replay must not put older content there. */
  async drop(path: string): Promise<void> {
    if (!this.pending.has(path)) return;
    await this.segment().append(encode(DROP, path));
  }

  /** Makes every journaled write durable in place and removes the segments that held them. */
  checkpoint(): Promise<void> {
    const run = this.checkpointing.then(() => this.runCheckpoint());
    this.checkpointing = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.checkpoint();
  }

  private segment(): Segment {
    if (this.active && this.active.broken === undefined) {
      if (this.active.records >= SEGMENT_MAX_RECORDS || this.active.bytes >= SEGMENT_MAX_BYTES) void this.background();
      else return this.active;
    }
    if (this.active) this.sealed.push(this.active);
    this.active = new Segment(this.dir, this.nextSeq++, this.sync);
    this.timer ??= setTimeout(() => void this.background(), CHECKPOINT_AFTER_MS);
    this.timer.unref();
    return this.active;
  }

  private background(): Promise<void> {
    return this.checkpoint().catch(this.onError);
  }

  private async runCheckpoint(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.active && this.active.records > 0) {
      this.sealed.push(this.active);
      this.active = undefined;
    }
    const segments = this.sealed.splice(0);
    if (segments.length === 0) return;
    try {
      await Promise.all(segments.map((s) => s.settled()));
      const files = [...new Set(segments.flatMap((s) => s.paths))].map((p) => join(this.root, p));
      await this.sync.syncAll(this.root, files);
      for (const s of segments) {
        await s.close();
        await unlink(s.file).catch((err: unknown) => {
          if (!isAbsent(err)) throw err;
        });
      }
      await this.sync.syncDir(this.dir);
    } catch (err) {
      this.sealed.unshift(...segments);
      throw err;
    }
    for (const s of segments) for (const p of s.paths) if (this.pending.get(p) === s) this.pending.delete(p);
    if (this.active && !this.timer) this.timer = setTimeout(() => void this.background(), CHECKPOINT_AFTER_MS).unref();
  }
}

function once(fn: () => void): () => void {
  let called = false;
  return () => {
    if (called) return;
    called = true;
    fn();
  };
}
