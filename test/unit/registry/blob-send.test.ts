/**
 * Blob downloads through the filesystem driver's copyTo (two read buffers in turn, reused across requests):
 * bytes exact across chunk boundaries, ranges, concurrent pulls, and a client that goes away mid-body.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBlob, startRegistry, USERS, type TestRegistry } from './helpers.js';
import { basicAuth } from '../../helpers/auth.js';

const MiB = 1024 * 1024;
let reg: TestRegistry;
let big: Buffer;
let digest: string;
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

beforeAll(async () => {
  reg = await startRegistry();
  // Not a multiple of the 1 MiB read buffer, so the last chunk is short.
  big = randomBytes(3 * MiB + 12_345);
  digest = await pushBlob(reg, 'send/big', big);
});
afterAll(() => reg.stop());

const openFds = async () => (await readdir('/proc/self/fd')).length;

describe('blob downloads', () => {
  it('a whole blob of several buffers arrives byte for byte', async () => {
    const res = await reg.fetch(`/v2/send/big/blobs/${digest}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(big.length));
    const body = Buffer.from(await res.arrayBuffer());
    expect(sha(body)).toBe(digest);
  });

  it('ranges across buffer boundaries are exact', async () => {
    for (const [start, end] of [
      [0, 0],
      [MiB - 1, MiB],
      [MiB - 10, 2 * MiB + 10],
      [3 * MiB, big.length - 1],
      [5, big.length - 1],
    ] as const) {
      const res = await reg.fetch(`/v2/send/big/blobs/${digest}`, { headers: { range: `bytes=${start}-${end}` } });
      expect(res.status).toBe(206);
      expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/${big.length}`);
      expect(Buffer.from(await res.arrayBuffer()).equals(big.subarray(start, end + 1))).toBe(true);
    }
  });

  it('eight concurrent pulls each get the right bytes (buffers are never shared between responses)', async () => {
    const other = randomBytes(2 * MiB + 7);
    const otherDigest = await pushBlob(reg, 'send/big', other);
    const bodies = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const d = i % 2 === 0 ? digest : otherDigest;
        return { d, got: sha(Buffer.from(await (await reg.fetch(`/v2/send/big/blobs/${d}`)).arrayBuffer())) };
      }),
    );
    for (const { d, got } of bodies) expect(got).toBe(d);
  });

  it('a client that disconnects mid-body leaves no open file and the next pull works', async () => {
    const before = await openFds();
    const url = new URL(`/v2/send/big/blobs/${digest}`, reg.url);
    const auth = basicAuth('admin', USERS.admin as string);
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve, reject) => {
        const req = request(url, { headers: { authorization: auth, connection: 'close' } }, (res) => {
          expect(res.statusCode).toBe(200);
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? resolve() : reject(err)));
        req.end();
      });
    }
    let after = await openFds();
    for (let i = 0; i < 50 && after > before; i++) {
      await new Promise((r) => setTimeout(r, 50));
      after = await openFds();
    }
    expect(after).toBeLessThanOrEqual(before);
    // A client going away is not a server error.
    expect(reg.logs.filter((l) => l.includes('"level":"error"'))).toEqual([]);
    const res = await reg.fetch(`/v2/send/big/blobs/${digest}`);
    expect(sha(Buffer.from(await res.arrayBuffer()))).toBe(digest);
  });
});
