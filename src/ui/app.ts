/**
 * What every request of one UI handler shares: its options resolved once, the mount point and its links, the
 * session store and sign-in throttle, the registry client for a user, and the frame every page is drawn in.
 */
import type { TrustedProxies } from '../common/client-address.js';
import type { IncomingMessage } from 'node:http';
import { VERSION } from '../common/version.js';
import { ASSET_VERSION } from './assets/index.js';
import { isAdmin } from './permissions.js';
import { Paths } from './paths.js';
import { PublicBrowsing } from './public-browsing.js';
import { RegistryClient, type Credentials } from './registry-client.js';
import type { CookieOptions } from './security.js';
import { LoginThrottle, SessionStore, type Session, type SessionStoreOptions } from './sessions.js';
import type { ViewContext } from './views/layout.js';

export interface UiOptions {
  /** The registry as this server reaches it (`http://127.0.0.1:5000`); a function when known only after listen. */
  registry: string | (() => string);
  /**
   * Host (and port) shown in pull commands. Defaults to the Host the browser used when the UI is mounted on the
   * registry's own listener (`basePath` set), else to the registry URL's host.
   */
  publicRegistry?: string;
  /** Adds `Secure` to the session cookie (set when users reach the UI over HTTPS). */
  secureCookies?: boolean;
  /** Mount point without a trailing slash: '' (default) or '/ui'. */
  basePath?: string;
  sessions?: SessionStoreOptions;
  throttle?: ConstructorParameters<typeof LoginThrottle>[0];
  /** Rows per page of the repository list. */
  pageSize?: number;
  /** `n` asked of the registry per page of `_catalog` and tag lists (the UI follows `Link` to the end). */
  listPageSize?: number;
  /** Called with unexpected errors (never shown to users). */
  onError?: (err: unknown) => void;
  /**
   * Proxies whose X-Forwarded-For names the client, for the sign-in throttle (common/client-address.ts); none:
   * the socket's peer is the client, and a forged header cannot spread guesses over many addresses.
   */
  trustedProxies?: TrustedProxies;
}

export interface UiApp {
  /** The mount point without a trailing slash: '' or '/ui'. */
  readonly base: string;
  readonly paths: Paths;
  readonly sessions: SessionStore;
  readonly throttle: LoginThrottle;
  readonly trustedProxies: TrustedProxies | undefined;
  /** Rows per page of the repository list. */
  readonly pageSize: number;
  readonly listPageSize: number | undefined;
  readonly cookie: CookieOptions;
  registryUrl(): string;
  /** A client of the registry acting as this user. */
  clientFor(credentials: Credentials): RegistryClient;
  /** Signed-out browsing of the public repositories (public-browsing.ts). */
  readonly publicBrowsing: PublicBrowsing;
  /** The frame of a page for this session (signed out when undefined). */
  view(session: Session | undefined, req?: IncomingMessage): ViewContext;
  onError(err: unknown): void;
}

export function normaliseBase(base: string | undefined): string {
  if (!base || base === '/') return '';
  return `/${base.replace(/^\/+|\/+$/g, '')}`;
}

export function createApp(opts: UiOptions): UiApp {
  const base = normaliseBase(opts.basePath);
  const paths = new Paths(base);
  const registryUrl = () => (typeof opts.registry === 'function' ? opts.registry() : opts.registry);
  const publicRegistry = (req: IncomingMessage | undefined) => {
    if (opts.publicRegistry) return opts.publicRegistry;
    const host = base ? forwardedHost(req) : undefined;
    return host ?? new URL(registryUrl()).host;
  };
  let browsing: PublicBrowsing | undefined;
  return {
    base,
    paths,
    sessions: new SessionStore(opts.sessions),
    throttle: new LoginThrottle(opts.throttle),
    trustedProxies: opts.trustedProxies,
    pageSize: opts.pageSize ?? 50,
    listPageSize: opts.listPageSize,
    cookie: { path: paths.cookiePath(), secure: Boolean(opts.secureCookies) },
    registryUrl,
    clientFor: ({ user, password }) => new RegistryClient({ baseUrl: registryUrl(), credentials: { user, password } }),
    get publicBrowsing() {
      browsing ??= new PublicBrowsing(registryUrl());
      return browsing;
    },
    view: (session, req) => ({
      paths,
      user: session?.user || undefined,
      csrf: session?.csrf,
      admin: isAdmin(session?.whoami),
      publicRegistry: publicRegistry(req),
      version: VERSION,
      assetVersion: ASSET_VERSION,
    }),
    onError: (err) => opts.onError?.(err),
  };
}

/** The host the browser asked for (behind a proxy, the one it forwarded), if it looks like a host. */
function forwardedHost(req: IncomingMessage | undefined): string | undefined {
  const raw = (req?.headers['x-forwarded-host'] as string | undefined)?.split(',')[0]?.trim() ?? req?.headers.host;
  return raw && /^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/.test(raw) ? raw : undefined;
}
