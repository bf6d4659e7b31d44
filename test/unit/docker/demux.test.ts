import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { demuxDockerStream } from '../../../src/docker/demux.js';

function frame(type: number, payload: string): Buffer {
  const body = Buffer.from(payload);
  const header = Buffer.alloc(8);
  header[0] = type;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}

describe('demuxDockerStream', () => {
  it('merges stdout and stderr frames in order, whatever the chunk boundaries', async () => {
    const all = Buffer.concat([frame(1, 'out one\n'), frame(2, 'err two\n'), frame(1, 'out three\n')]);
    for (const cut of [1, 3, 8, 9, 15, all.length - 1]) {
      const chunks = [all.subarray(0, cut), all.subarray(cut)];
      expect(await text(demuxDockerStream(Readable.from(chunks)))).toBe('out one\nerr two\nout three\n');
    }
  });

  it('passes a TTY stream (no frame headers) through unchanged', async () => {
    expect(await text(demuxDockerStream(Readable.from([Buffer.from('plain text log\n')])))).toBe('plain text log\n');
  });
});
