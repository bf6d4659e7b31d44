/**
 * The filesystem driver's small-file I/O on the event loop's thread. A manifest PUT writes four small files and a
 * request reads a few links; from and to the page cache each of these system calls costs microseconds, less than a
 * round trip through libuv's thread pool, so they run here, as SQLite's reads and writes do. Anything larger goes
 * through the pool (fs-driver.ts).
 */
import { closeSync, fstatSync, mkdirSync, openSync, readSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { tempSuffix } from './driver.js';

/**
 * The longest stretch of these calls between two turns of the event loop. A request makes a few, but a long job (a
 * retention run or a GC reading every manifest of a large repository) would otherwise read thousands in a row, each
 * resolving at once, and keep every other request waiting until it ends.
 */
export const INLINE_SLICE_MS = 5;

let sliceStart: number | undefined;
function loopTurned(): void {
  sliceStart = undefined;
}

/**
 * Called before each call on this thread: undefined while the current stretch is shorter than INLINE_SLICE_MS, else
 * a promise that resolves after one turn of the event loop (sockets read, timers run), for the caller to await.
 */
export function inlineTurn(): Promise<void> | undefined {
  const now = performance.now();
  if (sliceStart === undefined) {
    sliceStart = now;
    setImmediate(loopTurned);
    return undefined;
  }
  if (now - sliceStart < INLINE_SLICE_MS) return undefined;
  return new Promise((resolve) => setImmediate(resolve));
}

/** A temporary name beside `path`, hidden, that no other writer picks. */
export function tempName(path: string): string {
  const dir = dirname(path);
  const base = path.slice(dir.length + 1);
  return `${dir}/.${base}${tempSuffix()}`;
}

/**
 * Journaled files up to this size are written and renamed on the event loop's thread. They go to the page cache
 * unsynced (their journal record is what is synced), so each step is a few microseconds of kernel time, less than
 * handing it to the thread pool and back; a manifest PUT writes four such files. SQLite's writes already run on
 * this thread the same way. Larger ones go through the pool.
 */
export const INLINE_WRITE_MAX = 64 * 1024;

/** `writeTemp` on this thread, for small data (see INLINE_WRITE_MAX). */
export function writeTempNow(abs: string, data: Buffer): string {
  const tmp = tempName(abs);
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(tmp, data, { mode: 0o644 });
      return tmp;
    } catch (err) {
      // The directory is missing (a new one, or pruned by a concurrent delete): create it and try again.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 4) throw err;
      mkdirSync(dirname(abs), { recursive: true });
    }
  }
}

/**
 * Files up to this size are read on the event loop's thread, like the small writes above: links, manifests and
 * upload state are read on most requests, nearly always from the page cache, where an open, an fstat, a read and a
 * close on this thread cost less than the four thread-pool round trips of `readFile`. A larger file is read
 * through the pool.
 */
const INLINE_READ_MAX = 64 * 1024;

/** The content of `abs` read on this thread when it is small; undefined when it is larger (see INLINE_READ_MAX). */
export function readSmallNow(abs: string): Buffer | undefined {
  const fd = openSync(abs, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > INLINE_READ_MAX) return undefined;
    // Not from the shared pool: a manifest read here may stay in the manifest cache for long.
    const buf = Buffer.allocUnsafeSlow(size);
    let at = 0;
    while (at < size) {
      const n = readSync(fd, buf, at, size - at, at);
      if (n === 0) break;
      at += n;
    }
    return at === size ? buf : buf.subarray(0, at);
  } finally {
    closeSync(fd);
  }
}
