/**
 * Copying a network stream (an S3 object's body) into a response. A socket yields chunks of up to 64 KiB, and a
 * response written chunk by chunk makes one send per chunk, with its bookkeeping on the event loop's thread: at a
 * few hundred MB/s that is most of a pull's CPU. Gathering the chunks and handing them over corked makes one
 * `writev` of each batch instead.
 */
import type { Readable, Writable } from 'node:stream';

/** Bytes gathered before they are written. */
export const BATCH_BYTES = 512 * 1024;

export function prematureClose(): Error {
  return Object.assign(new Error('the connection closed during the response'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

/** Resolves once `out` has room again (`drain`), rejects when it closes first. */
export function roomIn(out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = (): void => {
      out.off('close', onClose);
      resolve();
    };
    const onClose = (): void => {
      out.off('drain', onDrain);
      reject(prematureClose());
    };
    out.once('drain', onDrain);
    out.once('close', onClose);
  });
}

/** Chunks gathered for `out` and written BATCH_BYTES at a time, corked; `onBytes` is told of each as it is written. */
export class ResponseBatch {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(
    private readonly out: Writable,
    private readonly onBytes?: (n: number) => void,
  ) {}

  /** Gathers a chunk, writing the batch once it is full; false when `out` has no room left (see `roomIn`). */
  add(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    this.size += chunk.length;
    return this.size < BATCH_BYTES || this.write();
  }

  /** Writes what is gathered; false when `out` has no room left. Throws when `out` is closed. */
  write(): boolean {
    if (this.size === 0) return true;
    if (this.out.destroyed || this.out.writableEnded) throw prematureClose();
    let room = true;
    this.out.cork();
    for (const chunk of this.chunks) room = this.out.write(chunk);
    this.out.uncork();
    for (const chunk of this.chunks) this.onBytes?.(chunk.length);
    this.chunks = [];
    this.size = 0;
    return room;
  }
}

/**
 * Writes everything `src` yields to `out` (not ending it), BATCH_BYTES at a time; `onBytes` is told of each chunk
 * as it is written. A closed `out` ends the copy with an error, and `src` is destroyed.
 */
export async function copyBatched(src: Readable, out: Writable, onBytes?: (n: number) => void): Promise<void> {
  const batch = new ResponseBatch(out, onBytes);
  // Leaving the loop early (a closed `out`) ends the iteration, which destroys `src`.
  for await (const chunk of src) if (!batch.add(chunk as Buffer)) await roomIn(out);
  if (!batch.write()) await roomIn(out);
}
