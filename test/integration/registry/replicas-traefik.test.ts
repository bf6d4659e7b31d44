/**
 * Two `regctl serve` processes on one S3 bucket (versitygw) and one PostgreSQL metadata store, behind the real
 * Traefik binary run as a local process (file provider, one service over both, round robin, no stickiness): the
 * OCI conformance suite, crane and oras, a chunked upload spread over both, what one replica writes seen by the
 * other at its next request, a GC on one that does not sweep a blob the other has just linked, and kill -9 of a
 * replica mid-push with the client's retry completing on the other.
 *
 * Failover: Traefik's retry middleware is what makes the client's retry succeed at once after a replica dies
 * (round robin still sends every other request to the dead one until the health check notices; the retry
 * middleware re-dials through the balancer when a connection is refused). The health check is kept as well,
 * so that a dead replica leaves the rotation instead of costing a refused dial on every other request.
 *
 * REGCTL_TEST_PLANT runs the file on purpose-broken setups, to see each check fail (none is set in CI):
 * `own-metadata` (each replica its own SQLite store), `own-prefix` (each replica its own bucket prefix),
 * `one-server` (Traefik sends everything to the first replica), `no-retry` (health check only),
 * `no-failover` (neither retry nor health check).
 */
import { HeadObjectCommand, ListMultipartUploadsCommand, ListPartsCommand } from '@aws-sdk/client-s3';
import bcrypt from 'bcryptjs';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth } from '../../helpers/auth.js';
import {
  peerAvailable,
  peerPath,
  failureReport,
  runConformance,
  OUR_CONFORMANCE_SETTINGS,
} from '../../helpers/peers.js';
import { postgresAvailable, startPostgres, type PostgresCluster } from '../../helpers/postgres.js';
import { run } from '../../helpers/run.js';
import { builtCliPresent, startServe, type ServeProcess } from '../../helpers/serve-process.js';
import { startTraefik, type TraefikProcess } from '../../helpers/traefik-process.js';
import { startVersitygw, versitygwAvailable, type S3Server } from '../../helpers/versitygw.js';
import { writeOciLayout } from './oci-layout.js';

const PLANT = process.env.REGCTL_TEST_PLANT ?? '';
const MiB = 1024 * 1024;
const ready =
  versitygwAvailable() &&
  postgresAvailable() &&
  builtCliPresent() &&
  peerAvailable('traefik') &&
  peerAvailable('conformance') &&
  peerAvailable('crane') &&
  peerAvailable('oras');

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe.skipIf(!ready)('two replicas on S3 + PostgreSQL behind Traefik', { timeout: 600_000 }, () => {
  let s3: S3Server;
  let pg: PostgresCluster;
  let dir: string;
  let bucket: string;
  let database: string;
  let traefik: TraefikProcess;
  const replicas: Record<'a' | 'b', ServeProcess | undefined> = { a: undefined, b: undefined };
  const username = 'tester';
  const password = randomBytes(12).toString('hex');
  const auth = { authorization: basicAuth(username, password) };

  const replica = (label: 'a' | 'b'): ServeProcess => {
    const r = replicas[label];
    if (!r) throw new Error(`replica ${label} is not running`);
    return r;
  };

  beforeAll(async () => {
    [s3, pg] = await Promise.all([startVersitygw(), startPostgres()]);
    bucket = await s3.createBucket();
    const db = await pg.createDatabase();
    database = db.database;
    dir = await mkdtemp(join(tmpdir(), 'regctl-replicas-'));
    const htpasswd = join(dir, 'htpasswd');
    await writeFile(htpasswd, `${username}:${bcrypt.hashSync(password, 5)}\n`, { mode: 0o600 });
    const start = (label: 'a' | 'b') =>
      startServe(
        [
          '--storage',
          `s3://${bucket}/${PLANT === 'own-prefix' ? `reg-${label}` : 'reg'}`,
          '--s3-endpoint',
          s3.endpoint,
          '--s3-path-style',
          '--metadata',
          PLANT === 'own-metadata' ? `sqlite:${join(dir, `metadata-${label}.sqlite`)}` : db.url,
          '--htpasswd',
          htpasswd,
          // the realm tells which replica answered a 401 through Traefik
          '--realm',
          `replica-${label}`,
          '--log-level',
          'warn',
        ],
        { inheritEnv: false, env: { ...s3.env(), REGCTL_METADATA_PASSWORD: db.password }, timeoutMs: 30_000 },
      );
    // one after the other: the first imports the (empty) bucket into the store, the second finds it done
    replicas.a = await start('a');
    replicas.b = await start('b');
    traefik = await startTraefik({
      servers: PLANT === 'one-server' ? [replica('a').url] : [replica('a').url, replica('b').url],
      retryAttempts: PLANT === 'no-retry' || PLANT === 'no-failover' ? 0 : 3,
      healthCheck: PLANT !== 'no-failover',
    });
  }, 120_000);

  afterAll(async () => {
    await traefik?.stop();
    for (const r of Object.values(replicas)) await r?.stop();
    await pg?.stop();
    await s3?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const via = (base: string, path: string, init: RequestInit = {}) =>
    fetch(`${base}${path}`, { ...init, headers: { ...auth, ...init.headers } });
  const proxied = (path: string, init: RequestInit = {}) => via(traefik.url, path, init);

  /** Which replica answered an unauthenticated request: its realm. */
  async function answeredBy(base: string): Promise<string> {
    const res = await fetch(`${base}/v2/`);
    await res.arrayBuffer();
    return /realm="([^"]+)"/.exec(res.headers.get('www-authenticate') ?? '')?.[1] ?? `status ${res.status}`;
  }

  /** Requests a replica served, by method and route id, from its own /metrics (read directly, not via Traefik). */
  async function served(label: 'a' | 'b', method: string, route: string): Promise<number> {
    const text = await (await via(replica(label).url, '/metrics')).text();
    let n = 0;
    for (const m of text.matchAll(/^regctl_http_requests_total\{([^}]*)\} (\d+)$/gm)) {
      const labels = m[1] as string;
      if (labels.includes(`method="${method}"`) && labels.includes(`route="${route}"`)) n += Number(m[2]);
    }
    return n;
  }

  async function pushBlob(base: string, name: string, data: Buffer): Promise<string> {
    const digest = sha256(data);
    const res = await via(base, `/v2/${name}/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      body: Uint8Array.from(data),
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(res.status, await res.text()).toBe(201);
    return digest;
  }

  /** Pushes a one-layer image straight to one replica and tags it; returns the manifest digest. */
  async function pushImage(base: string, name: string, tag: string): Promise<string> {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', tag }));
    const layer = randomBytes(2048);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: await pushBlob(base, name, config),
          size: config.length,
        },
        layers: [
          {
            mediaType: 'application/vnd.oci.image.layer.v1.tar',
            digest: await pushBlob(base, name, layer),
            size: layer.length,
          },
        ],
      }),
    );
    const res = await via(base, `/v2/${name}/manifests/${tag}`, {
      method: 'PUT',
      body: Uint8Array.from(manifest),
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(res.status, await res.text()).toBe(201);
    return sha256(manifest);
  }

  it('Traefik alternates between both replicas (round robin, no stickiness)', async () => {
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) seen.push(await answeredBy(traefik.url));
    expect(new Set(seen)).toEqual(new Set(['replica-a', 'replica-b']));
    // strict alternation, which the kill test below relies on to know where a request goes
    expect(seen[0]).not.toBe(seen[1]);
    expect(seen[2]).toBe(seen[0]);
    expect(seen[3]).toBe(seen[1]);
  });

  it('passes the OCI conformance suite through Traefik, with requests served by both replicas', async () => {
    const before = { a: await served('a', 'PUT', 'end-7'), b: await served('b', 'PUT', 'end-7') };
    const resultsDir = join(dir, 'conformance');
    const result = await runConformance({
      registry: traefik.host,
      username,
      password,
      resultsDir,
      env: OUR_CONFORMANCE_SETTINGS,
    });
    const failed = Object.entries({ ...result.apis, ...result.data }).filter(
      ([, v]) => v !== 'Pass' && v !== 'Disabled',
    );
    // a failure names the failed checks and shows what each replica logged (at warn and above)
    const logs = (['a', 'b'] as const).map((l) => `replica ${l}:\n${replica(l).output().slice(-3000)}`).join('\n');
    expect(failed, `${failureReport(result)}\n${logs}`).toEqual([]);
    expect(Object.keys(result.apis)).toEqual(
      expect.arrayContaining(['Blob chunked', 'Blob mount', 'Manifest put by tag', 'Tag delete', 'Referrers']),
    );
    expect(result.exitCode).toBe(0);
    const junit = await readFile(join(resultsDir, 'junit.xml'), 'utf8');
    expect(junit).not.toContain('<failure');
    // manifest PUTs landed on both replicas
    expect(await served('a', 'PUT', 'end-7')).toBeGreaterThan(before.a);
    expect(await served('b', 'PUT', 'end-7')).toBeGreaterThan(before.b);
  });

  it('crane and oras push and pull through Traefik', async () => {
    const config = join(dir, 'docker-config');
    const crane = (args: string[]) =>
      run(peerPath('crane'), [...args, '--insecure'], { env: { DOCKER_CONFIG: config } });
    await run(peerPath('crane'), ['auth', 'login', traefik.host, '-u', username, '-p', password], {
      env: { DOCKER_CONFIG: config },
    });
    const img = await writeOciLayout(join(dir, 'crane-src'), { tag: 'v1', arch: 'amd64' });
    await crane(['push', img.dir, `${traefik.host}/cr/img:v1`]);
    // each read twice, so that both replicas answer it
    for (let i = 0; i < 2; i++) {
      expect((await crane(['digest', `${traefik.host}/cr/img:v1`])).trim()).toBe(img.manifestDigest);
      expect((await crane(['ls', `${traefik.host}/cr/img`])).trim()).toBe('v1');
    }
    const pulled = join(dir, 'crane-pulled');
    await crane(['pull', '--format', 'oci', `${traefik.host}/cr/img:v1`, pulled]);
    const index = JSON.parse(await readFile(join(pulled, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(index.manifests[0]?.digest).toBe(img.manifestDigest);

    const work = join(dir, 'oras');
    await mkdir(work, { recursive: true });
    await writeFile(join(work, 'report.txt'), 'artifact body\n');
    const oras = (args: string[], cwd?: string) =>
      run(peerPath('oras'), [...args, '--plain-http', '-u', username, '-p', password], {
        env: { DOCKER_CONFIG: config },
        cwd,
      });
    const pushed = await oras(
      ['push', `${traefik.host}/or/art:v1`, 'report.txt:text/plain', '--artifact-type', 'application/vnd.example'],
      work,
    );
    expect(pushed).toMatch(/Digest: sha256:[0-9a-f]{64}/);
    for (let i = 0; i < 2; i++) {
      const out = join(dir, `oras-pull-${i}`);
      await oras(['pull', `${traefik.host}/or/art:v1`, '-o', out]);
      expect(await readFile(join(out, 'report.txt'), 'utf8')).toBe('artifact body\n');
    }
  });

  it('a chunked upload whose PATCHes land on both replicas completes with every byte', async () => {
    const before = { a: await served('a', 'PATCH', 'end-5'), b: await served('b', 'PATCH', 'end-5') };
    const data = randomBytes(9 * MiB + 77);
    const started = await proxied('/v2/chunked/app/blobs/uploads/', { method: 'POST' });
    expect(started.status).toBe(202);
    let location = started.headers.get('location') as string;
    let offset = 0;
    while (offset < data.length) {
      const chunk = data.subarray(offset, offset + MiB);
      const res = await proxied(new URL(location, traefik.url).pathname + new URL(location, traefik.url).search, {
        method: 'PATCH',
        body: Uint8Array.from(chunk),
        headers: {
          'content-type': 'application/octet-stream',
          'content-range': `${offset}-${offset + chunk.length - 1}`,
        },
      });
      expect(res.status, await res.text()).toBe(202);
      offset += chunk.length;
      expect(res.headers.get('range')).toBe(`0-${offset - 1}`);
      location = res.headers.get('location') as string;
    }
    const target = new URL(location, traefik.url);
    target.searchParams.set('digest', sha256(data));
    const done = await proxied(target.pathname + target.search, { method: 'PUT' });
    expect(done.status, await done.text()).toBe(201);
    const patched = {
      a: (await served('a', 'PATCH', 'end-5')) - before.a,
      b: (await served('b', 'PATCH', 'end-5')) - before.b,
    };
    expect(patched.a).toBeGreaterThan(0);
    expect(patched.b).toBeGreaterThan(0);
    expect(patched.a + patched.b).toBe(10);
    for (const label of ['a', 'b'] as const) {
      const got = await via(replica(label).url, `/v2/chunked/app/blobs/${sha256(data)}`);
      expect(Buffer.from(await got.arrayBuffer()).equals(data)).toBe(true);
    }
  });

  it('a manifest PUT on one replica is seen at the next request on the other; so is a tag delete', async () => {
    const accept = { accept: 'application/vnd.oci.image.manifest.v1+json' };
    for (const [writer, reader] of [
      ['a', 'b'],
      ['b', 'a'],
    ] as const) {
      const tag = `from-${writer}`;
      const digest = await pushImage(replica(writer).url, 'seen/app', tag);
      const tags = (await (await via(replica(reader).url, '/v2/seen/app/tags/list')).json()) as { tags: string[] };
      expect(tags.tags).toContain(tag);
      const got = await via(replica(reader).url, `/v2/seen/app/manifests/${tag}`, { headers: accept });
      expect(got.status).toBe(200);
      expect(got.headers.get('docker-content-digest')).toBe(digest);
      await got.arrayBuffer();
    }
    // a tag delete on one is seen by the other at its next request
    const deleted = await via(replica('b').url, '/v2/seen/app/manifests/from-a', { method: 'DELETE' });
    expect(deleted.status).toBe(202);
    const tags = (await (await via(replica('a').url, '/v2/seen/app/tags/list')).json()) as { tags: string[] };
    expect(tags.tags).toEqual(['from-b']);
    const gone = await via(replica('a').url, '/v2/seen/app/manifests/from-a', { method: 'HEAD', headers: accept });
    expect(gone.status).toBe(404);
    // and through Traefik, both replicas agree
    for (let i = 0; i < 2; i++) {
      const viaProxy = (await (await proxied('/v2/seen/app/tags/list')).json()) as { tags: string[] };
      expect(viaProxy.tags).toEqual(['from-b']);
    }
  });

  it('GC on one replica does not sweep a blob another replica has just linked', async () => {
    /** Pushes a blob to replica A and ages it past GC's one-hour grace window: its object and its last use. */
    const agedBlob = async (name: string): Promise<string> => {
      const digest = await pushBlob(replica('a').url, name, randomBytes(4096));
      const hex = digest.slice('sha256:'.length);
      const key = `reg/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
      // versitygw's posix backend reports the file's mtime as the object's LastModified
      const old = new Date(Date.now() - 2 * 3600_000);
      await utimes(join(s3.rootDir, bucket, key), old, old);
      const head = await s3.client().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      expect(head.LastModified?.getTime()).toBeLessThan(Date.now() - 3600_000);
      // the use the push noted reaches the store within a second (batched); then it is made two hours old
      await new Promise((r) => setTimeout(r, 1_500));
      const at = old.getTime();
      await pg.psql(`UPDATE uses SET at = ${at} WHERE digest = '${digest}'`, database);
      expect(await pg.psql(`SELECT at FROM uses WHERE digest = '${digest}'`, database)).toBe(String(at));
      return digest;
    };
    const linked = await agedBlob('gc/src');
    const unused = await agedBlob('gc/src');
    // B links the first into another repository (a cross-repository mount, as a push does for a layer the registry
    // already has), and A collects garbage right after; the push on B then goes on with its manifest
    const mounted = await via(replica('b').url, `/v2/gc/dst/blobs/uploads/?mount=${linked}&from=gc/src`, {
      method: 'POST',
    });
    expect(mounted.status).toBe(201);
    const gc = await via(replica('a').url, '/admin/v1/gc', {
      method: 'POST',
      body: JSON.stringify({ wait: true }),
      headers: { 'content-type': 'application/json' },
    });
    expect(gc.status).toBe(200);
    const report = (await gc.json()) as { deleted: { digest: string }[] };
    // the control: an aged blob nobody links is swept by that same run
    expect(report.deleted.map((d) => d.digest)).toContain(unused);
    expect(report.deleted.map((d) => d.digest)).not.toContain(linked);
    const got = await via(replica('b').url, `/v2/gc/dst/blobs/${linked}`, { method: 'HEAD' });
    expect(got.status).toBe(200);
  });

  it('kill -9 of the replica serving a PATCH: the client retries through Traefik and completes on the other', async () => {
    const data = Buffer.alloc(20 * MiB);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32BE(i + 5, i);
    const started = await proxied('/v2/crash/app/blobs/uploads/', { method: 'POST' });
    expect(started.status).toBe(202);
    const upload = new URL(started.headers.get('location') as string, traefik.url).pathname;
    const first = await proxied(upload, {
      method: 'PATCH',
      body: Uint8Array.from(data.subarray(0, 9 * MiB)),
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(first.status, await first.text()).toBe(202);

    // Round robin alternates, so the request after this probe goes to the other replica: that one is killed.
    const probe = await answeredBy(traefik.url);
    const victim = probe === 'replica-a' ? 'b' : 'a';

    // A PATCH whose body pauses after 8 MiB (one full part reaches S3) until its replica has died, then goes on:
    // a proxy written in Go notices a dead backend when it next writes to it (it waits for the request body's
    // writer before it answers), as it would with a client that keeps sending.
    let sent = 0;
    let resume: () => void = () => undefined;
    const paused = new Promise<void>((r) => (resume = r));
    const stalled = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent === 8 * MiB) await paused;
        if (9 * MiB + sent >= data.length) {
          controller.close();
          return;
        }
        controller.enqueue(Uint8Array.from(data.subarray(9 * MiB + sent, 9 * MiB + sent + MiB)));
        sent += MiB;
      },
    });
    const interrupted = proxied(upload, {
      method: 'PATCH',
      body: stalled,
      duplex: 'half',
      headers: { 'content-type': 'application/octet-stream' },
    } as RequestInit).then(
      (res) => res.status,
      (err: unknown) => err,
    );
    const c = s3.client();
    const partsStaged = async (): Promise<number> => {
      const uploads = (await c.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];
      const open = uploads.find((u) => u.Key?.includes('/crash/app/'));
      if (!open) return 0;
      const parts = await c.send(new ListPartsCommand({ Bucket: bucket, Key: open.Key, UploadId: open.UploadId }));
      return (parts.Parts ?? []).length;
    };
    const deadline = Date.now() + 30_000;
    while ((await partsStaged()) < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await partsStaged()).toBe(2);
    await replica(victim).kill();
    replicas[victim] = undefined;
    resume();
    // The client sees the PATCH fail: an error, or Traefik's 502. (Had it gone to the survivor, it would be a 202.)
    const outcome = await interrupted;
    if (typeof outcome === 'number') expect(outcome).toBe(502);
    else expect(outcome).toBeInstanceOf(Error);

    // The client's retry, at once, through Traefik: where does the upload stand, then the rest with the digest.
    const status = await proxied(upload);
    expect(status.status, await status.text()).toBe(204);
    expect(status.headers.get('range')).toBe(`0-${9 * MiB - 1}`);
    const rest = await proxied(`${upload}?digest=${sha256(data)}`, {
      method: 'PUT',
      body: Uint8Array.from(data.subarray(9 * MiB)),
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${9 * MiB}-${data.length - 1}` },
    });
    expect(rest.status, await rest.text()).toBe(201);
    for (let i = 0; i < 2; i++) {
      const got = await proxied(`/v2/crash/app/blobs/${sha256(data)}`);
      expect(got.status).toBe(200);
      expect(Buffer.from(await got.arrayBuffer()).equals(data)).toBe(true);
    }
    expect(await partsStaged()).toBe(0);
  });
});
