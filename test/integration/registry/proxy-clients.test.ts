/**
 * docker and containerd's `ctr` pull through the pull-through cache, against a real upstream (Debian's
 * docker-registry with htpasswd auth on loopback) holding a multi-arch image pushed by crane. A counting forwarder in
 * front of the upstream shows which manifests went through ours. dockerd treats 127.0.0.0/8 as insecure by default;
 * ctr talks to the containerd dockerd runs, in a namespace of its own that the test empties and removes.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile, access } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerdHostsToml, DOCKER_HUB, mirrorUrl } from '../../../src/ops/mirror.js';
import { createRegistryServer, type RegistryServer } from '../../../src/registry/server.js';
import { dockerAvailable, peerAvailable, peerPath } from '../../helpers/peers.js';
import { startReferenceRegistry, type ReferenceRegistry } from '../../helpers/reference-registry.js';
import { run } from '../../helpers/run.js';
import { writeOciLayout } from './oci-layout.js';

const CONTAINERD = '/var/run/docker/containerd/containerd.sock';
const NS = 'regctl-test';
/** The mirror-form pull's namespace, emptied and removed like the other. */
const MIRROR_NS = 'regctl-test-mirror';
const HOST_ARCH = process.arch === 'x64' ? 'amd64' : process.arch;
const OTHER_ARCH = HOST_ARCH === 'amd64' ? 'arm64' : 'amd64';

let work: string;
let upstream: ReferenceRegistry;
let forwarder: Server;
let ours: RegistryServer;
let oursHost: string;
let indexDigest: string;
let hubIndexDigest: string;
const hubChildDigest: Record<string, string> = {};
const childDigest: Record<string, string> = {};
const counts = new Map<string, number>();
const dockerRefs: string[] = [];
const ctrRefs: [string, string][] = [];

const count = (key: string): number => counts.get(key) ?? 0;
const crane = (args: string[]) =>
  run(peerPath('crane'), [...args, '--insecure'], { env: { DOCKER_CONFIG: join(work, 'crane') }, stdoutOnly: true });
const docker = (args: string[]) => run('docker', args, { env: { DOCKER_CONFIG: join(work, 'docker') } });
const ctr = (args: string[], ns = NS) => run(peerPath('ctr'), ['--address', CONTAINERD, '-n', ns, ...args]);
const revisionLink = (repo: string, digest: string): string =>
  join(work, 'data/docker/registry/v2/repositories', repo, '_manifests/revisions/sha256', digest.slice(7), 'link');
const present = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

const enabled = dockerAvailable() && peerAvailable('crane') && peerAvailable('ctr');

describe.skipIf(!enabled)('docker and ctr pull through the cache', () => {
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'regctl-proxy-clients-'));
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

    await run(peerPath('crane'), ['auth', 'login', upstream.host, '-u', upstream.username, '-p', upstream.password], {
      env: { DOCKER_CONFIG: join(work, 'crane') },
    });
    const pushIndex = async (repo: string, children: Record<string, string>): Promise<string> => {
      for (const arch of ['amd64', 'arm64']) {
        const image = await writeOciLayout(join(work, repo, arch), { tag: arch, arch });
        children[arch] = image.manifestDigest;
        await crane(['push', image.dir, `${upstream.host}/${repo}-parts:${arch}`]);
      }
      const parts = ['amd64', 'arm64'].flatMap((a) => ['-m', `${upstream.host}/${repo}-parts:${a}`]);
      await crane(['index', 'append', ...parts, '-t', `${upstream.host}/${repo}:v1`]);
      return (await crane(['digest', `${upstream.host}/${repo}:v1`])).trim();
    };
    indexDigest = await pushIndex('lib/multi', childDigest);
    // Docker Hub's official images live under library/: the upstream standing in for Docker Hub holds one there,
    // with images of its own (containerd shares content between namespaces and dockerd keeps the manifests it
    // pulled in containerd's content store: content pulled before would not be fetched through ours again).
    hubIndexDigest = await pushIndex('library/multi', hubChildDigest);

    const credentialsFile = join(work, 'upstream-credentials');
    await writeFile(credentialsFile, `${upstream.username}:${upstream.password}\n`, { mode: 0o600 });
    ours = createRegistryServer({
      port: 0,
      dataDir: join(work, 'data'),
      noAuth: true,
      log: () => undefined,
      proxies: [
        { prefix: 'up', upstream: fwdUrl, credentialsFile, ttlMs: 3600_000 },
        { prefix: 'hub', upstream: fwdUrl, credentialsFile, ttlMs: 3600_000, mirrorOf: DOCKER_HUB, dockerMirror: true },
      ],
    });
    oursHost = new URL((await ours.listen()).url).host;
  }, 240_000);

  afterAll(async () => {
    for (const ref of dockerRefs) await docker(['rmi', '-f', ref]).catch(() => undefined);
    for (const [ns, ref] of ctrRefs) await ctr(['images', 'rm', '--sync', ref], ns).catch(() => undefined);
    for (const ns of new Set(ctrRefs.map(([n]) => n)))
      await run(peerPath('ctr'), ['--address', CONTAINERD, 'namespaces', 'rm', ns]).catch(() => undefined);
    await ours?.close();
    forwarder?.close();
    await upstream?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('docker pulls the multi-arch image by tag and by digest; it picks the host platform, whose manifest came through ours', async () => {
    const byTag = `${oursHost}/up/lib/multi:v1`;
    dockerRefs.push(byTag);
    await docker(['pull', byTag]);
    const inspect = async (ref: string) =>
      JSON.parse(await docker(['image', 'inspect', '--format', '{{json .}}', ref])) as {
        Architecture: string;
        RepoDigests: string[];
      };
    const image = await inspect(byTag);
    expect(image.Architecture).toBe(HOST_ARCH);
    expect(image.RepoDigests).toContain(`${oursHost}/up/lib/multi@${indexDigest}`);
    // The host platform's child manifest was fetched through ours (once, by digest) and cached; the other was not.
    expect(count(`GET /v2/lib/multi/manifests/${childDigest[HOST_ARCH]}`)).toBe(1);
    expect(await present(revisionLink('up/lib/multi', childDigest[HOST_ARCH] as string))).toBe(true);
    expect(await present(revisionLink('up/lib/multi', childDigest[OTHER_ARCH] as string))).toBe(false);

    await docker(['rmi', '-f', byTag]);
    const byDigest = `${oursHost}/up/lib/multi@${indexDigest}`;
    dockerRefs.push(byDigest);
    await docker(['pull', byDigest]);
    expect((await inspect(byDigest)).Architecture).toBe(HOST_ARCH);
    // By digest, everything came from the cache: the upstream was not asked for any manifest again.
    expect(count(`GET /v2/lib/multi/manifests/${indexDigest}`)).toBe(0);
    expect(count(`GET /v2/lib/multi/manifests/${childDigest[HOST_ARCH]}`)).toBe(1);
  }, 180_000);

  it('ctr pulls docker.io/library/multi through the hosts.toml regctl prints (containerd mirror form, ?ns=docker.io)', async () => {
    const hostsDir = join(work, 'certs.d');
    await mkdir(join(hostsDir, DOCKER_HUB), { recursive: true });
    await writeFile(
      join(hostsDir, DOCKER_HUB, 'hosts.toml'),
      containerdHostsToml(DOCKER_HUB, mirrorUrl(oursHost, true)),
    );
    const ref = 'docker.io/library/multi:v1';
    ctrRefs.push([MIRROR_NS, ref]);
    const gets = count('GET /v2/library/multi/manifests/v1');
    await ctr(['images', 'pull', '--hosts-dir', hostsDir, ref], MIRROR_NS);
    expect((await ctr(['images', 'ls', '-q'], MIRROR_NS)).split('\n')).toContain(ref);
    // It came through ours: cached under the prefix that mirrors docker.io, fetched once from the upstream.
    expect(count('GET /v2/library/multi/manifests/v1')).toBe(gets + 1);
    expect(await present(revisionLink('hub/library/multi', hubIndexDigest))).toBe(true);
    expect(await present(revisionLink('hub/library/multi', hubChildDigest[HOST_ARCH] as string))).toBe(true);
  }, 180_000);

  it('ctr pulls by tag and by digest over plain HTTP, in a test namespace', async () => {
    const byTag = `${oursHost}/up/lib/multi-parts:${HOST_ARCH}`;
    const byDigest = `${oursHost}/up/lib/multi@${indexDigest}`;
    ctrRefs.push([NS, byTag], [NS, byDigest]);
    await ctr(['images', 'pull', '--plain-http', byTag]);
    await ctr(['images', 'pull', '--plain-http', byDigest]);
    const listed = (await ctr(['images', 'ls', '-q'])).split('\n');
    expect(listed).toEqual(expect.arrayContaining([byTag, byDigest]));
    // Complete: every blob of the host platform is in containerd's content store.
    const check = await ctr(['images', 'check']);
    for (const ref of [byTag, byDigest])
      expect(check).toMatch(new RegExp(`${ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+\\S+\\s+\\S+\\s+complete`));
    expect(await present(revisionLink('up/lib/multi-parts', childDigest[HOST_ARCH] as string))).toBe(true);
  }, 180_000);

  it("answers dockerd's registry-mirrors form (no prefix, no ns) for Docker Hub names; the registry's own names win", async () => {
    const url = `http://${oursHost}`;
    const accept = { accept: 'application/vnd.oci.image.index.v1+json' };
    // The upstream standing in for Docker Hub holds library/multi: asked for without a prefix, it comes from there.
    const res = await fetch(`${url}/v2/library/multi/manifests/v1`, { headers: accept });
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(hubIndexDigest);
    const child = await fetch(`${url}/v2/library/multi/manifests/${hubChildDigest.amd64 as string}`);
    const layer = ((await child.json()) as { layers: { digest: string }[] }).layers[0]?.digest as string;
    expect((await fetch(`${url}/v2/library/multi/blobs/${layer}`, { method: 'HEAD' })).status).toBe(200);

    // A repository of our own under the same kind of name is served as ours, and the upstream is not asked.
    const own = Buffer.from('{"ours":true}');
    const digest = `sha256:${createHash('sha256').update(own).digest('hex')}`;
    const post = await fetch(`${url}/v2/library/own/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      body: new Uint8Array(own),
    });
    expect(post.status).toBe(201);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest, size: own.length },
      layers: [],
    });
    const put = await fetch(`${url}/v2/library/own/manifests/v1`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: manifest,
    });
    expect(put.status).toBe(201);
    const before = new Map(counts);
    expect((await fetch(`${url}/v2/library/own/manifests/v1`)).status).toBe(200);
    // A blob of a name that is neither ours nor cached is not looked for upstream (a client checking before a push).
    expect((await fetch(`${url}/v2/new/app/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);
    expect([...counts].filter(([k, n]) => n !== before.get(k))).toEqual([]);
  });
});
