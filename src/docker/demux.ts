import { PassThrough, type Readable } from 'node:stream';

/**
 * Docker's log stream for a container without a TTY is framed: an 8-byte header (stream type 0/1/2,
 * three zero bytes, a big-endian uint32 length) before each payload. This turns it into plain text with
 * stdout and stderr interleaved in arrival order. A stream that does not start with such a header (a TTY
 * container) passes through unchanged.
 */
export function demuxDockerStream(source: Readable): PassThrough {
  const out = new PassThrough();
  let pending: Buffer = Buffer.alloc(0);
  let framed: boolean | undefined;
  source.on('data', (chunk: Buffer | string) => {
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (framed === false) {
      out.write(data);
      return;
    }
    pending = pending.length ? Buffer.concat([pending, data]) : data;
    if (framed === undefined) {
      if (pending.length < 8) return;
      framed = pending[0]! <= 2 && pending[1] === 0 && pending[2] === 0 && pending[3] === 0;
      if (!framed) {
        out.write(pending);
        pending = Buffer.alloc(0);
        return;
      }
    }
    while (pending.length >= 8) {
      const size = pending.readUInt32BE(4);
      if (pending.length < 8 + size) break;
      out.write(pending.subarray(8, 8 + size));
      pending = pending.subarray(8 + size);
    }
  });
  source.on('end', () => {
    if (framed === undefined && pending.length) out.write(pending);
    out.end();
  });
  source.on('close', () => {
    if (!out.writableEnded) out.end();
  });
  source.on('error', (err) => out.destroy(err));
  return out;
}
