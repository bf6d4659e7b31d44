/**
 * The pull-through cache behind genuine 429s: a real Traefik with its rateLimit middleware in front of the upstream
 * (Debian's docker-registry with htpasswd auth). Once the upstream rate-limits, cached tags keep being served
 * (stale, with a warning), what was never cached fails with 429 and the upstream's Retry-After, and the upstream is
 * not asked again before that time.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, type RegistryServer } from '../../../src/registry/server.js';
import { peerPath, requirePeer } from '../../helpers/peers.js';
import { startReferenceRegistry, type ReferenceRegistry } from '../../helpers/reference-registry.js';
import { run } from '../../helpers/run.js';
import { startTraefik, type TraefikProcess } from '../../helpers/traefik-process.js';
import { writeOciLayout } from './oci-layout.js';

let work: string;
let upstream: ReferenceRegistry;
let traefik: TraefikProcess;
let ours: RegistryServer;
let oursUrl: string;
let manifestDigest: string;

beforeAll(async () => {
  requirePeer('crane');
  requirePeer('traefik');
  work = await mkdtemp(join(tmpdir(), 'regctl-proxy-429-it-'));
  upstream = await startReferenceRegistry();
  const env = { DOCKER_CONFIG: join(work, 'crane') };
  await run(peerPath('crane'), ['auth', 'login', upstream.host, '-u', upstream.username, '-p', upstream.password], {
    env,
  });
  const image = await writeOciLayout(join(work, 'img'), { tag: 'v1' });
  manifestDigest = image.manifestDigest;
  await run(peerPath('crane'), ['push', image.dir, `${upstream.host}/lib/img:v1`, '--insecure'], { env });
  // One request an hour once a burst of 30 is spent.
  traefik = await startTraefik({
    servers: [upstream.url],
    retryAttempts: 0,
    healthCheck: false,
    rateLimit: { average: 1, period: '1h', burst: 30 },
  });
  const credentialsFile = join(work, 'credentials');
  await writeFile(credentialsFile, `${upstream.username}:${upstream.password}`, { mode: 0o600 });
  ours = createRegistryServer({
    port: 0,
    dataDir: join(work, 'data'),
    noAuth: true,
    logLevel: 'silent',
    proxies: [{ prefix: 'rl', upstream: traefik.url, credentialsFile, ttlMs: 0 }],
  });
  oursUrl = (await ours.listen()).url;
}, 120_000);

afterAll(async () => {
  await ours?.close();
  await traefik?.stop();
  await upstream?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('pull-through cache behind a rate-limiting upstream', () => {
  it('keeps serving cached tags through genuine 429s, and honours Retry-After for the rest', async () => {
    const first = await fetch(`${oursUrl}/v2/rl/lib/img/manifests/v1`);
    expect(first.status).toBe(200);
    expect(first.headers.get('warning')).toBeNull();
    // Spend the rest of the burst directly, until Traefik answers 429.
    let limited: Response | undefined;
    for (let i = 0; i < 60 && !limited; i++) {
      const r = await fetch(`${traefik.url}/v2/`);
      await r.arrayBuffer();
      if (r.status === 429) limited = r;
    }
    expect(limited?.headers.get('retry-after')).toMatch(/^\d+$/);

    const stale = await fetch(`${oursUrl}/v2/rl/lib/img/manifests/v1`);
    expect(stale.status).toBe(200);
    expect(stale.headers.get('docker-content-digest')).toBe(manifestDigest);
    expect(stale.headers.get('warning')).toBe('110 - "Response is stale"');

    const never = await fetch(`${oursUrl}/v2/rl/lib/other/manifests/v1`);
    expect(never.status).toBe(429);
    expect(Number(never.headers.get('retry-after'))).toBeGreaterThan(0);
    const err = ((await never.json()) as { errors: { code: string; message: string }[] }).errors[0];
    expect(err?.code).toBe('TOOMANYREQUESTS');
    // Before the Retry-After has passed the upstream is not asked at all.
    expect(err?.message).toMatch(/^pull-through cache: upstream 127\.0\.0\.1:\d+ asked us to wait \(retry in \d+s\)/);
    const again = await fetch(`${oursUrl}/v2/rl/lib/img/manifests/v1`);
    expect(again.status).toBe(200);
    expect(again.headers.get('warning')).toBe('110 - "Response is stale"');
  });
});
