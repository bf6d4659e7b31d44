import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Ports for tests to publish, chosen below the kernel's ephemeral range.
 *
 * A port the kernel hands out for `listen(0)` comes back to the ephemeral pool as soon as the probe closes: until
 * the test binds it, a server in another test worker (which asks for port 0) or any outgoing connection's local end
 * may take it, and the test then fails with "port in use" for no fault of the code under test. Below the range the
 * kernel never picks a port on its own, so only another test choosing the same number can collide: a random number
 * each time and a set of the numbers this process already gave out keep that away.
 */

const FALLBACK_EPHEMERAL_LOW = 32768;
const LOWEST = 10_000;

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > LOWEST + 1000 ? low : FALLBACK_EPHEMERAL_LOW;
  } catch {
    return FALLBACK_EPHEMERAL_LOW;
  }
}

const HIGHEST = ephemeralLow() - 1;
const SPAN = HIGHEST - LOWEST + 1;
const given = new Set<number>();

function canBind(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * A TCP port below the ephemeral range that nothing holds on `host` (every address by default, which is what a
 * published port needs) and that this process has not handed out before.
 */
export async function freePort(host = '0.0.0.0'): Promise<number> {
  for (let tries = 0; tries < 1000; tries++) {
    const port = LOWEST + Math.floor(Math.random() * SPAN);
    if (given.has(port)) continue;
    if (!(await canBind(port, host))) continue;
    given.add(port);
    return port;
  }
  throw new Error(`no free TCP port between ${LOWEST} and ${HIGHEST} on ${host}`);
}
