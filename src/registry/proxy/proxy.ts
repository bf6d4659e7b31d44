/**
 * The pull-through cache: repositories under a proxy prefix (`hub/library/alpine`) are served from our storage
 * and filled from the upstream (`library/alpine` at registry-1.docker.io) when asked for. Cached content is
 * ordinary content of that repository — manifests, tags, linked blobs — so GC, usage, fsck and backups see it.
 *
 * - Manifests by tag: served from storage while younger than the entry's ttl; after that a HEAD upstream (which
 *   Docker Hub does not count against its pull limit) revalidates the tag, and only a changed digest is fetched.
 * - Manifests by digest: from storage when present, else fetched and verified once; never fetched again.
 * - Blobs: fetched once (blob-flight.ts), streamed to every client asking meanwhile, verified before stored.
 * - The upstream unreachable, rate-limiting (429) or failing (5xx): a cached tag is served stale, with
 *   `Warning: 110 - "Response is stale"` and a log line; what was never cached fails with 503 UNAVAILABLE (or 429
 *   TOOMANYREQUESTS when the upstream rate-limits), carrying the upstream's Retry-After, which clients retry.
 * - Pushes, uploads, mounts and deletes into a proxy prefix are refused with DENIED.
 */
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { pipeline } from 'node:stream/promises';
import { MANIFEST_TYPES } from '../../common/media-types.js';
import { RegistryError } from '../errors.js';
import type { Fence } from '../fence.js';
import type { Ctx } from '../http/context.js';
import type { LogFn } from '../logger.js';
import { MAX_MANIFEST_BYTES } from '../manifest.js';
import { parseDigest, tryParseDigest, type Digest } from '../reference.js';
import type { ManifestRef } from '../storage/manifest-store.js';
import { pathFor } from '../storage/paths.js';
import type { RegistryStore, StoredManifest } from '../storage/store.js';
import { BlobFlight, download } from './blob-flight.js';
import { DOCKER_HUB_HOSTS, readCredentials, type ProxyCredentials, type ProxyEntry } from './config.js';
import { UpstreamClient, UpstreamError } from './upstream.js';

const ACCEPT = MANIFEST_TYPES.join(', ');

export interface ProxyOptions {
  log: LogFn;
  env?: NodeJS.ProcessEnv;
  /** Where in-flight blob downloads are spooled (unlinked at once): the data directory, else the temp directory. */
  spoolDir?: string;
  now?: () => number;
  /** The read-only fence: filling the cache is a write, held back while a backup runs. */
  fence?: () => Fence;
}

interface Upstream {
  entry: ProxyEntry;
  client: UpstreamClient;
}

export class RegistryProxy {
  private readonly upstreams: Upstream[];
  private readonly validated = new Map<string, number>();
  /** Blob downloads in progress by digest, with the repository each was started for. */
  private readonly flights = new Map<string, { name: string; flight: Promise<BlobFlight> }>();
  private readonly now: () => number;

  constructor(
    entries: readonly ProxyEntry[],
    private readonly opts: ProxyOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.upstreams = entries.map((entry) => {
      let creds: Promise<ProxyCredentials | undefined> | undefined;
      const credentials = (): Promise<ProxyCredentials | undefined> =>
        (creds ??= readCredentials(entry, opts.env ?? process.env));
      return { entry, client: new UpstreamClient({ url: entry.upstream, credentials, now: this.now }) };
    });
  }

  /** Reads every entry's credentials once, so a missing or malformed file stops the start-up. */
  async check(): Promise<void> {
    for (const { entry } of this.upstreams) await readCredentials(entry, this.opts.env ?? process.env);
  }

  private match(name: string): { up: Upstream; remote: string } | undefined {
    for (const up of this.upstreams) {
      const p = `${up.entry.prefix}/`;
      if (!name.startsWith(p) || name.length === p.length) continue;
      let remote = name.slice(p.length);
      // Docker Hub's official images live under library/ (`hub/alpine` is `library/alpine`).
      if (!remote.includes('/') && DOCKER_HUB_HOSTS.has(up.entry.mirrorOf ?? up.client.host))
        remote = `library/${remote}`;
      return { up, remote };
    }
    return undefined;
  }

  upstreamOf(name: string): string | undefined {
    return this.match(name)?.up.entry.upstream;
  }

  /** Whether `name` lies under a proxy prefix. */
  owns(name: string): boolean {
    return this.match(name) !== undefined;
  }

  /**
   * dockerd's registry-mirrors form: `/v2/library/alpine/manifests/3` is `hub/library/alpine` when `hub` has
   * `dockerMirror` and `library/alpine` is not a repository of ours.
   * containerd's mirror form: `/v2/library/alpine/manifests/3?ns=docker.io` is `hub/library/alpine` when `hub`'s
   * upstream (or its `mirrorOf`) is that host (any of Docker Hub's names for Docker Hub). Then any write into a
   * prefix is refused.
   */
  async mapMirror(ctx: Ctx): Promise<void> {
    const ns = ctx.url.searchParams.get('ns');
    const name = ctx.params.name;
    if (name === undefined) return;
    if (ns !== null) {
      const up = this.upstreams.find((u) => sameRegistry(u.entry.mirrorOf ?? u.client.host, ns));
      if (up) ctx.params.name = `${up.entry.prefix}/${name}`;
      return;
    }
    // dockerd's registry-mirrors form (config.ts `dockerMirror`): pulls only, of manifests, blobs and referrers.
    const hub = this.upstreams.find((u) => u.entry.dockerMirror);
    if (!hub || (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD')) return;
    if (ctx.params.reference === undefined && ctx.params.digest === undefined) return;
    if (this.match(name) || (await ctx.store.index.repository(name))) return;
    const cached = `${hub.entry.prefix}/${name}`;
    // A blob only once its manifest came through the mirror (dockerd asks for that first): a client checking a
    // blob before pushing a new repository of ours never waits on Docker Hub.
    if (ctx.params.reference === undefined && !(await ctx.store.index.repository(cached))) return;
    ctx.params.name = cached;
  }

  /** DENIED for any write (push, upload, mount, delete) into a proxy prefix. */
  refuseWrite(name: string, action: string): void {
    const m = this.match(name);
    if (!m || action === 'pull') return;
    const { prefix, upstream } = m.up.entry;
    throw new RegistryError(
      'DENIED',
      { name, proxyPrefix: prefix, upstream },
      { message: `${prefix}/ is a pull-through cache of ${upstream}: pushes and deletes there are refused` },
    );
  }

  /** A manifest of a proxied repository, from the cache or the upstream (module comment). */
  async manifest(ctx: Ctx, name: string, ref: ManifestRef): Promise<StoredManifest> {
    const m = this.match(name) as { up: Upstream; remote: string };
    const store = ctx.store;
    const local = await store.manifests.get(name, ref).catch((err: unknown) => {
      if (err instanceof RegistryError && (err.code === 'MANIFEST_UNKNOWN' || err.code === 'NAME_UNKNOWN'))
        return undefined;
      throw err;
    });
    if ('digest' in ref) return local ?? this.guard(m, () => this.fetchManifest(store, m, name, ref, undefined));
    const key = `${name}:${ref.tag}`;
    if (local && (await this.validatedAt(store, name, ref.tag, key)) + m.up.entry.ttlMs > this.now()) return local;
    try {
      return await this.revalidate(store, m, name, ref.tag, local);
    } catch (err) {
      if (!(err instanceof UpstreamError) || !local) throw err instanceof UpstreamError ? mapError(err) : err;
      this.opts.log('warn', 'serving a stale cached manifest: the upstream did not answer', {
        name,
        tag: ref.tag,
        upstream: m.up.entry.upstream,
        error: err.message,
      });
      ctx.res.setHeader('Warning', '110 - "Response is stale"');
      return local;
    }
  }

  /**
   * When the tag was last confirmed with the upstream: in memory since this process started, else when its link
   * was written (a restart revalidates tags older than the ttl once).
   */
  private async validatedAt(store: RegistryStore, name: string, tag: string, key: string): Promise<number> {
    const known = this.validated.get(key);
    if (known !== undefined) return known;
    const at = await store.driver.stat(pathFor({ kind: 'tagCurrentLink', name, tag })).then(
      (s) => s.modifiedAt.getTime(),
      () => 0,
    );
    this.validated.set(key, at);
    return at;
  }

  private async revalidate(
    store: RegistryStore,
    m: { up: Upstream; remote: string },
    name: string,
    tag: string,
    local: StoredManifest | undefined,
  ): Promise<StoredManifest> {
    const key = `${name}:${tag}`;
    const head = await m.up.client.fetch('HEAD', `/v2/${m.remote}/manifests/${tag}`, scope(m.remote), ACCEPT);
    if (head.status === 404) throw unknownUpstream('MANIFEST_UNKNOWN', m, { tag });
    const claimed = tryParseDigest(head.headers.get('docker-content-digest') ?? '');
    let result: StoredManifest;
    if (claimed && local?.digest === claimed.value) result = local;
    else if (claimed && (await store.index.hasRevision(name, claimed.value))) {
      await this.write(() => store.tags.set(name, tag, claimed));
      result = await store.manifests.get(name, { digest: claimed });
    } else result = await this.fetchManifest(store, m, name, { tag }, claimed);
    this.validated.set(key, this.now());
    return result;
  }

  /** GETs a manifest upstream, verifies its digest (the one asked for, else the one announced) and stores it. */
  private async fetchManifest(
    store: RegistryStore,
    m: { up: Upstream; remote: string },
    name: string,
    ref: ManifestRef,
    announced: Digest | undefined,
  ): Promise<StoredManifest> {
    const reference = 'tag' in ref ? ref.tag : ref.digest.value;
    const res = await m.up.client.fetch('GET', `/v2/${m.remote}/manifests/${reference}`, scope(m.remote), ACCEPT);
    if (res.status === 404) {
      await res.body?.cancel();
      throw unknownUpstream('MANIFEST_UNKNOWN', m, 'tag' in ref ? { tag: ref.tag } : { digest: reference });
    }
    const declared = Number(res.headers.get('content-length') ?? 0);
    if (declared > MAX_MANIFEST_BYTES) {
      await res.body?.cancel();
      throw badUpstream(m, `manifest of ${declared} bytes exceeds the limit`);
    }
    const body = Buffer.from(await res.arrayBuffer());
    const expected =
      'digest' in ref ? ref.digest : (announced ?? tryParseDigest(res.headers.get('docker-content-digest') ?? ''));
    const algorithm = expected?.algorithm ?? 'sha256';
    const actual = parseDigest(`${algorithm}:${createHash(algorithm).update(body).digest('hex')}`);
    if (expected && expected.value !== actual.value) {
      this.opts.log('error', 'upstream manifest does not match its digest; not stored', {
        name,
        reference,
        expected: expected.value,
        actual: actual.value,
      });
      throw badUpstream(m, `manifest ${reference} does not match its digest ${expected.value}`);
    }
    const type = res.headers.get('content-type')?.split(';')[0]?.trim();
    try {
      const stored = 'tag' in ref ? ref : { digest: actual };
      await this.write(() => store.manifests.put(name, stored, body, optionalType(type), [], { lazy: true }));
    } catch (err) {
      if (err instanceof RegistryError && err.code === 'MANIFEST_INVALID')
        throw badUpstream(m, `invalid manifest ${reference}: ${err.message}`);
      throw err;
    }
    return store.manifests.get(name, { digest: actual });
  }

  /** Runs a manifest or tag write past the fence, counted as backups expect (routes.ts `counted`). */
  private async write<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.opts.fence?.().enterWrite();
    try {
      return await fn();
    } finally {
      release?.();
    }
  }

  /** Maps an UpstreamError thrown by `fn` to the client's error (for content never cached). */
  private async guard<T>(_m: { up: Upstream }, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw err instanceof UpstreamError ? mapError(err) : err;
    }
  }

  /**
   * Serves a blob of a proxied repository that is not linked there. Returns true when the blob was in storage
   * and is now linked (the caller serves it as any other); false when this answered the request itself.
   */
  async serveBlob(ctx: Ctx, name: string, digest: Digest): Promise<boolean> {
    const m = this.match(name) as { up: Upstream; remote: string };
    const store = ctx.store;
    const stored = (await store.blobs.size(digest)) !== undefined;
    const running = this.flights.get(digest.value);
    // A blob stored (or being downloaded) for another repository is shared with this one only once the upstream
    // confirms this repository holds it: knowing a digest must not open content the user may not pull.
    let length: string | null = null;
    if (stored || (running !== undefined && running.name !== name) || ctx.req.method === 'HEAD') {
      const res = await this.guard(m, () =>
        m.up.client.fetch('HEAD', `/v2/${m.remote}/blobs/${digest.value}`, scope(m.remote)),
      );
      if (res.status === 404) throw unknownUpstream('BLOB_UNKNOWN', m, { digest: digest.value });
      length = res.headers.get('content-length');
      if (stored && (await store.linked.link(name, digest))) return true;
    }
    const headers: Record<string, string | number> = {
      'Content-Type': 'application/octet-stream',
      'Docker-Content-Digest': digest.value,
      ETag: `"${digest.value}"`,
    };
    if (ctx.req.method === 'HEAD') {
      ctx.res.writeHead(200, { ...headers, ...(length ? { 'Content-Length': length } : {}) }).end();
      return false;
    }
    let entry = this.flights.get(digest.value);
    if (!entry) {
      const flight = this.startFlight(store, m, name, digest);
      entry = { name, flight };
      this.flights.set(digest.value, entry);
      const started = entry;
      flight.catch(() => this.flights.get(digest.value) === started && this.flights.delete(digest.value));
    }
    const flight = await entry.flight;
    // Over before this client could follow it: the blob is in storage now, or the download failed.
    if (flight.state === 'verified' && (await store.linked.link(name, digest))) return true;
    if (flight.state !== 'running') throw badUpstream(m, `the download of ${digest.value} failed`);
    if (entry.name !== name) flight.done.then(() => store.linked.link(name, digest)).catch(() => undefined);
    if (flight.size !== undefined) headers['Content-Length'] = flight.size;
    ctx.res.writeHead(200, headers);
    const src = flight.reader();
    src.on('data', (c: Buffer) => (ctx.state.bytesOut += c.length));
    await pipeline(src, ctx.res);
    return false;
  }

  private async startFlight(
    store: RegistryStore,
    m: { up: Upstream; remote: string },
    name: string,
    digest: Digest,
  ): Promise<BlobFlight> {
    const res = await this.guard(m, () =>
      m.up.client.fetch('GET', `/v2/${m.remote}/blobs/${digest.value}`, scope(m.remote)),
    );
    if (res.status === 404 || !res.body) {
      await res.body?.cancel();
      throw unknownUpstream('BLOB_UNKNOWN', m, { digest: digest.value });
    }
    const len = res.headers.get('content-length');
    const body = Readable.fromWeb(res.body as NodeReadableStream<Uint8Array>);
    const spoolDir = this.opts.spoolDir ?? tmpdir();
    // Like an upload, a download only waits for a raised fence to lift before it starts.
    await this.opts.fence?.().waitWritable();
    const flight = new BlobFlight(
      len === null ? undefined : Number(len),
      (f) => download(store, name, digest, body, f, spoolDir),
      () => this.flights.delete(digest.value),
    );
    flight.done.catch((err: unknown) =>
      this.opts.log('error', 'upstream blob download failed; nothing stored', {
        name,
        digest: digest.value,
        upstream: m.up.entry.upstream,
        error: (err as Error).message,
      }),
    );
    return flight;
  }
}

function sameRegistry(host: string, ns: string): boolean {
  return host === ns || (DOCKER_HUB_HOSTS.has(host) && DOCKER_HUB_HOSTS.has(ns));
}

function scope(remote: string): string {
  return `repository:${remote}:pull`;
}

function optionalType(type: string | undefined): string | undefined {
  return type && MANIFEST_TYPES.includes(type) ? type : undefined;
}

function unknownUpstream(
  code: 'MANIFEST_UNKNOWN' | 'BLOB_UNKNOWN',
  m: { up: Upstream; remote: string },
  detail: Record<string, string>,
): RegistryError {
  const what = code === 'BLOB_UNKNOWN' ? 'blob' : 'manifest';
  return new RegistryError(
    code,
    { ...detail, upstream: m.up.entry.upstream, upstreamName: m.remote },
    { message: `${what} unknown to the upstream ${m.up.client.host} (${m.remote})` },
  );
}

function badUpstream(m: { up: Upstream }, what: string): RegistryError {
  return new RegistryError(
    'UNAVAILABLE',
    { upstream: m.up.entry.upstream },
    { message: `the upstream ${m.up.client.host} sent a bad answer: ${what}` },
  );
}

/**
 * What a client gets for content never cached when the upstream fails: 429 TOOMANYREQUESTS when the upstream
 * rate-limits, else 503 UNAVAILABLE; both carry Retry-After when the upstream gave one, and the upstream's story.
 */
export function mapError(err: UpstreamError): RegistryError {
  const headers: Record<string, string> =
    err.retryAfterSeconds !== undefined ? { 'Retry-After': String(err.retryAfterSeconds) } : {};
  const detail = { upstreamStatus: err.status };
  const message = `pull-through cache: ${err.message}; the content is not cached here`;
  return new RegistryError(err.status === 429 ? 'TOOMANYREQUESTS' : 'UNAVAILABLE', detail, { message, headers });
}
