/**
 * Copying a network stream (an S3 object's body) into a response. A socket yields chunks of up to 64 KiB, and a
 * response written chunk by chunk makes one send per chunk, with its bookkeeping on the event loop's thread: at a
 * few hundred MB/s that is most of a pull's CPU. Gathering the chunks and handing them over corked makes one
 * `writev` of each batch instead.
 */
import type { Readable, Writable } from 'node:stream';

/** Bytes gathered before they are written. */
export const BATCH_BYTES = 512 * 1024;

/** Resolves once `out` has room again (`drain`), rejects when it closes first. */
function roomIn(out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = (): void => {
      out.off('close', onClose);
      resolve();
    };
    const onClose = (): void => {
      out.off('drain', onDrain);
      reject(
        Object.assign(new Error('the connection closed during the response'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }),
      );
    };
    out.once('drain', onDrain);
    out.once('close', onClose);
  });
}

/**
 * Writes everything `src` yields to `out` (not ending it), BATCH_BYTES at a time; `onBytes` is told of each chunk
 * as it is written. A closed `out` ends the copy with an error, and `src` is destroyed.
 */
export async function copyBatched(src: Readable, out: Writable, onBytes?: (n: number) => void): Promise<void> {
  let batch: Buffer[] = [];
  let size = 0;
  const flush = async (): Promise<void> => {
    if (out.destroyed || out.writableEnded)
      throw Object.assign(new Error('the connection closed during the response'), {
        code: 'ERR_STREAM_PREMATURE_CLOSE',
      });
    let room = true;
    out.cork();
    for (const chunk of batch) room = out.write(chunk);
    out.uncork();
    for (const chunk of batch) onBytes?.(chunk.length);
    batch = [];
    size = 0;
    if (!room) await roomIn(out);
  };
  // Leaving the loop early (a closed `out`) ends the iteration, which destroys `src`.
  for await (const chunk of src) {
    batch.push(chunk as Buffer);
    size += (chunk as Buffer).length;
    if (size >= BATCH_BYTES) await flush();
  }
  if (size > 0) await flush();
}
