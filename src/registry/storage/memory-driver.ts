import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  PathNotFoundError,
  assertRelativePath,
  verifyingStream,
  type DirEntry,
  type FileInfo,
  type StorageDriver,
  type WriterOptions,
} from './driver.js';

interface MemFile {
  chunks: Buffer[];
  size: number;
  modifiedAt: Date;
}

/** In-memory driver for tests and ephemeral registries; directories exist implicitly while they hold files. */
export class MemoryDriver implements StorageDriver {
  readonly name = 'memory';
  private readonly files = new Map<string, MemFile>();

  private file(path: string): MemFile {
    assertRelativePath(path);
    const f = this.files.get(path);
    if (!f) throw new PathNotFoundError(path);
    return f;
  }

  private isDir(path: string): boolean {
    const prefix = path === '' ? '' : path + '/';
    for (const key of this.files.keys()) if (key.startsWith(prefix)) return true;
    return false;
  }

  async getContent(path: string): Promise<Buffer> {
    const f = this.file(path);
    return Buffer.concat(f.chunks, f.size);
  }

  async putContent(path: string, data: Buffer | string): Promise<void> {
    assertRelativePath(path);
    const buf = Buffer.from(data);
    this.files.set(path, { chunks: [buf], size: buf.length, modifiedAt: new Date() });
  }

  async reader(path: string, range: { start?: number; end?: number } = {}): Promise<Readable> {
    const f = this.file(path);
    const all = Buffer.concat(f.chunks, f.size);
    const start = range.start ?? 0;
    const end = range.end === undefined ? all.length : range.end + 1;
    return Readable.from([all.subarray(start, end)]);
  }

  async writer(path: string, opts: WriterOptions): Promise<Writable> {
    assertRelativePath(path);
    let f = this.files.get(path);
    if (!f || !opts.append) {
      f = { chunks: [], size: 0, modifiedAt: new Date() };
      this.files.set(path, f);
    }
    const target = f;
    return new Writable({
      write(chunk: Buffer, _enc, cb) {
        opts.onData?.(chunk);
        target.chunks.push(Buffer.from(chunk));
        target.size += chunk.length;
        target.modifiedAt = new Date();
        cb();
      },
    });
  }

  async stat(path: string): Promise<FileInfo> {
    assertRelativePath(path);
    const f = this.files.get(path);
    if (f) return { size: f.size, modifiedAt: f.modifiedAt, isDir: false };
    if (this.isDir(path)) return { size: 0, modifiedAt: new Date(0), isDir: true };
    throw new PathNotFoundError(path);
  }

  async list(path: string): Promise<DirEntry[]> {
    assertRelativePath(path);
    const prefix = path === '' ? '' : path + '/';
    const out = new Map<string, boolean>();
    for (const key of this.files.keys()) {
      if (!key.startsWith(prefix)) continue;
      const rest = key.slice(prefix.length);
      const slash = rest.indexOf('/');
      if (slash === -1) out.set(rest, false);
      else out.set(rest.slice(0, slash), true);
    }
    if (out.size === 0) throw new PathNotFoundError(path);
    return [...out].map(([name, isDir]) => ({ name, isDir }));
  }

  /** Every file under `path`, in pages of a thousand like an object store's listing. */
  async *listFiles(path: string): AsyncIterable<string[]> {
    assertRelativePath(path);
    const prefix = path === '' ? '' : path + '/';
    const keys = [...this.files.keys()].filter((k) => k.startsWith(prefix));
    for (let i = 0; i < keys.length; i += 1000) yield keys.slice(i, i + 1000);
  }

  async putVerified(path: string, body: Readable, opts: { length: number; sha256: string }): Promise<boolean> {
    assertRelativePath(path);
    const chunks: Buffer[] = [];
    await pipeline(
      body,
      verifyingStream(opts),
      new Writable({
        write(chunk: Buffer, _enc, done) {
          chunks.push(chunk);
          done();
        },
      }),
    );
    this.files.set(path, { chunks, size: opts.length, modifiedAt: new Date() });
    return true;
  }

  async move(from: string, to: string): Promise<void> {
    const f = this.file(from);
    assertRelativePath(to);
    this.files.delete(from);
    this.files.set(to, f);
  }

  async delete(path: string): Promise<void> {
    assertRelativePath(path);
    this.files.delete(path);
    const prefix = path + '/';
    for (const key of [...this.files.keys()]) if (key.startsWith(prefix)) this.files.delete(key);
  }

  async checkWritable(): Promise<void> {
    // Memory is always writable.
  }
}
