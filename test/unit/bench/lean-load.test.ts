import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';

import { leanGetLoad } from '../../../bench/lib/lean-load.js';

const BODY = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}');

interface Served {
  origin: string;
  requests: number;
  sockets: Set<Socket>;
}

/** A server answering every GET with `answer(n)` for its n-th request: a status and a body. */
async function serve(
  answer: (n: number) => [number, Buffer] = () => [200, BODY],
): Promise<Served & { server: Server }> {
  const served: Served = { origin: '', requests: 0, sockets: new Set() };
  const server = createServer((req, res) => {
    served.sockets.add(req.socket);
    const [status, body] = answer(served.requests++);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  served.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(served, { server });
}

describe('the lean load client', () => {
  const servers: Server[] = [];
  const start = async (answer?: (n: number) => [number, Buffer]) => {
    const s = await serve(answer);
    servers.push(s.server);
    return s;
  };
  afterEach(async () => {
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      await new Promise((resolve) => s.close(resolve));
    }
  });
  const load = (origins: string[], connections = 4) =>
    leanGetLoad({ origins, path: '/v2/r/manifests/base', headers: {}, expected: BODY, connections, seconds: 1 });

  it('splits its connections evenly between the origins and counts every answer', async () => {
    const [a, b] = [await start(), await start()];
    const got = await load([a.origin, b.origin], 4);
    // answers still in flight when the time is up are not counted: at most one per connection
    expect(got.requests).toBeLessThanOrEqual(a.requests + b.requests);
    expect(got.requests).toBeGreaterThanOrEqual(a.requests + b.requests - 4);
    expect(a.requests).toBeGreaterThan(100);
    expect(b.requests).toBeGreaterThan(100);
    expect([a.sockets.size, b.sockets.size]).toEqual([2, 2]);
    expect(got.requestsPerSecond).toBeCloseTo(got.requests / got.seconds, 6);
    expect(got.seconds).toBeGreaterThanOrEqual(0.9);
  });

  it('fails when any answer carries other bytes than expected, naming the origin', async () => {
    const good = await start();
    const bad = await start((n) => [200, n % 50 === 49 ? Buffer.from(BODY.toString().replace('2', '3')) : BODY]);
    await expect(load([good.origin, bad.origin])).rejects.toThrow(
      new RegExp(`^GET /v2/r/manifests/base: ${bad.origin}: \\d+ wrong bodies$`),
    );
  });

  it('fails on an error status', async () => {
    const s = await start((n) => (n === 10 ? [503, Buffer.from('{"errors":[]}')] : [200, BODY]));
    await expect(load([s.origin], 2)).rejects.toThrow(/1 non-2xx/);
  });

  it('fails when an origin does not answer at all', async () => {
    const s = await start();
    const closed = await start();
    const origin = closed.origin;
    await new Promise((resolve) => closed.server.close(resolve));
    servers.pop();
    await expect(load([s.origin, origin], 2)).rejects.toThrow(new RegExp(`${origin}: \\d+ errors`));
  });

  it('refuses connections that do not split evenly', async () => {
    const [a, b] = [await start(), await start()];
    await expect(load([a.origin, b.origin], 3)).rejects.toThrow('3 connections do not split evenly over 2 origins');
  });
});
