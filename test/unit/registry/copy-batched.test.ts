/** copyBatched: a network stream's chunks written to a response in batches, in order, with backpressure. */
import { Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BATCH_BYTES, copyBatched } from '../../../src/registry/storage/copy-batched.js';

/** A sink that records how many buffers each write call handed it, and what bytes. */
function recordingSink(opts: { highWaterMark?: number; slow?: boolean } = {}) {
  const calls: number[] = [];
  const parts: Buffer[] = [];
  const done = (cb: () => void) => (opts.slow ? setTimeout(cb, 1) : cb());
  const sink = new Writable({
    highWaterMark: opts.highWaterMark ?? 16 * 1024,
    write(chunk: Buffer, _enc, cb) {
      calls.push(1);
      parts.push(chunk);
      done(cb);
    },
    writev(chunks, cb) {
      calls.push(chunks.length);
      for (const c of chunks) parts.push(c.chunk as Buffer);
      done(cb);
    },
  });
  return { sink, calls, bytes: () => Buffer.concat(parts) };
}

function chunksOf(count: number, size: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => Buffer.alloc(size, i % 251));
}

describe('copyBatched', () => {
  it('hands the chunks over in batches of BATCH_BYTES, every byte in order, without ending the sink', async () => {
    const chunks = chunksOf(40, 64 * 1024);
    const { sink, calls, bytes } = recordingSink();
    let counted = 0;
    await copyBatched(Readable.from(chunks), sink, (n) => (counted += n));
    expect(bytes().equals(Buffer.concat(chunks))).toBe(true);
    expect(counted).toBe(40 * 64 * 1024);
    expect(sink.writableEnded).toBe(false);
    // 2.5 MiB in 512 KiB batches of eight 64 KiB chunks: every write but the first of a batch is gathered.
    const perBatch = BATCH_BYTES / (64 * 1024);
    expect(calls.filter((n) => n === perBatch).length).toBeGreaterThanOrEqual(4);
    expect(calls.length).toBeLessThanOrEqual(2 * Math.ceil(chunks.length / perBatch));
  });

  it('waits for a slow sink to drain instead of buffering the whole source', async () => {
    const chunks = chunksOf(64, 64 * 1024);
    const { sink, bytes } = recordingSink({ slow: true });
    let maxBuffered = 0;
    const source = Readable.from(chunks);
    source.on('data', () => (maxBuffered = Math.max(maxBuffered, sink.writableLength)));
    await copyBatched(source, sink);
    expect(bytes().length).toBe(64 * 64 * 1024);
    expect(maxBuffered).toBeLessThanOrEqual(2 * BATCH_BYTES);
  });

  it('stops with an error and destroys the source when the sink closes', async () => {
    const { sink } = recordingSink({ slow: true });
    const source = Readable.from(
      (function* () {
        for (let i = 0; ; i++) {
          if (i === 20) sink.destroy();
          yield Buffer.alloc(64 * 1024, 1);
        }
      })(),
    );
    await expect(copyBatched(source, sink)).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
    expect(source.destroyed).toBe(true);
  });

  it('stops at once when the sink was closed before the copy began', async () => {
    const { sink } = recordingSink();
    sink.destroy();
    await new Promise((resolve) => setImmediate(resolve));
    const source = Readable.from(chunksOf(16, 64 * 1024));
    await expect(copyBatched(source, sink)).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
    expect(source.destroyed).toBe(true);
  });
});
