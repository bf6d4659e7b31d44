import { renameSync, statSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fsyncDir } from '../../common/fs.js';
import { FlushingFileWriter, STREAM_BUFFER } from './fs-file-writer.js';
import { INLINE_WRITE_MAX, inlineTurn, readSmallNow, tempName, writeTempNow } from './fs-small-files.js';
import { FsJournal, JOURNAL_MAX_DATA, recoverJournal, syncFilesystem, type JournalSync } from './fs-journal.js';
import {
  PathNotFoundError,
  assertRelativePath,
  tempSuffix,
  type ByteRange,
  type ContentEntry,
  type DirEntry,
  type FileInfo,
  type StorageDriver,
  type WriterOptions,
} from './driver.js';

/**
 * Read buffers for `copyTo`, kept between requests. Every buffer allocated per chunk (what a read stream
 * does) is fresh memory the kernel must map and zero and the collector must later reclaim: at hundreds of
 * MB/s that is CPU time and tens of MiB of garbage waiting for a collection. A pull instead reads into two
 * buffers in turn, each reused once the socket has taken its previous contents.
 */
const SPARE_BUFFERS_MAX = 8;
const spareBuffers: Buffer[] = [];

function takeBuffer(size: number): Buffer {
  if (size < STREAM_BUFFER) return Buffer.allocUnsafeSlow(size);
  return spareBuffers.pop() ?? Buffer.allocUnsafeSlow(STREAM_BUFFER);
}

function giveBack(buf: Buffer): void {
  if (buf.length === STREAM_BUFFER && spareBuffers.length < SPARE_BUFFERS_MAX) spareBuffers.push(buf);
}

/** Writes `data` to `out`, resolving once `out` has passed it on (its buffer may then be reused). */
function writeAndWait(out: Writable, data: Buffer, closed: Promise<never>): Promise<void> {
  return Promise.race([
    new Promise<void>((resolve, reject) => void out.write(data, (err) => (err ? reject(err) : resolve()))),
    closed,
  ]);
}
/** Runs `fn` after creating `dir`, again if a concurrent delete pruned the fresh directory in between. */
async function inDir<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    await mkdir(dir, { recursive: true });
    try {
      return await fn();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 4) throw err;
    }
  }
}

/** Writes `data` to a new temporary file beside `abs` (unsynced); returns its path. */
async function writeTemp(abs: string, data: Buffer): Promise<string> {
  if (data.length <= INLINE_WRITE_MAX) return writeTempNow(abs, data);
  const tmp = tempName(abs);
  const fh = await inDir(dirname(abs), () => open(tmp, 'w', 0o644));
  try {
    await fh.writeFile(data);
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  return tmp;
}

function notFound(err: unknown, path: string): never {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') throw new PathNotFoundError(path);
  throw err;
}

/** The durability primitives of the filesystem driver's writes (the filesystem's, or gated ones in tests). */
export interface SyncOps {
  /** Makes a file's data and size durable (fsync). */
  syncFile: (fh: FileHandle) => Promise<void>;
  /** Writes a growing file's data so far to disk, in the background of its writes (fdatasync). */
  flushFile: (fh: FileHandle) => Promise<void>;
  /** Makes a directory's entries durable (fsync of the directory). */
  syncDir: (dir: string) => Promise<void>;
  /** The journal's primitives (see fs-journal.ts); the filesystem's when left out. */
  syncJournal?: JournalSync['syncJournal'];
  syncAll?: JournalSync['syncAll'];
}

export interface FsDriverOptions {
  sync?: SyncOps;
  /**
   * Small writes go through the write journal (fs-journal.ts), durable in groups, once `open` has run. Without
   * it each write is synced on its own.
   */
  journal?: boolean;
  /** Told about a background checkpoint of the journal that failed (it is retried with the next one). */
  onError?: (err: unknown) => void;
}

/**
 * Filesystem driver: files under `root`, atomic writes by temp file + rename, durable before they are acknowledged:
 * through the write journal (small writes, when enabled), or by an fsync of the file and of its directory.
 * `sync` replaces the fsync primitives, so that tests can hold them and see that nothing is acknowledged
 * before it is durable.
 */
export class FsDriver implements StorageDriver {
  readonly name = 'filesystem';
  readonly root: string;
  private readonly sync: SyncOps;
  private readonly journalSync: JournalSync;
  private readonly opts: FsDriverOptions;
  private journal: FsJournal | undefined;
  /** Background flushes and closes of writers that have ended, by absolute path (see FlushingFileWriter). */
  private readonly closing = new Map<string, Set<Promise<void>>>();

  constructor(root: string, opts: FsDriverOptions = {}) {
    this.root = root;
    this.opts = opts;
    this.sync = opts.sync ?? { syncFile: (fh) => fh.sync(), flushFile: (fh) => fh.datasync(), syncDir: fsyncDir };
    this.journalSync = {
      syncJournal: this.sync.syncJournal ?? ((fh) => fh.datasync()),
      syncAll: this.sync.syncAll ?? syncFilesystem,
      syncDir: this.sync.syncDir,
    };
  }

  /**
   * Writes back what a journal left by a stopped or crashed process holds, then starts this driver's journal
   * when enabled. Runs before the registry reads anything.
   */
  async open(): Promise<void> {
    await mkdir(this.root, { recursive: true });
    await recoverJournal(this.root, this.journalSync);
    if (!this.opts.journal || this.journal) return;
    const journal = new FsJournal(this.root, this.journalSync, this.opts.onError);
    await journal.open();
    this.journal = journal;
  }

  /** Checkpoints the journal: every write it holds is synced in place and the journal emptied. */
  async close(): Promise<void> {
    await this.journal?.close();
    this.journal = undefined;
  }

  private abs(path: string): string {
    assertRelativePath(path);
    return join(this.root, path);
  }

  async getContent(path: string): Promise<Buffer> {
    const abs = this.abs(path);
    const turn = inlineTurn();
    if (turn) await turn;
    try {
      return readSmallNow(abs) ?? (await readFile(abs));
    } catch (err) {
      return notFound(err, path);
    }
  }

  async putContent(path: string, data: Buffer | string): Promise<void> {
    const journal = this.journal;
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (journal && bytes.length <= JOURNAL_MAX_DATA) return this.putJournaled(journal, [{ path, data: bytes }]);
    await this.putSynced(path, bytes);
    await journal?.drop(path);
  }

  async putContents(entries: readonly ContentEntry[]): Promise<void> {
    const journal = this.journal;
    const items = entries.map((e) => ({
      path: e.path,
      data: typeof e.data === 'string' ? Buffer.from(e.data) : e.data,
    }));
    if (journal && items.every((i) => i.data.length <= JOURNAL_MAX_DATA)) return this.putJournaled(journal, items);
    for (const i of items) await this.putContent(i.path, i.data);
  }

  /**
   * The files are written unsynced, side by side, and published in order once their journal records are durable
   * (one sync for all of them).
   */
  private async putJournaled(journal: FsJournal, items: { path: string; data: Buffer }[]): Promise<void> {
    const abs = items.map((i) => this.abs(i.path));
    const written = await Promise.allSettled(items.map((i, k) => writeTemp(abs[k] as string, i.data)));
    const tmps = written.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const removeTemps = (from: number): Promise<unknown> =>
      Promise.all(tmps.slice(from).map((t) => unlink(t).catch(() => undefined)));
    const failed = written.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await removeTemps(0);
      throw failed.reason;
    }
    let applied: () => void;
    try {
      applied = await journal.putMany(items);
    } catch (err) {
      await removeTemps(0);
      throw err;
    }
    let k = 0;
    try {
      for (; k < items.length; k++) {
        const item = items[k] as { data: Buffer };
        if (item.data.length <= INLINE_WRITE_MAX) renameSync(tmps[k] as string, abs[k] as string);
        else await rename(tmps[k] as string, abs[k] as string);
      }
    } catch (err) {
      await removeTemps(k);
      throw err;
    } finally {
      applied();
    }
  }

  private async putSynced(path: string, data: Buffer): Promise<void> {
    const abs = this.abs(path);
    const dir = dirname(abs);
    const tmp = tempName(abs);
    const fh = await inDir(dir, () => open(tmp, 'w', 0o644));
    try {
      await fh.writeFile(data);
      await this.sync.syncFile(fh);
    } catch (err) {
      await fh.close();
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await fh.close();
    try {
      await rename(tmp, abs);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await this.sync.syncDir(dir);
  }

  async reader(path: string, range: { start?: number; end?: number } = {}): Promise<Readable> {
    let fh: FileHandle;
    try {
      fh = await open(this.abs(path), 'r');
    } catch (err) {
      return notFound(err, path);
    }
    try {
      return fh.createReadStream({ start: range.start, end: range.end, highWaterMark: STREAM_BUFFER });
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  async copyTo(path: string, range: ByteRange, out: Writable, onBytes?: (n: number) => void): Promise<void> {
    let fh: FileHandle;
    try {
      fh = await open(this.abs(path), 'r');
    } catch (err) {
      return notFound(err, path);
    }
    const total = range.end - range.start + 1;
    const size = Math.min(STREAM_BUFFER, total);
    const buffers = total > size ? [takeBuffer(size), takeBuffer(size)] : [takeBuffer(size)];
    const pending: (Promise<void> | undefined)[] = buffers.map(() => undefined);
    // A connection closed before the last write was taken ends the copy (and its buffers are not reused, a
    // write may still hold them).
    let onClose: (() => void) | undefined;
    const closed = new Promise<never>((_, reject) => {
      onClose = () =>
        reject(
          Object.assign(new Error('the connection closed during the response'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }),
        );
      out.once('close', onClose);
    });
    closed.catch(() => undefined);
    let clean = false;
    try {
      let pos = range.start;
      for (let i = 0; pos <= range.end; i = (i + 1) % buffers.length) {
        await pending[i];
        const buf = buffers[i] as Buffer;
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, range.end - pos + 1), pos);
        if (bytesRead === 0) throw new Error(`${path} ended at byte ${pos}, before byte ${range.end}`);
        pos += bytesRead;
        onBytes?.(bytesRead);
        const written = writeAndWait(out, buf.subarray(0, bytesRead), closed);
        // Awaited in turn below; a failure of one while the loop waits on the other must not go unhandled.
        written.catch(() => undefined);
        pending[i] = written;
      }
      await Promise.all(pending.filter((p) => p !== undefined));
      clean = true;
    } finally {
      if (onClose) out.off('close', onClose);
      await fh.close();
      if (clean) buffers.forEach(giveBack);
    }
  }

  async writer(path: string, opts: WriterOptions): Promise<Writable> {
    const abs = this.abs(path);
    const fh = await inDir(dirname(abs), () => open(abs, opts.append ? 'a' : 'w', 0o644));
    const start = opts.append ? (await fh.stat()).size : 0;
    return new FlushingFileWriter(
      fh,
      start,
      (closing) => this.closeLater(abs, closing),
      opts.onData,
      this.sync.flushFile,
    );
  }

  /** Keeps a writer's background flush and close until the file is next made durable (see FlushingFileWriter). */
  private closeLater(abs: string, closing: Promise<void>): void {
    const set = this.closing.get(abs) ?? new Set<Promise<void>>();
    set.add(closing);
    this.closing.set(abs, set);
    void closing.finally(() => {
      set.delete(closing);
      if (set.size === 0 && this.closing.get(abs) === set) this.closing.delete(abs);
    });
  }

  private async closed(abs: string): Promise<void> {
    const set = this.closing.get(abs);
    if (set) await Promise.all(set);
  }

  /** On this thread: one `stat` of an entry the kernel nearly always has cached (see fs-small-files.ts). */
  async stat(path: string): Promise<FileInfo> {
    const turn = inlineTurn();
    if (turn) await turn;
    let s;
    try {
      s = statSync(this.abs(path), { throwIfNoEntry: false });
    } catch (err) {
      return notFound(err, path);
    }
    if (s === undefined) throw new PathNotFoundError(path);
    return { size: s.size, modifiedAt: s.mtime, isDir: s.isDirectory() };
  }

  async list(path: string): Promise<DirEntry[]> {
    try {
      const entries = await readdir(this.abs(path), { withFileTypes: true });
      return entries.map((e) => ({ name: e.name, isDir: e.isDirectory() }));
    } catch (err) {
      return notFound(err, path);
    }
  }

  async move(from: string, to: string): Promise<void> {
    const src = this.abs(from);
    const dst = this.abs(to);
    await this.closed(src);
    let fh: FileHandle;
    try {
      fh = await open(src, 'r');
    } catch (err) {
      return notFound(err, from);
    }
    try {
      await this.sync.syncFile(fh);
    } finally {
      await fh.close();
    }
    await inDir(dirname(dst), () => rename(src, dst));
    await this.sync.syncDir(dirname(dst));
    await this.journal?.drop(to);
  }

  async delete(path: string): Promise<void> {
    const abs = this.abs(path);
    this.journal?.delete(path);
    await rm(abs, { recursive: true, force: true });
    let dir = dirname(abs);
    while (dir.length > this.root.length && dir.startsWith(this.root)) {
      try {
        await rmdir(dir);
      } catch {
        break;
      }
      dir = dirname(dir);
    }
  }

  async checkWritable(): Promise<void> {
    const probe = `.healthz${tempSuffix()}`;
    await mkdir(this.root, { recursive: true });
    const abs = join(this.root, probe);
    const fh = await open(abs, 'w');
    try {
      await fh.writeFile('ok');
    } finally {
      await fh.close();
      await unlink(abs).catch(() => undefined);
    }
  }
}
