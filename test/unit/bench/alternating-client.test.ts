import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { HttpClient } from '../../../bench/lib/http.js';
import { AlternatingClient } from '../../../bench/s3-pass.js';

/** The replica comparison has no load balancer: its client must send every other request to each replica. */
describe('the client of two replicas', () => {
  const servers: Server[] = [];
  const hits: string[] = [];
  beforeAll(async () => {
    for (const name of ['a', 'b']) {
      const server = createServer((req, res) => {
        hits.push(`${name} ${req.method ?? ''} ${req.url ?? ''}`);
        res.end(name);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      servers.push(server);
    }
  });
  afterAll(async () => {
    for (const s of servers) await new Promise((resolve) => s.close(resolve));
  });

  it('alternates its requests between the two ports, in turn', async () => {
    const clients = servers.map((s) => new HttpClient('127.0.0.1', (s.address() as AddressInfo).port, undefined, 4));
    const client = new AlternatingClient(clients);
    try {
      const bodies: string[] = [];
      for (let i = 0; i < 5; i++) bodies.push((await client.request('GET', `/v2/r${i}`)).body.toString('utf8'));
      expect(bodies).toEqual(['a', 'b', 'a', 'b', 'a']);
      expect(hits).toEqual(['a GET /v2/r0', 'b GET /v2/r1', 'a GET /v2/r2', 'b GET /v2/r3', 'a GET /v2/r4']);
      // the lean load client is given both, to split its connections between them
      expect(client.origins()).toEqual(clients.map((c) => c.origin));
    } finally {
      client.close();
    }
  });
});
