/**
 * The storage driver contract: the narrow set of operations the registry needs from a place that holds
 * files, so that a filesystem, memory or (later) object-storage backend can sit under the same registry.
 * Paths are relative, `/`-separated, produced by `pathFor`, and never contain `..`.
 *
 * - `putContent` is atomic: a reader sees the old content or the new, never a torn file. `putContents` writes
 *   several files so: each becomes visible in the order given, and a crash may keep the first ones without
 *   the later, never a later one without those before it (see `putAll`).
 * - `writer` streams into a file (appending or truncating); the data is durable once `move` has published it.
 *   `onData`, when given, sees every chunk in order just before it is written (uploads hash what they store
 *   this way, without a stream stage of their own). A writer may still be finishing requests it started when a
 *   pipeline into it fails: its `close` event comes once it settled, and a caller that looks at the file or
 *   writes it again after a failure waits for that (`settled`).
 * - `move` atomically replaces the destination and makes the move durable.
 * - `putVerified` (optional) stores content in one write that happens only if it hashes as announced.
 * - `delete` removes a file or a whole tree, then the parent directories it left empty; deleting what is
 *   absent is not an error.
 * - Missing paths make `getContent`, `reader`, `stat`, `list` and `move` throw `PathNotFoundError`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Transform, type Readable, type Writable } from 'node:stream';

export interface FileInfo {
  size: number;
  modifiedAt: Date;
  isDir: boolean;
}

export interface DirEntry {
  name: string;
  isDir: boolean;
}

export interface WriterOptions {
  append: boolean;
  onData?: (chunk: Buffer) => void;
}

/** Resolves once `stream` has closed (at once when it already has): whatever it started has settled then. */
export function settled(stream: Writable): Promise<void> {
  if (stream.closed) return Promise.resolve();
  return new Promise((resolve) => stream.once('close', () => resolve()));
}

/** One file of a `putContents`. */
export interface ContentEntry {
  path: string;
  data: Buffer | string;
}

/**
 * Writes the entries in order: together where the driver can (`putContents`), else one `putContent` after the
 * other. Either way a crash keeps a prefix of them, so an entry may rely on those before it (a link on the
 * content it names).
 */
export async function putAll(driver: StorageDriver, entries: readonly ContentEntry[]): Promise<void> {
  if (entries.length > 1 && driver.putContents) return driver.putContents(entries);
  for (const e of entries) await driver.putContent(e.path, e.data);
}

/** The file at `path`; PathNotFoundError when nothing or only a directory is there. */
export async function statFile(driver: StorageDriver, path: string): Promise<FileInfo> {
  if (driver.statFile) return driver.statFile(path);
  const info = await driver.stat(path);
  if (info.isDir) throw new PathNotFoundError(path);
  return info;
}

/** Bytes `start`..`end` of a file, both inclusive (as `fs.createReadStream` counts them). */
export type ByteRange = { start: number; end: number };

export interface StorageDriver {
  readonly name: string;
  getContent(path: string): Promise<Buffer>;
  putContent(path: string, data: Buffer | string): Promise<void>;
  /**
   * Optional: `putContent` of each entry, in order, for a driver that can make them durable together (the
   * filesystem driver with its journal: one sync for all). Callers use `putAll`.
   */
  putContents?(entries: readonly ContentEntry[]): Promise<void>;
  /** Byte range `start`..`end`, both inclusive, like `fs.createReadStream`. */
  reader(path: string, range?: { start?: number; end?: number }): Promise<Readable>;
  writer(path: string, opts: WriterOptions): Promise<Writable>;
  /**
   * Optional: writes bytes `start`..`end` (inclusive) of `path` to `out` without ending it, resolving when
   * every byte has been handed to `out`. A driver offers it when it can do better than `reader` piped into
   * `out` (the filesystem driver reuses its read buffers instead of allocating one per chunk).
   */
  copyTo?(path: string, range: ByteRange, out: Writable, onBytes?: (n: number) => void): Promise<void>;
  /**
   * Optional: a time-limited URL where a client can GET `path` itself, or undefined to have the registry send the
   * bytes. Object stores offer it (presigned URLs) when redirects are enabled; the file must exist.
   */
  redirectURL?(path: string): Promise<string | undefined>;
  /**
   * Optional: stores the `length` bytes read from `body` at `path` in one write that takes effect only when they
   * hash to `sha256` (hex): on a mismatch it throws ContentMismatchError, on a short body or a failed read it
   * throws that error, and either way nothing is at `path` afterwards (what was there stays). Resolves false,
   * having read nothing, when it does not take this write (a length above what one write may hold); the caller
   * then stages the bytes as usual. Object stores offer it: one PUT to the final key instead of a staged upload, a
   * completion and a copy (S3 has no rename).
   */
  putVerified?(path: string, body: Readable, opts: { length: number; sha256: string }): Promise<boolean>;
  stat(path: string): Promise<FileInfo>;
  /**
   * Optional: `stat` of a file only, a directory being as missing as nothing. Object stores offer it: their
   * `stat` of a missing key asks a second time whether the path is a directory, which a caller looking for a file
   * does not need. Callers use `statFile`.
   */
  statFile?(path: string): Promise<FileInfo>;
  list(path: string): Promise<DirEntry[]>;
  /**
   * Optional: the path of every file under `path`, a page at a time, in no set order (nothing when `path` is
   * absent). Object stores offer it: their listing of a whole tree costs one request per thousand files, where a
   * walk costs one per directory. A search across every repository (the upload purge) uses it when offered.
   */
  listFiles?(path: string): AsyncIterable<string[]>;
  move(from: string, to: string): Promise<void>;
  delete(path: string): Promise<void>;
  /**
   * Optional: false when the driver never leaves temporary files behind (every write is atomic by itself, as an
   * object store's PUT is), so start-up skips the sweep for leftovers, which walks the whole storage.
   */
  readonly leavesTempFiles?: boolean;
  /** Checks that new files can be written (used by /healthz). */
  checkWritable(): Promise<void>;
  /** Optional: prepares the storage before anything is read (recovers what a crash left half-done). */
  open?(): Promise<void>;
  /** Optional: makes everything written durable in its final place, once no request is left. */
  close?(): Promise<void>;
}

export class PathNotFoundError extends Error {
  readonly path: string;
  constructor(path: string) {
    super(`path not found: ${path}`);
    this.name = 'PathNotFoundError';
    this.path = path;
  }
}

/** `putVerified`'s bytes did not hash to the digest they were sent for (or were not as many as announced). */
export class ContentMismatchError extends Error {
  constructor(
    readonly actual: string,
    readonly bytes: number,
  ) {
    super(`content hashes to sha256:${actual} (${bytes} bytes)`);
    this.name = 'ContentMismatchError';
  }
}

/**
 * A pass-through that hashes what flows and holds the last chunk back until the source has ended and the whole
 * content matched `sha256` and `length`: a consumer writing it to a length-delimited request (a PUT with a
 * Content-Length) thus never sends the final byte of content that does not match, so the store never commits it.
 */
export function verifyingStream(expected: { length: number; sha256: string }): Transform {
  const hash = createHash('sha256');
  let bytes = 0;
  let held: Buffer | undefined;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      const out = held;
      held = chunk;
      if (bytes > expected.length) done(new ContentMismatchError('(longer than announced)', bytes));
      else done(null, out);
    },
    flush(done) {
      const actual = hash.digest('hex');
      if (actual !== expected.sha256 || bytes !== expected.length) done(new ContentMismatchError(actual, bytes));
      else done(null, held);
    },
  });
}

/**
 * The storage did not answer (a remote store unreachable, or failing on its side after retries): nothing was
 * changed by the failed call, and the same request may succeed later. The registry answers 503 with Retry-After.
 */
export class StorageUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageUnavailableError';
  }
}

export function isNotFound(err: unknown): err is PathNotFoundError {
  return err instanceof PathNotFoundError;
}

export function assertRelativePath(path: string): void {
  if (path.startsWith('/') || path.split('/').some((s) => s === '..' || s === '.')) {
    throw new Error(`invalid storage path: ${path}`);
  }
}

/** Suffix marking temporary files; fsck reports and repairs leftovers carrying it. */
export const TEMP_MARKER = '.tmp-';
/**
 * Written right after TEMP_MARKER by this process (random per process), so that the startup cleanup can tell
 * its own temp files from a dead process's without trusting file times (kernel timestamps are coarse).
 */
export const TEMP_PROCESS_TAG = randomBytes(3).toString('hex');

/** Counts this process's temp files from a random start: unique here without a random draw per file. */
let tempSeq = randomBytes(4).readUInt32BE(0);

/** The rest of a temp file's name: TEMP_MARKER, this process's tag, and a number no other temp file here has. */
export function tempSuffix(): string {
  tempSeq = (tempSeq + 1) % 2 ** 48;
  return `${TEMP_MARKER}${TEMP_PROCESS_TAG}${tempSeq.toString(16).padStart(12, '0')}`;
}
