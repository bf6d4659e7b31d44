/**
 * A GET load from a client that costs little CPU per request (autocannon: plain sockets and a small HTTP parser,
 * about two thirds of the CPU the `node:http` client spends per GET here). On a two-core host, a load generator
 * that takes a core of its own competes with the servers it loads; this one leaves them room, so what a figure
 * measures is the servers.
 */
import autocannon from 'autocannon';

import { VerifyError } from './http.js';

export interface LeanLoadResult {
  requests: number;
  seconds: number;
  requestsPerSecond: number;
}

export interface LeanGet {
  /** Every origin serving the same content (`http://host:port`); connections are split evenly between them. */
  origins: readonly string[];
  path: string;
  headers: Record<string, string>;
  /** The body every response must carry, byte for byte (UTF-8 text). */
  expected: Buffer;
  connections: number;
  seconds: number;
}

/**
 * GETs `path` from every origin at once for `seconds`, `connections` keep-alive connections in all, no
 * pipelining. Every response must be a 2xx carrying exactly `expected`; a mismatch, an error status, a connection
 * error or a time-out fails the run with the counts.
 */
export async function leanGetLoad(load: LeanGet): Promise<LeanLoadResult> {
  const { origins, connections } = load;
  if (origins.length === 0) throw new Error('no origin to load');
  if (connections < origins.length || connections % origins.length !== 0)
    throw new Error(`${connections} connections do not split evenly over ${origins.length} origins`);
  const expectBody = load.expected.toString('utf8');
  const results = await Promise.all(
    origins.map((origin) =>
      autocannon({
        url: `${origin}${load.path}`,
        method: 'GET',
        headers: load.headers,
        connections: connections / origins.length,
        pipelining: 1,
        duration: load.seconds,
        expectBody,
      }),
    ),
  );
  const failures = results.flatMap((r, i) => {
    const bad = { errors: r.errors, timeouts: r.timeouts, 'non-2xx': r.non2xx, 'wrong bodies': r.mismatches };
    const counts = Object.entries(bad).filter(([, n]) => n > 0);
    return counts.length === 0 ? [] : [`${origins[i] ?? ''}: ${counts.map(([k, n]) => `${n} ${k}`).join(', ')}`];
  });
  if (failures.length > 0) throw new VerifyError(`GET ${load.path}: ${failures.join('; ')}`);
  const requests = results.reduce((n, r) => n + r.requests.total, 0);
  const seconds = Math.max(...results.map((r) => r.duration));
  if (requests === 0) throw new VerifyError(`GET ${load.path}: no request completed in ${seconds} s`);
  return { requests, seconds, requestsPerSecond: requests / seconds };
}
