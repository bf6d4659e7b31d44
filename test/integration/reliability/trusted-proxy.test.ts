/**
 * Throttling that forwarding headers cannot bypass, against `regctl serve` children (default throttle: 10
 * failures per address). Without `--trusted-proxy` the TCP peer is the client whatever the headers say; with
 * `--trusted-proxy 127.0.0.1/32` (the test is then the proxy) the right-most forwarded address is the client. Behind
 * the real Traefik binary, clients that connect from different loopback addresses (127.0.0.5, 127.0.0.6) are
 * throttled apart, whatever X-Forwarded-For they send.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth } from '../../helpers/auth.js';
import { peerAvailable } from '../../helpers/peers.js';
import { builtCliPresent, startRegistryProcess, type RegistryProcess } from '../../helpers/serve-process.js';
import { startTraefik, type TraefikProcess } from '../../helpers/traefik-process.js';

const DEFAULT_LIMIT = 10;

async function attempt(url: string, user: string, password: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/v2/`, { headers: { Authorization: basicAuth(user, password), ...headers } });
  await res.arrayBuffer();
  return res.status;
}

/** 40 guesses over 40 user names, each with its own header value from `headersOf`: the statuses in order. */
async function spray(url: string, headersOf: (i: number) => Record<string, string>): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < 40; i++) statuses.push(await attempt(url, `user-${i}`, `guess-${i}`, headersOf(i)));
  return statuses;
}

describe.skipIf(!builtCliPresent())(
  'trusted proxies: throttling by the real client address (needs npm run build)',
  () => {
    const servers: RegistryProcess[] = [];
    let untrusted: { plain: RegistryProcess; spoofed: RegistryProcess };
    let proxied: RegistryProcess;
    beforeAll(async () => {
      for (let i = 0; i < 3; i++)
        servers.push(await startRegistryProcess({ args: i === 2 ? ['--trusted-proxy', '127.0.0.1/32'] : [] }));
      untrusted = { plain: servers[0] as RegistryProcess, spoofed: servers[1] as RegistryProcess };
      proxied = servers[2] as RegistryProcess;
    }, 60_000);
    afterAll(async () => {
      for (const s of servers) await s.stop();
    });

    it('a spray with a new X-Forwarded-For, X-Real-IP or Forwarded each guess is throttled as one without them', async () => {
      const plain = await spray(untrusted.plain.url, () => ({}));
      const firstBlocked = plain.indexOf(429);
      expect(firstBlocked).toBe(DEFAULT_LIMIT);
      expect(plain.slice(0, firstBlocked).every((s) => s === 401)).toBe(true);
      expect(plain.slice(firstBlocked).every((s) => s === 429)).toBe(true);
      const spoofed = await spray(untrusted.spoofed.url, (i) => ({
        'X-Forwarded-For': `198.51.100.${i + 1}`,
        'X-Real-IP': `198.51.100.${i + 1}`,
        Forwarded: `for=198.51.100.${i + 1}`,
      }));
      expect(spoofed).toEqual(plain);
      // The right password from the same socket is refused too while the address is blocked.
      const { username, password } = untrusted.spoofed;
      expect(await attempt(untrusted.spoofed.url, username, password, { 'X-Forwarded-For': '192.0.2.99' })).toBe(429);
    });

    it('behind a trusted proxy each forwarded client is throttled on its own, by the right-most address', async () => {
      const { url, username, password } = proxied;
      const a = { 'X-Forwarded-For': '203.0.113.1' };
      const b = { 'X-Forwarded-For': '203.0.113.2' };
      for (let i = 0; i < DEFAULT_LIMIT; i++) expect(await attempt(url, `ghost-${i}`, 'wrong', a)).toBe(401);
      expect(await attempt(url, username, password, a)).toBe(429);
      // A client-written left part does not move the client to a new address: the proxy's hop is the right-most.
      expect(await attempt(url, username, password, { 'X-Forwarded-For': '10.9.9.9, 203.0.113.1' })).toBe(429);
      // Another client behind the same proxy is not blocked, and has its own count.
      expect(await attempt(url, username, password, b)).toBe(200);
      for (let i = 0; i < DEFAULT_LIMIT; i++) expect(await attempt(url, `other-${i}`, 'wrong', b)).toBe(401);
      expect(await attempt(url, username, password, b)).toBe(429);
      // Forwarded (RFC 7239) is read the same way when X-Forwarded-For is absent.
      expect(await attempt(url, username, password, { Forwarded: 'for="[2001:db8::7]:4711"' })).toBe(200);
      expect(await attempt(url, username, password, { Forwarded: 'for=203.0.113.2' })).toBe(429);
    });
  },
);

/** GET /v2/ from a chosen loopback source address, with Basic credentials and extra headers; the status. */
function from(source: string, url: string, user: string, password: string, headers: Record<string, string> = {}) {
  return new Promise<number>((resolve, reject) => {
    const req = request(
      `${url}/v2/`,
      { localAddress: source, headers: { Authorization: basicAuth(user, password), ...headers } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe.skipIf(!builtCliPresent() || !peerAvailable('traefik'))('trusted proxies: behind the real Traefik', () => {
  let reg: RegistryProcess;
  let traefik: TraefikProcess;
  beforeAll(async () => {
    reg = await startRegistryProcess({ args: ['--trusted-proxy', '127.0.0.1/32'] });
    traefik = await startTraefik({ servers: [reg.url], retryAttempts: 0, healthCheck: false });
  }, 60_000);
  afterAll(async () => {
    await traefik?.stop();
    await reg?.stop();
  });

  it('throttles each client by its own address; a spoofed X-Forwarded-For changes nothing', async () => {
    const { username, password } = reg;
    for (let i = 0; i < DEFAULT_LIMIT; i++) {
      const status = await from('127.0.0.5', traefik.url, `ghost-${i}`, 'wrong', {
        'X-Forwarded-For': `198.51.100.${i + 1}`,
      });
      expect(status).toBe(401);
    }
    expect(await from('127.0.0.5', traefik.url, username, password, { 'X-Forwarded-For': '198.51.100.77' })).toBe(429);
    // Another client through the same Traefik is not blocked by the first one's failures.
    expect(await from('127.0.0.6', traefik.url, username, password)).toBe(200);
    // Straight to the registry, not from the trusted proxy: the header is ignored, the socket's address counts.
    expect(await from('127.0.0.7', reg.url, username, password, { 'X-Forwarded-For': '127.0.0.5' })).toBe(200);
  });
});
