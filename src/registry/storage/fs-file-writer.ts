import type { FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';

/** Size of the buffers the filesystem driver streams with. */
export const STREAM_BUFFER = 1024 * 1024;

/** Bytes written between two background flushes of a file being written. */
const FLUSH_EVERY = 64 * 1024 * 1024;

/**
 * Writes to a file and, each time the file has grown by FLUSH_EVERY bytes since its last flush, asks the kernel to
 * write what it holds to disk (`fdatasync`) in the background, one flush at a time, while writing goes on. A blob is
 * fsynced before it is published; without the flushes all of a large upload would still be in the page cache at that
 * moment (the kernel starts writing back only past a share of memory), and the upload would wait for the whole of it.
 *
 * The flush points are offsets in the file, not counts of this writer's bytes, so that an upload sent as many
 * chunks (one writer each) is flushed as it grows, like one sent whole. A writer that ends while its flush is still
 * running does not wait for it: it hands the flush and the closing of the file to `closeLater`, and whoever makes
 * the file durable (the driver's `move`) waits for them first.
 */
export class FlushingFileWriter extends Writable {
  private position: number;
  private flushedAt: number;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly fh: FileHandle,
    startOffset: number,
    private readonly closeLater: (closing: Promise<void>) => void,
    private readonly onData: ((chunk: Buffer) => void) | undefined,
    private readonly flushFile: (fh: FileHandle) => Promise<void>,
  ) {
    super({ highWaterMark: STREAM_BUFFER });
    this.position = startOffset;
    this.flushedAt = startOffset - (startOffset % FLUSH_EVERY);
  }

  private afterWrite(n: number): void {
    this.position += n;
    if (this.flushing || this.position - this.flushedAt < FLUSH_EVERY) return;
    this.flushedAt = this.position;
    // A failed background flush is not the write's failure: the fsync before publishing reports it.
    this.flushing = this.flushFile(this.fh)
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => (this.flushing = undefined));
  }

  /** Writes every byte of `buffers` (a short write, as on a nearly full disk, is continued). */
  private async writeAll(buffers: Buffer[]): Promise<void> {
    let rest = buffers;
    while (rest.length > 0) {
      let { bytesWritten } = rest.length === 1 ? await this.fh.write(rest[0] as Buffer) : await this.fh.writev(rest);
      this.afterWrite(bytesWritten);
      while (rest.length > 0 && bytesWritten >= (rest[0] as Buffer).length)
        bytesWritten -= (rest.shift() as Buffer).length;
      if (bytesWritten > 0) rest = [(rest[0] as Buffer).subarray(bytesWritten), ...rest.slice(1)];
    }
  }

  // `onData` runs once the write is under way, so that hashing a batch overlaps with writing it (both only read
  // the buffers); it still sees every chunk in order, before the next batch is written.
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const writing = this.writeAll([chunk]);
    this.onData?.(chunk);
    writing.then(() => cb(), cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    const buffers = chunks.map((c) => c.chunk);
    const writing = this.writeAll(buffers.slice());
    if (this.onData) for (const b of buffers) this.onData(b);
    writing.then(() => cb(), cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.flushing) {
      this.closeLater(this.flushing.then(() => this.fh.close()).catch(() => undefined));
      cb(err);
      return;
    }
    this.fh.close().then(
      () => cb(err),
      (closeErr: Error) => cb(err ?? closeErr),
    );
  }
}
