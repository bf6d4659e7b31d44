/**
 * The pull-through cache against a real upstream: Debian's docker-registry (distribution 2.8.2) with htpasswd auth
 * on loopback, holding a multi-arch image pushed by crane; crane and skopeo pull through ours. A small counting
 * forwarder in front of the upstream counts the requests it gets. Only the lying upstream (a digest mismatch,
 * which a real registry never sends) is a fake HTTP server of the test's own.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, type RegistryServer } from '../../../src/registry/server.js';
import type { LogFn } from '../../../src/registry/logger.js';
import { FsDriver } from '../../../src/registry/storage/fs-driver.js';
import { runFsck } from '../../../src/registry/storage/fsck.js';
import { RegistryStore } from '../../../src/registry/storage/store.js';
import { basicAuth } from '../../helpers/auth.js';
import { peerPath, requirePeer } from '../../helpers/peers.js';
import { startReferenceRegistry, type ReferenceRegistry } from '../../helpers/reference-registry.js';
import { run } from '../../helpers/run.js';
import { writeOciLayout } from './oci-layout.js';

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
/** The size: 20 clients stream it at once, each hashing as it reads (nothing held whole per client). */
const BIG = 500 * 1024 * 1024;

let work: string;
let upstream: ReferenceRegistry;
let forwarder: Server;
let liar: Server;
let ours: RegistryServer;
let oursHost: string;
let oursUrl: string;
let fwdUrl: string;
const counts = new Map<string, number>();
/** Paths whose response the forwarder cuts off after this many bytes (the upstream lost mid-pull). */
const cuts = new Map<string, number>();
const liarCounts = new Map<string, number>();
const logs: { level: string; msg: string; fields: unknown }[] = [];
let indexDigest: string;
let amdDigest: string;
let armDigest: string;
let bigDigest: string;
let mid: Buffer;
let midDigest: string;
let big: Buffer;

const count = (key: string): number => counts.get(key) ?? 0;
const listen = async (s: Server): Promise<string> => {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
};
const crane = (args: string[]) =>
  run(peerPath('crane'), [...args, '--insecure'], { env: { DOCKER_CONFIG: join(work, 'crane') }, stdoutOnly: true });

beforeAll(async () => {
  requirePeer('crane');
  requirePeer('skopeo');
  work = await mkdtemp(join(tmpdir(), 'regctl-proxy-it-'));
  upstream = await startReferenceRegistry();
  const up = new URL(upstream.url);
  // Counts `METHOD path` and forwards to the upstream as is.
  forwarder = createServer((req, res) => {
    const key = `${req.method} ${req.url}`;
    counts.set(key, count(key) + 1);
    const fwd = request(
      { host: up.hostname, port: up.port, path: req.url, method: req.method, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        const cut = cuts.get(req.url ?? '');
        let sent = 0;
        if (cut !== undefined)
          r.on('data', (c: Buffer) => {
            sent += c.length;
            if (sent > cut) {
              r.destroy();
              res.destroy();
            }
          });
        r.pipe(res);
      },
    );
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  fwdUrl = await listen(forwarder);
  // The lying upstream: every blob and manifest it serves has bytes that do not match the digest asked for.
  liar = createServer((req, res) => {
    const key = `${req.method} ${req.url}`;
    liarCounts.set(key, (liarCounts.get(key) ?? 0) + 1);
    if (req.url?.includes('/blobs/')) {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': 3 * 1024 * 1024 });
      res.end(Buffer.alloc(3 * 1024 * 1024, 7));
      return;
    }
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [],
    });
    res.writeHead(200, {
      'Content-Type': 'application/vnd.oci.image.index.v1+json',
      'Docker-Content-Digest': sha256(Buffer.from('something else')),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  const liarUrl = await listen(liar);

  await run(peerPath('crane'), ['auth', 'login', upstream.host, '-u', upstream.username, '-p', upstream.password], {
    env: { DOCKER_CONFIG: join(work, 'crane') },
  });
  const amd = await writeOciLayout(join(work, 'amd'), { tag: 'amd64', arch: 'amd64' });
  const arm = await writeOciLayout(join(work, 'arm'), { tag: 'arm64', arch: 'arm64' });
  amdDigest = amd.manifestDigest;
  armDigest = arm.manifestDigest;
  await crane(['push', amd.dir, `${upstream.host}/lib/img:amd64`]);
  await crane(['push', arm.dir, `${upstream.host}/lib/img:arm64`]);
  await crane(
    ['index', 'append', '-m', `${upstream.host}/lib/img:amd64`, '-m', `${upstream.host}/lib/img:arm64`].concat([
      '-t',
      `${upstream.host}/lib/multi:v1`,
    ]),
  );
  indexDigest = (await crane(['digest', `${upstream.host}/lib/multi:v1`])).trim();
  for (const t of ['v2', 'lazy'])
    await crane(['copy', `${upstream.host}/lib/multi:v1`, `${upstream.host}/lib/multi:${t}`]);

  // Large blobs, pushed monolithically.
  big = randomBytes(BIG);
  bigDigest = sha256(big);
  mid = randomBytes(8 * 1024 * 1024);
  midDigest = sha256(mid);
  const auth = { authorization: basicAuth(upstream.username, upstream.password) };
  for (const [repo, blob, digest] of [
    ['big', big, bigDigest],
    ['mid', mid, midDigest],
  ] as const) {
    const post = await fetch(`${upstream.url}/v2/lib/${repo}/blobs/uploads/`, { method: 'POST', headers: auth });
    expect(post.status).toBe(202);
    const loc = new URL(post.headers.get('location') as string, upstream.url);
    loc.searchParams.set('digest', digest);
    const put = await fetch(loc, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: new Uint8Array(blob),
    });
    expect(put.status).toBe(201);
  }

  const credentialsFile = join(work, 'upstream-credentials');
  await writeFile(credentialsFile, `${upstream.username}:${upstream.password}\n`, { mode: 0o600 });
  const log: LogFn = (level, msg, fields) => void logs.push({ level, msg, fields });
  ours = createRegistryServer({
    port: 0,
    dataDir: join(work, 'data'),
    noAuth: true,
    log,
    proxies: [
      { prefix: 'up', upstream: fwdUrl, credentialsFile, ttlMs: 0 },
      { prefix: 'lazy', upstream: fwdUrl, credentialsFile, ttlMs: 3600_000 },
      { prefix: 'liar', upstream: liarUrl, credentialsFile: undefined, ttlMs: 0 },
    ],
  });
  oursUrl = (await ours.listen()).url;
  oursHost = new URL(oursUrl).host;
}, 240_000);

afterAll(async () => {
  await ours?.close();
  forwarder?.close();
  liar?.close();
  await upstream?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const blobPath = (digest: string): string =>
  join(work, 'data/docker/registry/v2/blobs/sha256', digest.slice(7, 9), digest.slice(7), 'data');

describe('pull-through cache', () => {
  it('crane and skopeo pull a multi-arch image through ours, by tag and by digest; the cache is ordinary content', async () => {
    expect((await crane(['digest', `${oursHost}/up/lib/multi:v1`])).trim()).toBe(indexDigest);
    // Child manifests are fetched on demand, by digest.
    expect((await crane(['digest', '--platform', 'linux/arm64', `${oursHost}/up/lib/multi:v1`])).trim()).toBe(
      armDigest,
    );
    // validate --remote reads every manifest and layer and checks their digests.
    await crane(['validate', '--remote', `${oursHost}/up/lib/multi:v1`]);
    const out = join(work, 'skopeo-out');
    await run(peerPath('skopeo'), [
      'copy',
      '--src-tls-verify=false',
      `docker://${oursHost}/up/lib/multi@${amdDigest}`,
      `oci:${out}:amd`,
    ]);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(index.manifests[0]?.digest).toBe(amdDigest);
    await run(peerPath('skopeo'), ['inspect', '--tls-verify=false', `docker://${oursHost}/up/lib/img:arm64`]);

    const tags = (await (await fetch(`${oursUrl}/v2/up/lib/multi/tags/list`)).json()) as { tags: string[] };
    expect(tags.tags).toEqual(['v1']);
    const catalog = (await (await fetch(`${oursUrl}/v2/_catalog`)).json()) as { repositories: string[] };
    expect(catalog.repositories).toEqual(expect.arrayContaining(['up/lib/img', 'up/lib/multi']));
    // The amd64 image's layers went to skopeo through ours: stored and linked in the prefixed repository.
    const manifest = JSON.parse(await readFile(blobPath(amdDigest), 'utf8')) as { layers: { digest: string }[] };
    for (const l of manifest.layers) {
      await access(blobPath(l.digest));
      await access(
        join(work, 'data/docker/registry/v2/repositories/up/lib/multi/_layers/sha256', l.digest.slice(7), 'link'),
      );
    }
  });

  it('a tag younger than its ttl is served without asking the upstream; after the ttl, one HEAD revalidates it', async () => {
    const path = (p: string) => `/v2/lib/multi/manifests/${p}`;
    const accept = { accept: 'application/vnd.oci.image.index.v1+json' };
    expect((await fetch(`${oursUrl}/v2/lazy/lib/multi/manifests/lazy`, { headers: accept })).status).toBe(200);
    const before = { head: count(`HEAD ${path('lazy')}`), get: count(`GET ${path('lazy')}`) };
    expect(before.get).toBe(1);
    const again = await fetch(`${oursUrl}/v2/lazy/lib/multi/manifests/lazy`, { headers: accept });
    expect(again.headers.get('docker-content-digest')).toBe(indexDigest);
    expect({ head: count(`HEAD ${path('lazy')}`), get: count(`GET ${path('lazy')}`) }).toEqual(before);

    // ttl 0: every pull by tag costs one HEAD; v2 names the digest v1 already brought, so no GET at all.
    const h = count(`HEAD ${path('v2')}`);
    for (let i = 0; i < 2; i++) {
      const r = await fetch(`${oursUrl}/v2/up/lib/multi/manifests/v2`, { headers: accept });
      expect(r.headers.get('docker-content-digest')).toBe(indexDigest);
    }
    expect(count(`GET ${path('v2')}`)).toBe(0);
    expect(count(`HEAD ${path('v2')}`)).toBe(h + 2);
    // By digest: never asked again.
    const byDigest = `GET ${path(indexDigest)}`;
    const n = count(byDigest);
    expect((await fetch(`${oursUrl}/v2/up/lib/multi/manifests/${indexDigest}`, { headers: accept })).status).toBe(200);
    expect(count(byDigest)).toBe(n);
  });

  it('20 concurrent pulls of an uncached 500 MiB blob make one upstream GET, and all get the verified bytes', async () => {
    const head = await fetch(`${oursUrl}/v2/up/lib/big/blobs/${bigDigest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(BIG));
    await expect(access(blobPath(bigDigest))).rejects.toThrow();
    const results = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const res = await fetch(`${oursUrl}/v2/up/lib/big/blobs/${bigDigest}`);
        expect(res.status).toBe(200);
        const hash = createHash('sha256');
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) hash.update(chunk);
        return `sha256:${hash.digest('hex')}`;
      }),
    );
    expect(results).toEqual(Array.from({ length: 20 }, () => bigDigest));
    expect(count(`GET /v2/lib/big/blobs/${bigDigest}`)).toBe(1);
    const stored = createHash('sha256');
    for await (const chunk of createReadStream(blobPath(bigDigest))) stored.update(chunk as Buffer);
    expect(`sha256:${stored.digest('hex')}`).toBe(bigDigest);
    const res = await fetch(`${oursUrl}/v2/up/lib/big/blobs/${bigDigest}`, { headers: { range: 'bytes=0-9' } });
    expect(Buffer.from(await res.arrayBuffer())).toEqual(big.subarray(0, 10));
    expect(count(`GET /v2/lib/big/blobs/${bigDigest}`)).toBe(1);
  }, 300_000);

  it('the upstream lost mid-pull: every client is cut off, nothing is stored, the next pull fills the cache', async () => {
    const path = `/v2/lib/mid/blobs/${midDigest}`;
    const url = `${oursUrl}/v2/up/lib/mid/blobs/${midDigest}`;
    cuts.set(path, 2 * 1024 * 1024);
    const attempts = await Promise.allSettled(Array.from({ length: 3 }, () => fetch(url).then((r) => r.arrayBuffer())));
    expect(attempts.map((a) => a.status)).toEqual(['rejected', 'rejected', 'rejected']);
    await expect(access(blobPath(midDigest))).rejects.toThrow();
    const uploads = join(work, 'data/docker/registry/v2/repositories/up/lib/mid/_uploads');
    expect(await readdir(uploads).catch(() => [])).toEqual([]);
    expect(logs.some((l) => l.msg === 'upstream blob download failed; nothing stored')).toBe(true);

    cuts.delete(path);
    const gets = count(`GET ${path}`);
    const res = await fetch(url);
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(midDigest);
    expect(count(`GET ${path}`)).toBe(gets + 1);
    expect(sha256(await readFile(blobPath(midDigest)))).toBe(midDigest);
  });

  it('refuses pushes, uploads, mounts and deletes into a proxy prefix with DENIED naming the prefix', async () => {
    const put = await fetch(`${oursUrl}/v2/up/lib/multi/manifests/v9`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' },
      body: JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] }),
    });
    expect(put.status).toBe(403);
    const body = (await put.json()) as { errors: { code: string; message: string }[] };
    expect(body.errors[0]?.code).toBe('DENIED');
    expect(body.errors[0]?.message).toMatch(/^up\/ is a pull-through cache of http:\/\/127\.0\.0\.1:\d+: pushes/);
    const post = await fetch(`${oursUrl}/v2/up/lib/new/blobs/uploads/?mount=${bigDigest}&from=other`, {
      method: 'POST',
    });
    expect(post.status).toBe(403);
    const del = await fetch(`${oursUrl}/v2/up/lib/multi/manifests/v1`, { method: 'DELETE' });
    expect(del.status).toBe(403);
    await expect(crane(['copy', `${oursHost}/up/lib/multi:v1`, `${oursHost}/up/lib/copy:v1`])).rejects.toThrow(
      /DENIED|pull-through cache/,
    );
    expect((await fetch(`${oursUrl}/v2/up/lib/multi/manifests/v1`)).status).toBe(200);
  });

  it('never stores nor serves a blob or manifest whose bytes do not match the digest (lying upstream)', async () => {
    const digest = sha256(Buffer.from('the blob the client asked for'));
    const url = `${oursUrl}/v2/liar/x/blobs/${digest}`;
    for (let i = 1; i <= 2; i++) {
      // The client's connection is aborted before the last byte: the body never completes.
      await expect(fetch(url).then((r) => r.arrayBuffer())).rejects.toThrow();
      await expect(access(blobPath(digest))).rejects.toThrow();
      expect(liarCounts.get(`GET /v2/x/blobs/${digest}`)).toBe(i);
    }
    expect(logs.some((l) => l.msg === 'upstream blob download failed; nothing stored')).toBe(true);
    const m = await fetch(`${oursUrl}/v2/liar/x/manifests/v1`);
    expect(m.status).toBe(503);
    expect(((await m.json()) as { errors: { message: string }[] }).errors[0]?.message).toMatch(
      /does not match its digest/,
    );
    expect((await fetch(`${oursUrl}/v2/liar/x/tags/list`)).status).toBe(404);
  });

  it("serves containerd's mirror form: ?ns=<upstream host> maps onto that upstream's prefix", async () => {
    const ns = new URL(fwdUrl).host;
    const res = await fetch(`${oursUrl}/v2/lib/img/manifests/amd64?ns=${ns}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(amdDigest);
    const manifest = (await res.json()) as { config: { digest: string } };
    const blob = await fetch(`${oursUrl}/v2/lib/img/blobs/${manifest.config.digest}?ns=${ns}`);
    expect(sha256(Buffer.from(await blob.arrayBuffer()))).toBe(manifest.config.digest);
    // Cached under the prefix, like any other pull through it; pushes in that form are refused as well.
    expect((await fetch(`${oursUrl}/v2/up/lib/img/manifests/amd64`)).headers.get('docker-content-digest')).toBe(
      amdDigest,
    );
    expect((await fetch(`${oursUrl}/v2/lib/img/blobs/uploads/?ns=${ns}`, { method: 'POST' })).status).toBe(403);
    // Another host is not a mirror of anything here: the registry's own (absent) repository answers.
    expect((await fetch(`${oursUrl}/v2/lib/img/manifests/amd64?ns=ghcr.io`)).status).toBe(404);
  });

  it('marks cached repositories with their upstream in the usage report', async () => {
    const blob = Buffer.from('our own content');
    const post = await fetch(`${oursUrl}/v2/own/x/blobs/uploads/`, { method: 'POST' });
    const loc = new URL(post.headers.get('location') as string, oursUrl);
    loc.searchParams.set('digest', sha256(blob));
    expect((await fetch(loc, { method: 'PUT', body: new Uint8Array(blob) })).status).toBe(201);
    // A repository is one with a manifest (one definition for the catalog, the UI and usage): own/x gets one.
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(blob), size: blob.length },
      layers: [],
    });
    const put = await fetch(`${oursUrl}/v2/own/x/manifests/v1`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: manifest,
    });
    expect(put.status).toBe(201);
    const usage = (await (await fetch(`${oursUrl}/admin/v1/usage`)).json()) as {
      repositories: { name: string; cachedFrom?: string; exclusiveBytes: number }[];
    };
    const byName = new Map(usage.repositories.map((r) => [r.name, r]));
    expect(byName.get('up/lib/multi')?.cachedFrom).toBe(fwdUrl);
    // up/lib/big holds a cached blob and no manifest: not a repository, its bytes reclaimable by the GC.
    expect(byName.has('up/lib/big')).toBe(false);
    expect(byName.get('own/x')).toEqual(
      expect.objectContaining({ exclusiveBytes: blob.length + Buffer.byteLength(manifest) }),
    );
    expect(byName.get('own/x')?.cachedFrom).toBeUndefined();

    // Storage holds them, but the upstream's lib/img holds neither: a digest opens nothing through the cache.
    for (const d of [sha256(blob), bigDigest]) {
      const res = await fetch(`${oursUrl}/v2/up/lib/img/blobs/${d}`);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe('BLOB_UNKNOWN');
    }
    // Where the upstream does hold it, the stored copy is linked and served without another GET.
    const res = await fetch(`${oursUrl}/v2/lazy/lib/big/blobs/${bigDigest}`, { headers: { range: 'bytes=5-9' } });
    expect(Buffer.from(await res.arrayBuffer())).toEqual(big.subarray(5, 10));
    expect(count(`GET /v2/lib/big/blobs/${bigDigest}`)).toBe(1);

    // GC keeps what the cache holds (manifests whose layers were never pulled included) and fsck finds it sound.
    const gc = await fetch(`${oursUrl}/admin/v1/gc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ graceSeconds: 0, wait: true }),
    });
    expect(gc.status).toBe(200);
    const before = new Map(counts);
    await crane(['validate', '--remote', `${oursHost}/up/lib/multi:v1`]);
    // Everything came from the cache: the upstream saw one HEAD (the tag's revalidation, ttl 0) and nothing else.
    const asked = [...counts].filter(([k, n]) => n !== before.get(k)).map(([k, n]) => [k, n - (before.get(k) ?? 0)]);
    expect(asked).toEqual([['HEAD /v2/lib/multi/manifests/v1', 1]]);
    const fsck = await runFsck(new RegistryStore(new FsDriver(join(work, 'data'))));
    expect(fsck.problems).toEqual([]);
  });

  it('with the upstream stopped, cached tags are served stale with a warning; uncached content fails clearly', async () => {
    await upstream.stop();
    const res = await fetch(`${oursUrl}/v2/up/lib/multi/manifests/v1`, {
      headers: { accept: 'application/vnd.oci.image.index.v1+json' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('warning')).toBe('110 - "Response is stale"');
    expect(res.headers.get('docker-content-digest')).toBe(indexDigest);
    expect(logs.some((l) => l.level === 'warn' && l.msg.startsWith('serving a stale cached manifest'))).toBe(true);
    await crane(['validate', '--remote', `${oursHost}/up/lib/multi:v1`]);

    const never = await fetch(`${oursUrl}/v2/up/lib/never/manifests/v1`);
    expect(never.status).toBe(503);
    const err = ((await never.json()) as { errors: { code: string; message: string }[] }).errors[0];
    expect(err?.code).toBe('UNAVAILABLE');
    expect(err?.message).toMatch(/^pull-through cache: upstream 127\.0\.0\.1:\d+ unreachable/);
    const blob = await fetch(`${oursUrl}/v2/up/lib/never/blobs/${sha256(Buffer.from('never'))}`);
    expect(blob.status).toBe(503);
  });
});
