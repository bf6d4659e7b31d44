/**
 * Retention on the pull-through cache, against a real upstream (Debian's docker-registry with htpasswd auth on
 * loopback): a pull of a cached manifest records the pull; a retention rule on last pull evicts a cached tag not
 * pulled within its window and keeps one that was; the GC frees its blobs; the next pull fetches it all again.
 * Pull times are planted by running the clock of this process (the registry runs in it) three hours back for the
 * old pull; cache times by setting the tag and revision links' modification times, which retention reads.
 */
import { utimes } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parsePolicies } from '../../../src/common/policies.js';
import type { RetentionReport } from '../../../src/common/retention-api.js';
import { createRegistryServer, type RegistryServer } from '../../../src/registry/server.js';
import { peerPath, requirePeer } from '../../helpers/peers.js';
import { startReferenceRegistry, type ReferenceRegistry } from '../../helpers/reference-registry.js';
import { run } from '../../helpers/run.js';
import { writeOciLayout } from './oci-layout.js';

const H = 3600_000;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

let work: string;
let upstream: ReferenceRegistry;
let forwarder: Server;
let ours: RegistryServer;
let oursUrl: string;
const digests: Record<string, string> = {};
const layers: Record<string, string[]> = {};
const counts = new Map<string, number>();
const count = (key: string): number => counts.get(key) ?? 0;

const repoDir = (): string => join(work, 'data/docker/registry/v2/repositories/up/lib/app');
const tagLink = (tag: string): string => join(repoDir(), '_manifests/tags', tag, 'current/link');
const revisionLink = (digest: string): string =>
  join(repoDir(), '_manifests/revisions/sha256', digest.slice(7), 'link');
const blobData = (digest: string): string =>
  join(work, 'data/docker/registry/v2/blobs/sha256', digest.slice(7, 9), digest.slice(7), 'data');
const present = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );
const pull = async (tag: string): Promise<Response> => {
  const res = await fetch(`${oursUrl}/v2/up/lib/app/manifests/${tag}`, { headers: { accept: OCI_MANIFEST } });
  await res.arrayBuffer();
  return res;
};
const post = async <T>(path: string, body: unknown): Promise<T> => {
  const res = await fetch(`${oursUrl}/admin/v1/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as T;
};

beforeAll(async () => {
  requirePeer('crane');
  work = await mkdtemp(join(tmpdir(), 'regctl-proxy-retention-'));
  upstream = await startReferenceRegistry();
  const up = new URL(upstream.url);
  forwarder = createServer((req, res) => {
    const key = `${req.method} ${req.url}`;
    counts.set(key, count(key) + 1);
    const fwd = request(
      { host: up.hostname, port: up.port, path: req.url, method: req.method, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  await new Promise<void>((r) => forwarder.listen(0, '127.0.0.1', r));
  const fwdUrl = `http://127.0.0.1:${(forwarder.address() as AddressInfo).port}`;
  const env = { DOCKER_CONFIG: join(work, 'crane') };
  await run(peerPath('crane'), ['auth', 'login', upstream.host, '-u', upstream.username, '-p', upstream.password], {
    env,
  });
  for (const tag of ['old', 'fresh']) {
    const image = await writeOciLayout(join(work, tag), { tag, layers: 2 });
    digests[tag] = image.manifestDigest;
    layers[tag] = image.layerDigests;
    await run(peerPath('crane'), ['push', image.dir, `${upstream.host}/lib/app:${tag}`, '--insecure'], { env });
  }
  const credentialsFile = join(work, 'upstream-credentials');
  await writeFile(credentialsFile, `${upstream.username}:${upstream.password}\n`, { mode: 0o600 });
  const parsed = parsePolicies({
    retention: { rules: [{ repos: 'up/**', removeOlderThan: '1h', untaggedOlderThan: '1h', keepPulledWithin: '1h' }] },
  });
  if (!parsed.policies) throw new Error(JSON.stringify(parsed.problems));
  ours = createRegistryServer({
    port: 0,
    dataDir: join(work, 'data'),
    noAuth: true,
    log: () => undefined,
    policies: parsed.policies,
    proxies: [{ prefix: 'up', upstream: fwdUrl, credentialsFile, ttlMs: 24 * H }],
  });
  oursUrl = (await ours.listen()).url;
}, 120_000);

afterAll(async () => {
  vi.useRealTimers();
  await ours?.close();
  forwarder?.close();
  await upstream?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('retention on the pull-through cache', () => {
  it('evicts a cached tag not pulled within keepPulledWithin, keeps one pulled, and the next pull refetches it', async () => {
    const layer = async (tag: string, i: number): Promise<void> => {
      const res = await fetch(`${oursUrl}/v2/up/lib/app/blobs/${layers[tag]?.[i] as string}`);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    };
    // Cached three hours ago and pulled then (the registry's clock set back), layers and all.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() - 3 * H);
    expect((await pull('old')).headers.get('docker-content-digest')).toBe(digests.old);
    await layer('old', 0);
    await layer('old', 1);
    vi.useRealTimers();
    // Cached three hours ago too, but pulled just now: a GET of the cached manifest records the pull.
    expect((await pull('fresh')).status).toBe(200);
    for (const tag of ['old', 'fresh']) {
      const t = new Date(Date.now() - 3 * H);
      await utimes(tagLink(tag), t, t);
      await utimes(revisionLink(digests[tag] as string), t, t);
    }
    expect(count('GET /v2/lib/app/manifests/old')).toBe(1);

    const report = await post<RetentionReport>('retention', { dryRun: false });
    const decisions = report.repositories.find((r) => r.name === 'up/lib/app')?.decisions ?? [];
    const tagDecision = (tag: string) => decisions.find((d) => d.kind === 'tag' && d.ref === tag);
    expect(tagDecision('old')).toMatchObject({ action: 'remove' });
    expect(tagDecision('old')?.reason).toMatch(/older than removeOlderThan 1h/);
    expect(tagDecision('fresh')).toMatchObject({ action: 'keep' });
    expect(tagDecision('fresh')?.reason).toMatch(/^pulled .* within keepPulledWithin 1h/);
    expect(report.removed).toEqual({ tags: 1, manifests: 1 });
    expect(await present(tagLink('old'))).toBe(false);
    expect(await present(revisionLink(digests.old as string))).toBe(false);
    const tags = (await (await fetch(`${oursUrl}/v2/up/lib/app/tags/list`)).json()) as { tags: string[] };
    expect(tags.tags).toEqual(['fresh']);

    // The GC frees what only the evicted image held.
    await post('gc', { graceSeconds: 0, wait: true });
    for (const d of [digests.old, ...(layers.old ?? [])]) expect(await present(blobData(d as string))).toBe(false);

    // The next pull fetches the manifest and its layers from the upstream again.
    const again = await pull('old');
    expect(again.status).toBe(200);
    expect(again.headers.get('docker-content-digest')).toBe(digests.old);
    expect(count('GET /v2/lib/app/manifests/old')).toBe(2);
    expect(await present(revisionLink(digests.old as string))).toBe(true);
    await layer('old', 0);
    expect(count(`GET /v2/lib/app/blobs/${layers.old?.[0] as string}`)).toBe(2);
    expect(await present(blobData(layers.old?.[0] as string))).toBe(true);
  }, 120_000);
});
