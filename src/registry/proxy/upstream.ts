/**
 * A client of one upstream registry, speaking the distribution auth protocol: a request answered 401 with
 * `WWW-Authenticate: Bearer realm=…,service=…,scope=…` fetches a token from the realm (with the proxy's Basic
 * credentials when it has some) and is sent again; a `Basic` challenge is answered with the credentials. Tokens
 * are kept per scope until shortly before they expire.
 *
 * An upstream that answered 429 or 503 is left alone until its `Retry-After` has passed ("unavailable until"):
 * requests in that window fail at once with `UpstreamError` and never reach it.
 */
import type { ProxyCredentials } from './config.js';

/** Why the upstream could not answer: `unreachable` (network, 5xx, 429, backing off) or `status` (its answer). */
export class UpstreamError extends Error {
  constructor(
    message: string,
    readonly kind: 'unreachable' | 'status',
    readonly status: number | undefined,
    /** Seconds the upstream asked us to wait (its Retry-After), when it did. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
}

export interface UpstreamOptions {
  /** Base URL, e.g. `https://registry-1.docker.io`. */
  url: string;
  credentials: () => Promise<ProxyCredentials | undefined>;
  /** How long to wait for the upstream's response headers. */
  headersTimeoutMs?: number;
  /** Backoff after a 429/503 without Retry-After. */
  defaultBackoffMs?: number;
  now?: () => number;
}

interface Token {
  value: string;
  expiresAt: number;
}

type Challenge = { scheme: 'basic' } | { scheme: 'bearer'; realm: string; service?: string; scope?: string };

/** Parses a WWW-Authenticate header's first challenge (`Bearer realm="…",service="…"` or `Basic realm="…"`). */
export function parseChallenge(header: string | null): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (!m) return undefined;
  const scheme = (m[1] as string).toLowerCase();
  if (scheme === 'basic') return { scheme: 'basic' };
  if (scheme !== 'bearer') return undefined;
  const params: Record<string, string> = {};
  for (const p of (m[2] as string).matchAll(/(\w+)="([^"]*)"|(\w+)=([^,\s]*)/g)) {
    const key = (p[1] ?? p[3]) as string;
    params[key.toLowerCase()] = (p[2] ?? p[4]) as string;
  }
  if (!params.realm) return undefined;
  return { scheme: 'bearer', realm: params.realm, service: params.service, scope: params.scope };
}

/** Retry-After in seconds (a number of seconds or an HTTP date); undefined when absent or unreadable. */
export function retryAfterSeconds(header: string | null, now: number): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim());
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

export class UpstreamClient {
  private readonly tokens = new Map<string, Token>();
  private basic = false;
  private unavailableUntil = 0;
  private readonly now: () => number;

  constructor(private readonly opts: UpstreamOptions) {
    this.now = opts.now ?? Date.now;
  }

  get host(): string {
    return new URL(this.opts.url).host;
  }

  /** Seconds left in a backoff the upstream asked for; 0 when it may be asked. */
  backoffSeconds(): number {
    return Math.max(0, Math.ceil((this.unavailableUntil - this.now()) / 1000));
  }

  /**
   * Sends `method path` (a `/v2/…` path) with the auth the upstream asks for. Answers other than 2xx and 404 — a
   * 429 or 5xx, a refused login, a network failure — throw `UpstreamError`; a 404 is returned for the caller to
   * map. `scope` is the token scope (`repository:<name>:pull`).
   */
  async fetch(method: 'GET' | 'HEAD', path: string, scope: string, accept?: string): Promise<Response> {
    const wait = this.backoffSeconds();
    if (wait > 0)
      throw new UpstreamError(`upstream ${this.host} asked us to wait (retry in ${wait}s)`, 'unreachable', 429, wait);
    let res = await this.send(method, path, await this.authorization(scope), accept);
    if (res.status === 401) {
      const challenge = parseChallenge(res.headers.get('www-authenticate'));
      await res.body?.cancel();
      if (challenge?.scheme === 'basic') this.basic = true;
      else if (challenge?.scheme === 'bearer') await this.fetchToken(challenge, scope);
      else throw new UpstreamError(`upstream ${this.host} asked for authentication it does not name`, 'status', 401);
      res = await this.send(method, path, await this.authorization(scope), accept);
    }
    if ((res.status >= 200 && res.status < 300) || res.status === 404) return res;
    await res.body?.cancel();
    const after = retryAfterSeconds(res.headers.get('retry-after'), this.now());
    if (res.status === 429 || res.status === 503) {
      const ms = after !== undefined ? after * 1000 : (this.opts.defaultBackoffMs ?? 10_000);
      this.unavailableUntil = Math.max(this.unavailableUntil, this.now() + ms);
    }
    if (res.status === 401 || res.status === 403)
      throw new UpstreamError(
        `upstream ${this.host} refused the proxy's credentials (${res.status}); check the proxy's credentialsFile`,
        'status',
        res.status,
      );
    const kind = res.status === 429 || res.status >= 500 ? 'unreachable' : 'status';
    throw new UpstreamError(
      `upstream ${this.host} answered ${res.status} to ${method} ${path}`,
      kind,
      res.status,
      after,
    );
  }

  private async send(method: string, path: string, auth: string | undefined, accept?: string): Promise<Response> {
    const headers: Record<string, string> = {};
    if (auth) headers.authorization = auth;
    if (accept) headers.accept = accept;
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), this.opts.headersTimeoutMs ?? 30_000);
    try {
      // The timer covers the headers only: a large blob's body may take as long as it takes.
      return await fetch(`${this.opts.url}${path}`, { method, headers, signal: ctl.signal, redirect: 'follow' });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new UpstreamError(`upstream ${this.host} unreachable (${cause})`, 'unreachable', undefined);
    } finally {
      clearTimeout(timer);
    }
  }

  private async authorization(scope: string): Promise<string | undefined> {
    const token = this.tokens.get(scope);
    if (token && token.expiresAt > this.now()) return `Bearer ${token.value}`;
    if (!this.basic) return undefined;
    const creds = await this.opts.credentials();
    return creds ? basicHeader(creds) : undefined;
  }

  private async fetchToken(challenge: Challenge & { scheme: 'bearer' }, scope: string): Promise<void> {
    const url = new URL(challenge.realm);
    if (challenge.service) url.searchParams.set('service', challenge.service);
    url.searchParams.set('scope', scope);
    const creds = await this.opts.credentials();
    let res: Response;
    try {
      res = await fetch(url, { headers: creds ? { authorization: basicHeader(creds) } : {} });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new UpstreamError(`token service of ${this.host} unreachable (${cause})`, 'unreachable', undefined);
    }
    if (!res.ok) {
      await res.body?.cancel();
      const kind = res.status === 429 || res.status >= 500 ? 'unreachable' : 'status';
      throw new UpstreamError(`token service of ${this.host} answered ${res.status}`, kind, res.status);
    }
    const doc = (await res.json()) as { token?: unknown; access_token?: unknown; expires_in?: unknown };
    const value = typeof doc.token === 'string' ? doc.token : doc.access_token;
    if (typeof value !== 'string')
      throw new UpstreamError(`token service of ${this.host} answered without a token`, 'status', res.status);
    // 60 s when unsaid (the spec's default); renewed 10 s early so a token never expires in flight.
    const seconds = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60;
    this.tokens.set(scope, { value, expiresAt: this.now() + Math.max(0, seconds - 10) * 1000 });
  }
}

function basicHeader(c: ProxyCredentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}
