/**
 * One upstream download of a blob, shared by every client asking for it while it runs (single flight per
 * digest). The bytes go two ways at once: into an ordinary upload of the repository (hashed as they stream, then
 * verified and published as a linked blob by the upload store, which stores nothing on a digest mismatch), and
 * into a spool file that every client follows at its own pace. The spool file is unlinked as soon as it is open,
 * so a crash leaves nothing behind; it lives in the data directory (or the system's temporary directory).
 *
 * A client never receives the blob's last byte before the digest is verified: on a mismatch (or an upstream that
 * breaks off) every client's connection is aborted, so no client ends up holding bytes that pass for the blob.
 */
import { EventEmitter } from 'node:events';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import type { Digest } from '../reference.js';
import type { RegistryStore } from '../storage/store.js';

const READ_CHUNK = 1024 * 1024;

export class BlobFlight {
  /** Bytes received from the upstream (and written to the spool file) so far. */
  written = 0;
  state: 'running' | 'verified' | 'failed' = 'running';
  error: Error | undefined;
  /** Ends when the flight does: resolves once verified and stored, rejects on failure. */
  readonly done: Promise<void>;
  private readonly events = new EventEmitter();
  private readers = 0;
  private spool: FileHandle | undefined;

  constructor(
    /** The upstream's Content-Length, when it sent one. */
    readonly size: number | undefined,
    run: (flight: BlobFlight) => Promise<void>,
    /** Called as the flight ends, before any client hears of it: new clients then read from storage. */
    private readonly settled: () => void = () => undefined,
  ) {
    this.events.setMaxListeners(0);
    this.done = run(this).then(
      () => this.finish('verified'),
      (err: unknown) => {
        this.error = err as Error;
        this.finish('failed');
        throw err;
      },
    );
    this.done.catch(() => undefined);
  }

  /** Called by the download with its spool file, before the first byte. */
  attach(spool: FileHandle): void {
    this.spool = spool;
  }

  /** Called by the download after each chunk reached the spool file. */
  progress(n: number): void {
    this.written += n;
    this.events.emit('change');
  }

  private finish(state: 'verified' | 'failed'): void {
    this.settled();
    this.state = state;
    this.events.emit('change');
    void this.release();
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.events.once('change', resolve));
  }

  private async release(): Promise<void> {
    if (this.readers === 0 && this.state !== 'running') {
      const spool = this.spool;
      this.spool = undefined;
      await spool?.close().catch(() => undefined);
    }
  }

  /**
   * The blob's bytes as this client can have them: all that has arrived, less the last byte until the digest is
   * verified. The stream errors if the flight fails.
   */
  reader(): Readable {
    this.readers++;
    let pos = 0;
    const next = async (): Promise<Buffer | null> => {
      for (;;) {
        if (this.state === 'failed') throw this.error ?? new Error('upstream download failed');
        const available = this.state === 'verified' ? this.written : Math.max(0, this.written - 1);
        if (pos < available) {
          if (!this.spool) throw new Error('the download is over');
          const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, available - pos));
          const { bytesRead } = await this.spool.read(buf, 0, buf.length, pos);
          pos += bytesRead;
          return bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
        }
        if (this.state === 'verified') return null;
        await this.changed();
      }
    };
    const done = (): void => {
      this.readers--;
      void this.release();
    };
    return new Readable({
      highWaterMark: 0,
      read() {
        next().then(
          (chunk) => this.push(chunk),
          (err: Error) => this.destroy(err),
        );
      },
      destroy(err, cb) {
        done();
        cb(err);
      },
    });
  }
}

/**
 * Downloads `body` (the upstream's response body) into an upload of `name` and publishes it as `digest`, feeding
 * `flight` as bytes arrive. Throws the upload store's DIGEST_INVALID on a mismatch (nothing stored).
 */
export async function download(
  store: RegistryStore,
  name: string,
  digest: Digest,
  body: Readable,
  flight: BlobFlight,
  spoolDir: string,
): Promise<void> {
  const dir = await mkdtemp(join(spoolDir, '.regctl-proxy-'));
  let spool: FileHandle;
  try {
    spool = await open(join(dir, 'spool'), 'w+', 0o600);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  flight.attach(spool);
  let at = 0;
  const tee = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      spool.write(chunk, 0, chunk.length, at).then(() => {
        at += chunk.length;
        flight.progress(chunk.length);
        cb(null, chunk);
      }, cb);
    },
  });
  body.on('error', (err) => tee.destroy(err));
  try {
    const id = await store.uploads.start(name);
    await store.uploads.complete(name, id, digest, body.pipe(tee));
  } catch (err) {
    body.destroy();
    throw err;
  }
}
