/**
 * The UI's server-side client of the registry's HTTP API (OCI Distribution v1.1 + our admin API), acting with one
 * user's credentials. Errors are typed so pages can say what went wrong: `RegistryAuthError` (the credentials are
 * no longer accepted: the session must end), `RegistryDownError` (nothing answers), `RegistryNotFoundError`,
 * `RegistryDeniedError` and `RegistryHttpError` for the rest.
 */
import { createHash } from 'node:crypto';
import type { RepositoryPolicies } from '../common/repository-policies.js';
import type { GcReport, RobotsReport, UsageReport, WhoAmI } from '../common/admin-api.js';
import type { EventsStatus } from '../common/events.js';
import { GC_DEFAULTS } from '../common/gc-defaults.js';
import { CACHED_FROM_HEADER } from '../common/cached-from.js';
import { MANIFEST_TYPES, MEDIA_TYPES } from '../common/media-types.js';

const MANIFEST_ACCEPT = MANIFEST_TYPES.join(', ');

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  'os.version'?: string;
}

export interface ImageManifest {
  schemaVersion: number;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: number;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export type Manifest = ImageManifest | ImageIndex;

export interface FetchedManifest {
  digest: string;
  mediaType: string;
  /** The exact bytes the registry served, as text. */
  raw: string;
  manifest: Manifest;
}

export interface ImageConfig {
  created?: string;
  architecture?: string;
  os?: string;
  variant?: string;
  author?: string;
  config?: {
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Env?: string[] | null;
    Labels?: Record<string, string> | null;
    ExposedPorts?: Record<string, unknown> | null;
    WorkingDir?: string;
    User?: string;
    Volumes?: Record<string, unknown> | null;
  };
  history?: { created?: string; created_by?: string; empty_layer?: boolean; comment?: string }[];
  rootfs?: { type: string; diff_ids: string[] };
}

export class RegistryError extends Error {
  constructor(
    message: string,
    readonly status: number,
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}
export class RegistryAuthError extends RegistryError {}
export class RegistryDeniedError extends RegistryError {}
export class RegistryNotFoundError extends RegistryError {}
export class RegistryDownError extends RegistryError {}
export class RegistryHttpError extends RegistryError {}

export interface Credentials {
  user: string;
  password: string;
}

export interface RegistryClientOptions {
  /** Base URL of the registry as the UI server reaches it, e.g. `http://127.0.0.1:5000`. */
  baseUrl: string;
  /** None: an anonymous client (public repositories), which fetches anonymous tokens where the registry asks. */
  credentials?: Credentials;
  timeoutMs?: number;
}

export function isIndex(m: Manifest): m is ImageIndex {
  return Array.isArray((m as ImageIndex).manifests);
}

/** Parses an RFC 8288 `Link` header and returns the target of `rel="next"`, if any. */
export function nextLink(header: string | null): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(',')) {
    const m = /<([^>]*)>\s*((?:;[^;]*)*)/.exec(part.trim());
    if (!m) continue;
    const params = m[2] ?? '';
    if (/;\s*rel="?next"?/i.test(params)) return m[1];
  }
  return undefined;
}

/** Reads the OCI error envelope's first message, if the body is one. */
function errorMessage(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { errors?: { code?: string; message?: string }[] };
    const first = parsed.errors?.[0];
    if (first) return [first.code, first.message].filter(Boolean).join(': ');
  } catch {
    // not JSON
  }
  return undefined;
}

export class RegistryClient {
  private readonly base: URL;
  private readonly auth: string | undefined;
  private readonly timeoutMs: number;
  /** An anonymous client's tokens, by the scope the registry asked for. */
  private readonly tokens = new Map<string, { token: string; expires: number }>();

  constructor(opts: RegistryClientOptions) {
    this.base = new URL(opts.baseUrl.endsWith('/') ? opts.baseUrl : `${opts.baseUrl}/`);
    const c = opts.credentials;
    this.auth = c ? `Basic ${Buffer.from(`${c.user}:${c.password}`).toString('base64')}` : undefined;
    this.timeoutMs = opts.timeoutMs ?? 20_000;
  }

  get baseUrl(): string {
    return this.base.toString();
  }

  private async request(path: string, init: RequestInit = {}, what = path): Promise<Response> {
    const url = new URL(path.replace(/^\//, ''), this.base);
    if (url.origin !== this.base.origin)
      throw new RegistryHttpError(`refusing to follow a link to another origin: ${url.origin}`, 502);
    const headers = new Headers(init.headers);
    if (this.auth) headers.set('Authorization', this.auth);
    let res = await this.send(url, init, headers);
    if (res.status === 401 && !this.auth) {
      // Anonymous, on a registry with token auth: an anonymous token for the scope it names, then once more.
      const token = await this.anonymousToken(res.headers.get('www-authenticate'));
      if (token) {
        await res.body?.cancel();
        headers.set('Authorization', `Bearer ${token}`);
        res = await this.send(url, init, headers);
      }
    }
    if (res.ok) return res;
    const body = await res.text().catch(() => '');
    const detail = errorMessage(body);
    switch (res.status) {
      case 401:
        throw new RegistryAuthError('the registry no longer accepts these credentials', 401);
      case 403:
        throw new RegistryDeniedError(detail ?? `access to ${what} denied`, 403);
      case 404:
        throw new RegistryNotFoundError(detail ?? `${what} not found`, 404);
      default:
        if (res.status >= 500)
          throw new RegistryDownError(`the registry answered ${res.status}${detail ? ` (${detail})` : ''}`, 502);
        throw new RegistryHttpError(
          `the registry answered ${res.status}${detail ? ` (${detail})` : ''} for ${what}`,
          res.status,
        );
    }
  }

  private async send(url: URL, init: RequestInit, headers: Headers): Promise<Response> {
    try {
      return await fetch(url, { ...init, headers, redirect: 'follow', signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw new RegistryDownError(`the registry at ${this.base.origin} is not reachable`, 502, { cause: err });
    }
  }

  /**
   * The token a `Bearer realm=…,service=…,scope=…` challenge offers to a client without credentials, or undefined.
   * Asked of this registry's own origin (the realm's path only): the UI never follows a challenge elsewhere.
   */
  private async anonymousToken(challenge: string | null): Promise<string | undefined> {
    if (!challenge || !/^Bearer\s/i.test(challenge)) return undefined;
    const params = new Map([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] as string, m[2] as string]));
    const realm = params.get('realm');
    if (!realm) return undefined;
    const scope = params.get('scope') ?? '';
    const cached = this.tokens.get(scope);
    if (cached && cached.expires > Date.now()) return cached.token;
    const url = new URL(new URL(realm, this.base).pathname, this.base);
    if (params.has('service')) url.searchParams.set('service', params.get('service') as string);
    if (scope) url.searchParams.set('scope', scope);
    const res = await this.send(url, {}, new Headers());
    if (!res.ok) {
      await res.body?.cancel();
      return undefined;
    }
    const body = (await res.json()) as { token?: string; access_token?: string; expires_in?: number };
    const token = body.token ?? body.access_token;
    if (!token) return undefined;
    // Reused for most of its life, never past it.
    this.tokens.set(scope, { token, expires: Date.now() + Math.max(0, (body.expires_in ?? 60) - 10) * 1000 });
    return token;
  }

  private async json<T>(path: string, init: RequestInit = {}, what = path): Promise<T> {
    const res = await this.request(path, init, what);
    return (await res.json()) as T;
  }

  /** `GET /v2/`: resolves when the credentials are accepted. */
  async ping(): Promise<void> {
    const res = await this.request('/v2/');
    await res.body?.cancel();
  }

  /** The first page of one name of the catalog: resolves when this client may list repositories. */
  async probeCatalog(): Promise<void> {
    const res = await this.request('/v2/_catalog?n=1', {}, 'the catalog');
    await res.body?.cancel();
  }

  /** Every repository name, following `Link` pagination to the end. */
  async catalog(pageSize = 1000): Promise<string[]> {
    return this.paginate<{ repositories?: string[] }>(
      `/v2/_catalog?n=${pageSize}`,
      (p) => p.repositories ?? [],
      'the catalog',
    );
  }

  /** Every tag of a repository, following `Link` pagination to the end. */
  async tags(name: string, pageSize = 1000): Promise<string[]> {
    return this.paginate<{ tags?: string[] | null }>(
      `/v2/${name}/tags/list?n=${pageSize}`,
      (p) => p.tags ?? [],
      `repository ${name}`,
    );
  }

  /** The upstream a repository of the pull-through cache is cached from (tags list header); undefined otherwise. */
  async cachedFrom(name: string): Promise<string | undefined> {
    const res = await this.request(`/v2/${name}/tags/list?n=1`, {}, `repository ${name}`);
    await res.body?.cancel();
    return res.headers.get(CACHED_FROM_HEADER) ?? undefined;
  }

  private async paginate<P>(first: string, pick: (page: P) => string[], what: string): Promise<string[]> {
    const out: string[] = [];
    const seen = new Set<string>();
    let next: string | undefined = first;
    while (next) {
      if (seen.has(next)) break;
      seen.add(next);
      const res = await this.request(next, {}, what);
      const page = (await res.json()) as P;
      out.push(...pick(page));
      next = nextLink(res.headers.get('link'));
    }
    return out;
  }

  async manifest(name: string, reference: string): Promise<FetchedManifest> {
    const res = await this.request(
      `/v2/${name}/manifests/${reference}`,
      { headers: { Accept: MANIFEST_ACCEPT } },
      `${name}:${reference}`,
    );
    const raw = await res.text();
    let manifest: Manifest;
    try {
      manifest = JSON.parse(raw) as Manifest;
    } catch (err) {
      throw new RegistryHttpError(`the manifest of ${name}:${reference} is not JSON`, 502, { cause: err });
    }
    const mediaType =
      res.headers.get('content-type')?.split(';')[0]?.trim() || manifest.mediaType || MEDIA_TYPES.ociManifest;
    const digest =
      res.headers.get('docker-content-digest') ?? (reference.includes(':') ? reference : sha256Digest(raw));
    return { digest, mediaType, raw, manifest };
  }

  async blobJson<T>(name: string, digest: string): Promise<T> {
    const res = await this.request(`/v2/${name}/blobs/${digest}`, {}, `blob ${digest} in ${name}`);
    const text = await res.text();
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new RegistryHttpError(`blob ${digest} in ${name} is not JSON`, 502, { cause: err });
    }
  }

  async referrers(name: string, digest: string): Promise<Descriptor[]> {
    const index = await this.json<ImageIndex>(
      `/v2/${name}/referrers/${digest}`,
      { headers: { Accept: MEDIA_TYPES.ociIndex } },
      `referrers of ${digest}`,
    );
    return index.manifests ?? [];
  }

  /** Deletes one tag (`DELETE /v2/<name>/manifests/<tag>`): other tags on the same digest stay. */
  async deleteTag(name: string, tag: string): Promise<void> {
    const res = await this.request(`/v2/${name}/manifests/${tag}`, { method: 'DELETE' }, `${name}:${tag}`);
    await res.body?.cancel();
  }

  async whoami(): Promise<WhoAmI> {
    return this.json<WhoAmI>('/admin/v1/whoami', {}, 'the admin API');
  }

  async usage(): Promise<UsageReport> {
    return this.json<UsageReport>('/admin/v1/usage', {}, 'the admin API');
  }

  /** The quota, retention and immutable-tag rules that apply to a repository (regctl's admin API). */
  async repositoryPolicies(name: string): Promise<RepositoryPolicies> {
    const q = new URLSearchParams({ name });
    return this.json<RepositoryPolicies>(`/admin/v1/repository-policies?${q.toString()}`, {}, 'the admin API');
  }

  /** The robot accounts (admins only). */
  async robots(): Promise<RobotsReport> {
    return this.json<RobotsReport>('/admin/v1/robots', {}, 'the admin API');
  }

  /** `GET /admin/v1/events`: the event endpoints and their delivery log (admins). */
  async events(limit = 50): Promise<EventsStatus> {
    return this.json<EventsStatus>(`/admin/v1/events?limit=${limit}`, {}, 'the admin API');
  }

  /** A GC dry run with `regctl gc`'s defaults: what the next `regctl gc` would free. */
  async gcDryRun(): Promise<GcReport> {
    return this.json<GcReport>(
      '/admin/v1/gc',
      {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ dryRun: true, deleteUntagged: GC_DEFAULTS.deleteUntagged }),
      },
      'the admin API',
    );
  }
}

function sha256Digest(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}
