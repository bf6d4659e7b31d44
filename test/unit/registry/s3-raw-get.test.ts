/**
 * The raw reader of large S3 GETs (s3-raw-get.ts) against a local TCP server that answers as told: how an answer's
 * framing is read. What S3 itself answers is the integration tests' (s3-driver.test.ts, on versitygw); the
 * answers here (a body cut short, a transfer coding, a head split across reads) cannot be had from it on demand.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { parseHead, rawCopy, readBuffers, RAW_TIMEOUT_CODE } from '../../../src/registry/storage/s3/s3-raw-get.js';

let server: Server | undefined;

/** A server that runs `answer` on each connection once the request's head arrived; its origin. */
async function answering(answer: (socket: Socket, request: string) => void): Promise<string> {
  server = createServer((socket) => {
    let head = '';
    socket.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      if (head.includes('\r\n\r\n')) answer(socket, head);
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return `http://127.0.0.1:${address.port}`;
}

/** Stops the server of the test (if any). */
async function stop(): Promise<void> {
  const s = server;
  server = undefined;
  if (s) await new Promise((resolve) => s.close(resolve));
}

afterEach(stop);
// Every GET gives its large read buffer back, however it ended: a lost one would leave later pulls reading small.
afterEach(() => expect(readBuffers.inUse).toBe(0));

/** A stream that keeps every chunk it is given (as any stream may). */
function keeping(): { out: Writable; bytes: () => Buffer } {
  const parts: Buffer[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      parts.push(chunk);
      cb();
    },
  });
  return { out, bytes: () => Buffer.concat(parts) };
}

const hooks = { connectTimeoutMs: 2_000, timeoutMs: 2_000, answered: () => undefined };
const request = (origin: string) => ({ origin, path: '/bucket/key', headers: { host: 'x', authorization: 'sig' } });

describe('the head of an answer', () => {
  it('reads the status and the headers, names in lower case', () => {
    const head = parseHead('HTTP/1.1 206 Partial Content\r\nContent-Length: 12\r\nETag:  "x" ');
    expect(head?.status).toBe(206);
    expect(head?.headers.get('content-length')).toBe('12');
    expect(head?.headers.get('etag')).toBe('"x"');
    expect(parseHead('HTTP/1.0 200')?.status).toBe(200);
  });

  it('refuses what is not an HTTP/1 head', () => {
    expect(parseHead('HTTP/2 200 OK')).toBeUndefined();
    expect(parseHead('HTTP/1.1 20 OK')).toBeUndefined();
    expect(parseHead('HTTP/1.1 200 OK\r\nno colon here')).toBeUndefined();
    expect(parseHead('HTTP/1.1 200 OK\r\n: empty name')).toBeUndefined();
  });
});

describe('a large GET read on a socket of its own', () => {
  it('writes the body of a plain answer, its head split across reads, and sends the signed headers as signed', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 17);
    let seen = '';
    const origin = await answering((socket, req) => {
      seen = req;
      socket.write('HTTP/1.1 206 Partial Conte');
      setTimeout(() => {
        socket.write(`nt\r\nContent-Length: ${body.length}\r\n\r\n`);
        socket.end(body);
      }, 20);
    });
    const { out, bytes } = keeping();
    const statuses: number[] = [];
    const counted: number[] = [];
    const done = await rawCopy(request(origin), body.length, out, {
      ...hooks,
      answered: (s) => statuses.push(s),
      onBytes: (n) => counted.push(n),
    });
    expect(done).toBe(true);
    // a stream that keeps its chunks got batches of its own: every byte as sent
    expect(bytes().equals(body)).toBe(true);
    expect(statuses).toEqual([206]);
    expect(counted.reduce((a, b) => a + b, 0)).toBe(body.length);
    expect(seen.startsWith('GET /bucket/key HTTP/1.1\r\n')).toBe(true);
    expect(seen).toContain('authorization: sig\r\n');
    expect(seen).toContain('connection: close\r\n');
  });

  it('leaves to the caller, with nothing written, an answer that is not the bytes asked for', async () => {
    const cases = [
      'HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno!',
      'HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n123456789',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 10\r\n\r\n',
      'HTTP/1.1 200 OK\r\n\r\n0123456789',
      'not http at all\r\n\r\n',
    ];
    for (const answer of cases) {
      const origin = await answering((socket) => socket.end(answer));
      const { out, bytes } = keeping();
      expect(await rawCopy(request(origin), 10, out, hooks), answer).toBe(false);
      expect(bytes().length).toBe(0);
      await stop();
    }
    // an endpoint that refuses the connection: the caller asks the SDK, which reports
    const { out } = keeping();
    expect(await rawCopy(request('http://127.0.0.1:1'), 10, out, hooks)).toBe(false);
  });

  it('fails once bytes flowed: a body cut short, or longer than its length', async () => {
    const short = await answering((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this'));
    await expect(rawCopy(request(short), 100, keeping().out, hooks)).rejects.toThrow(/before the end of the body/);
    await stop();
    const long = await answering((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n12345'));
    await expect(rawCopy(request(long), 4, keeping().out, hooks)).rejects.toThrow(/more bytes/);
  });

  it('times out, as S3 unavailable, when the endpoint does not answer or stops sending', async () => {
    const silent = await answering(() => undefined);
    const quick = { ...hooks, timeoutMs: 200 };
    await expect(rawCopy(request(silent), 10, keeping().out, quick)).rejects.toMatchObject({
      code: RAW_TIMEOUT_CODE,
      message: 'S3 did not answer in time',
    });
    await stop();
    const stalls = await answering((socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345'));
    await expect(rawCopy(request(stalls), 10, keeping().out, quick)).rejects.toMatchObject({
      code: RAW_TIMEOUT_CODE,
      message: 'S3 did not send the rest of the body in time',
    });
  });

  it('reads into at most four large buffers at once; more GETs read small, and every byte arrives', async () => {
    const bodies = Array.from({ length: 6 }, () => randomBytes(9 * 1024 * 1024 + 3));
    const held: (() => void)[] = [];
    const origin = await answering((socket, req) => {
      const body = bodies[Number(/GET \/bucket\/key(\d)/.exec(req)?.[1])] as Buffer;
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
      held.push(() => socket.end(body));
    });
    const outs = bodies.map(() => keeping());
    const copies = bodies.map((body, i) =>
      rawCopy({ ...request(origin), path: `/bucket/key${i}` }, body.length, outs[i]!.out, hooks),
    );
    expect(readBuffers.inUse).toBe(4);
    while (held.length < bodies.length) await new Promise((resolve) => setTimeout(resolve, 5));
    for (const release of held) release();
    expect(await Promise.all(copies)).toEqual(bodies.map(() => true));
    for (const [i, body] of bodies.entries()) expect(outs[i]!.bytes().equals(body), `body ${i}`).toBe(true);
    expect(readBuffers.inUse).toBe(0);
  });

  it('stops reading while the response holds its batches, and rejects when the response closes', async () => {
    const body = randomBytes(8 * 1024 * 1024);
    const origin = await answering((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
      socket.end(body);
    });
    // A response that takes a batch every 5 ms: never more than a few batches wait in it.
    let most = 0;
    let got = 0;
    const slow: Writable = new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _enc, cb) {
        most = Math.max(most, slow.writableLength);
        got += chunk.length;
        setTimeout(cb, 5);
      },
    });
    expect(await rawCopy(request(origin), body.length, slow, hooks)).toBe(true);
    await new Promise((resolve) => slow.end(resolve));
    expect(got).toBe(body.length);
    expect(most).toBeLessThanOrEqual(5 * 256 * 1024);
    await stop();

    const again = await answering((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
      socket.end(body);
    });
    const closing: Writable = new Writable({
      write(_chunk: Buffer, _enc, cb) {
        closing.destroy();
        cb();
      },
    });
    await expect(rawCopy(request(again), body.length, closing, hooks)).rejects.toMatchObject({
      code: 'ERR_STREAM_PREMATURE_CLOSE',
    });
  });
});
