/**
 * The web UI's HTTP server. `createUiHandler(opts)` returns a plain Node `(req, res)` handler that renders every
 * page server-side and talks to the registry with the signed-in user's credentials; it works at `/` or under a
 * path prefix (`basePath: '/ui'`, for `regctl serve --ui`), whether or not the mounting server strips the prefix.
 * `createUiServer(opts)` wraps it in a `node:http` server for `regctl ui`.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WhoAmI } from '../common/admin-api.js';
import { VERSION } from '../version.js';
import { APP_JS } from './assets/app-js.js';
import { STYLE_CSS } from './assets/style.js';
import { deletePreview, imageDetails, matchesQuery, paginate, RegistryData, sortSummaries } from './data.js';
import { can, isAdmin } from './permissions.js';
import { parseRoute, Paths, type Route } from './paths.js';
import {
  RegistryAuthError,
  RegistryClient,
  RegistryDeniedError,
  RegistryDownError,
  RegistryError,
  RegistryNotFoundError,
} from './registry-client.js';
import { applySecurityHeaders, clearSessionCookie, parseCookies, SESSION_COOKIE, sessionCookie } from './security.js';
import { LoginThrottle, SessionStore, tokensEqual, type Session, type SessionStoreOptions } from './sessions.js';
import { deletePage } from './views/delete.js';
import { errorPage, type ErrorView } from './views/error.js';
import { imagePage } from './views/image.js';
import type { ViewContext } from './views/layout.js';
import { loginPage } from './views/login.js';
import { repoPage } from './views/repo.js';
import { parseSort, reposPage } from './views/repos.js';
import { storagePage } from './views/storage.js';

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
}

export type UiHandler = ((req: IncomingMessage, res: ServerResponse) => void) & { readonly sessions: SessionStore };

const ASSETS: Record<string, { body: string; type: string }> = {
  'app.js': { body: APP_JS, type: 'text/javascript; charset=utf-8' },
  'style.css': { body: STYLE_CSS, type: 'text/css; charset=utf-8' },
};
const ASSET_VERSION = createHash('sha256').update(APP_JS).update(STYLE_CSS).digest('hex').slice(0, 10);
const MAX_FORM_BYTES = 16 * 1024;
const TAGS_PER_PAGE = 30;

class HttpProblem extends Error {
  constructor(readonly view: ErrorView) {
    super(view.message);
  }
}

function normaliseBase(base: string | undefined): string {
  if (!base || base === '/') return '';
  return `/${base.replace(/^\/+|\/+$/g, '')}`;
}

export function createUiHandler(opts: UiOptions): UiHandler {
  const base = normaliseBase(opts.basePath);
  const paths = new Paths(base);
  const sessions = new SessionStore(opts.sessions);
  const throttle = new LoginThrottle(opts.throttle);
  const pageSize = opts.pageSize ?? 50;
  const registryUrl = () => (typeof opts.registry === 'function' ? opts.registry() : opts.registry);
  const publicRegistry = (req: IncomingMessage | undefined) => {
    if (opts.publicRegistry) return opts.publicRegistry;
    const host = base ? forwardedHost(req) : undefined;
    return host ?? new URL(registryUrl()).host;
  };
  const cookieOpts = { path: paths.cookiePath(), secure: Boolean(opts.secureCookies) };
  const clientFor = (s: Pick<Session, 'user' | 'password'>) => new RegistryClient({ baseUrl: registryUrl(), credentials: { user: s.user, password: s.password } });

  const view = (session: Session | undefined, req?: IncomingMessage): ViewContext => ({
    paths,
    user: session?.user,
    csrf: session?.csrf,
    admin: isAdmin(session?.whoami),
    publicRegistry: publicRegistry(req),
    version: VERSION,
    assetVersion: ASSET_VERSION,
  });

  const send = (res: ServerResponse, status: number, body: string, type = 'text/html; charset=utf-8') => {
    res.statusCode = status;
    res.setHeader('Content-Type', type);
    res.setHeader('Content-Length', Buffer.byteLength(body));
    if (!res.hasHeader('Cache-Control')) res.setHeader('Cache-Control', 'no-store');
    res.end(body);
  };
  const redirect = (res: ServerResponse, location: string) => {
    res.statusCode = 303;
    res.setHeader('Location', location);
    res.setHeader('Cache-Control', 'no-store');
    res.end();
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    applySecurityHeaders(res);
    const url = new URL(req.url ?? '/', 'http://ui.invalid');
    let path = url.pathname;
    if (base && (path === base || path.startsWith(`${base}/`))) path = path.slice(base.length) || '/';
    const route = parseRoute(path);
    const method = req.method ?? 'GET';
    const cookieId = parseCookies(req.headers.cookie).get(SESSION_COOKIE);
    const lookup = sessions.lookup(cookieId);
    const session = lookup.session;

    if (route.page === 'healthz') return send(res, 200, '{"status":"ok"}\n', 'application/json');
    if (route.page === 'static') return serveAsset(req, res, route.file, url.searchParams.get('v'));
    if (method === 'POST' && !sameOrigin(req)) {
      return send(res, 403, errorPage(view(session, req), { status: 403, title: 'Request refused', message: 'This form was sent from another site.' }));
    }
    if (route.page === 'login') return method === 'POST' ? loginPost(req, res, url) : loginGet(req, res, url, session);
    if (route.page === 'logout') {
      if (method !== 'POST') return redirect(res, paths.repos());
      const form = await readForm(req);
      if (session && !tokensEqual(form.get('csrf') ?? '', session.csrf)) return send(res, 403, errorPage(view(session, req), csrfProblem()));
      if (session) sessions.end(session.id);
      res.setHeader('Set-Cookie', clearSessionCookie(cookieOpts));
      return redirect(res, paths.login({ reason: 'signedout' }));
    }
    if (!session) {
      if (route.page === 'unknown') return send(res, 404, errorPage(view(undefined, req), notFound('There is no page at this address.', paths)));
      if (cookieId) res.setHeader('Set-Cookie', clearSessionCookie(cookieOpts));
      const next = method === 'GET' ? `${base}${path}${url.search}` : undefined;
      return redirect(res, paths.login({ reason: lookup.expired ? 'expired' : undefined, next }));
    }
    try {
      await page(req, res, url, route, session, method);
    } catch (err) {
      if (err instanceof RegistryAuthError) {
        // The registry no longer accepts this user's password (rotated or removed): end all their sessions.
        sessions.endUser(session.user);
        res.setHeader('Set-Cookie', clearSessionCookie(cookieOpts));
        return redirect(res, paths.login({ reason: 'rotated', next: method === 'GET' ? `${base}${path}${url.search}` : undefined }));
      }
      const problem = toProblem(err, paths, registryUrl());
      if (problem.status >= 500 && !(err instanceof RegistryDownError)) opts.onError?.(err);
      send(res, problem.status, errorPage(view(session, req), problem));
    }
  }

  function serveAsset(req: IncomingMessage, res: ServerResponse, file: string, version: string | null): void {
    const asset = ASSETS[file];
    if (!asset) return send(res, 404, 'not found\n', 'text/plain; charset=utf-8');
    res.setHeader('Cache-Control', version === ASSET_VERSION ? 'public, max-age=31536000, immutable' : 'no-cache');
    res.setHeader('ETag', `"${ASSET_VERSION}"`);
    if (req.headers['if-none-match'] === `"${ASSET_VERSION}"`) {
      res.statusCode = 304;
      res.end();
      return;
    }
    send(res, 200, asset.body, asset.type);
  }

  function loginGet(req: IncomingMessage, res: ServerResponse, url: URL, session: Session | undefined): void {
    const next = paths.safeNext(url.searchParams.get('next'));
    if (session) return redirect(res, next);
    const reason = url.searchParams.get('reason');
    const flash =
      reason === 'expired'
        ? ({ kind: 'warn', title: 'Your session has expired.', text: ' Sign in again to continue.' } as const)
        : reason === 'rotated'
          ? ({ kind: 'warn', title: 'Your session has ended.', text: ' The registry no longer accepts your credentials (was the password changed?). Sign in again.' } as const)
          : reason === 'signedout'
            ? ({ kind: 'ok', title: 'You have signed out.' } as const)
            : undefined;
    send(res, 200, loginPage(view(undefined, req), { next, flash }));
  }

  async function loginPost(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const form = await readForm(req);
    const user = (form.get('username') ?? '').trim();
    const password = form.get('password') ?? '';
    const next = paths.safeNext(form.get('next') ?? url.searchParams.get('next'));
    const keys = [`user:${user.toLowerCase()}`, `ip:${clientAddress(req)}`];
    const wait = throttle.retryAfterMs(keys);
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      res.setHeader('Retry-After', String(seconds));
      return send(res, 429, loginPage(view(undefined, req), { next, user, flash: { kind: 'error', title: 'Too many failed sign-ins.', text: ` Wait ${seconds} second${seconds === 1 ? '' : 's'} and try again.` } }));
    }
    if (!user || !password) {
      return send(res, 400, loginPage(view(undefined, req), { next, user, flash: { kind: 'error', title: 'Enter your user name and password.' } }));
    }
    const client = clientFor({ user, password });
    try {
      await client.ping();
    } catch (err) {
      if (err instanceof RegistryAuthError) {
        throttle.fail(keys);
        return send(res, 401, loginPage(view(undefined, req), { next, user, flash: { kind: 'error', title: 'Wrong user name or password.', text: ' Check both and try again.' } }));
      }
      const problem = toProblem(err, paths, registryUrl());
      return send(res, problem.status, loginPage(view(undefined, req), { next, user, flash: { kind: 'error', title: problem.title, text: ` ${problem.message}` } }));
    }
    throttle.succeed(keys);
    let whoami: WhoAmI | undefined;
    try {
      whoami = await client.whoami();
    } catch (err) {
      if (!(err instanceof RegistryNotFoundError)) {
        const problem = toProblem(err, paths, registryUrl());
        return send(res, problem.status, loginPage(view(undefined, req), { next, user, flash: { kind: 'error', title: problem.title, text: ` ${problem.message}` } }));
      }
    }
    const session = sessions.create(user, password, whoami);
    res.setHeader('Set-Cookie', sessionCookie(session.id, cookieOpts));
    redirect(res, next);
  }

  async function page(req: IncomingMessage, res: ServerResponse, url: URL, route: Route, session: Session, method: string): Promise<void> {
    const data = new RegistryData(clientFor(session), session, opts.listPageSize);
    const ctx = view(session, req);
    const takeFlash = () => {
      const f = session.flash;
      session.flash = undefined;
      return f;
    };
    if (method !== 'GET' && method !== 'HEAD' && !(method === 'POST' && route.page === 'delete')) {
      res.setHeader('Allow', route.page === 'delete' ? 'GET, HEAD, POST' : 'GET, HEAD');
      throw new HttpProblem({ status: 405, title: 'Method not allowed', message: `${method} is not supported here.` });
    }
    switch (route.page) {
      case 'home':
        return redirect(res, paths.repos());
      case 'unknown':
        throw new HttpProblem(notFound('There is no page at this address.', paths));
      case 'invalid':
        throw new HttpProblem({ status: 404, title: 'Not found', message: `${route.what}.` });
      case 'repos': {
        const names = await data.catalog();
        const query = (url.searchParams.get('q') ?? '').trim().slice(0, 200);
        const { key: sort, descending } = parseSort(url.searchParams.get('sort'));
        const filtered = query ? names.filter((n) => matchesQuery(n, query)) : [...names];
        const pageNo = Number(url.searchParams.get('page') ?? '1');
        let ordered: string[];
        if (sort === 'name') {
          ordered = filtered.sort();
          if (descending) ordered.reverse();
        } else {
          // Sorting by tag count needs only tag lists; by size or date it needs every repository's details.
          const all = await data.summaries(filtered, sort === 'tags' ? new Set() : 'all');
          ordered = sortSummaries([...all.values()], sort, descending).map((r) => r.name);
        }
        const meta = paginate(ordered, pageNo, pageSize);
        const summaries = await data.summaries(meta.items, new Set(meta.items));
        const rows = meta.items.map((n) => summaries.get(n) ?? { name: n, tags: undefined, size: undefined, updated: undefined });
        return send(res, 200, reposPage(ctx, { rows, total: names.length, matched: meta.total, page: meta.page, pages: meta.pages, perPage: pageSize, query, sort, descending, pushTimes: isAdmin(session.whoami), flash: takeFlash() }));
      }
      case 'repo': {
        const tags = await data.tags(route.name).catch((err: unknown) => {
          if (err instanceof RegistryNotFoundError) throw new HttpProblem(notFound(`The repository “${route.name}” does not exist (or you may not see it).`, paths));
          throw err;
        });
        tags.sort(compareTags);
        const meta = paginate(tags, Number(url.searchParams.get('page') ?? '1'), TAGS_PER_PAGE);
        const rows = await data.tagInfos(route.name, meta.items);
        return send(res, 200, repoPage(ctx, { name: route.name, rows, totalTags: tags.length, page: meta.page, pages: meta.pages, perPage: TAGS_PER_PAGE, canDelete: can(session.whoami, 'delete', route.name), flash: takeFlash() }));
      }
      case 'image': {
        const details = await imageDetails(data, route.name, route.reference).catch((err: unknown) => {
          if (err instanceof RegistryNotFoundError) throw new HttpProblem(unknownReference(route.name, route.reference, paths));
          throw err;
        });
        return send(res, 200, imagePage(ctx, details));
      }
      case 'delete': {
        if (!can(session.whoami, 'delete', route.name)) {
          throw new HttpProblem({ status: 403, title: 'Not allowed', message: `You may not delete tags in ${route.name}.`, links: [{ href: paths.repo(route.name), label: `Back to ${route.name}` }] });
        }
        if (method === 'POST') {
          const form = await readForm(req);
          if (!tokensEqual(form.get('csrf') ?? '', session.csrf)) throw new HttpProblem(csrfProblem());
          await data.client.deleteTag(route.name, route.tag).catch((err: unknown) => {
            if (err instanceof RegistryNotFoundError) throw new HttpProblem(unknownReference(route.name, route.tag, paths));
            throw err;
          });
          data.invalidateRepository(route.name);
          session.flash = { kind: 'ok', title: `Deleted tag ${route.tag}.`, text: ' Other tags are unchanged.' };
          return redirect(res, paths.repo(route.name));
        }
        const preview = await deletePreview(data, route.name, route.tag, isAdmin(session.whoami)).catch((err: unknown) => {
          if (err instanceof RegistryNotFoundError) throw new HttpProblem(unknownReference(route.name, route.tag, paths));
          throw err;
        });
        return send(res, 200, deletePage(ctx, preview));
      }
      case 'storage': {
        if (!session.whoami) {
          throw new HttpProblem({ status: 404, title: 'Not available', message: 'The storage report needs the admin API of regctl’s registry, which this registry does not have.' });
        }
        if (!isAdmin(session.whoami)) {
          throw new HttpProblem({ status: 403, title: 'Administrators only', message: 'The storage report needs an administrator account on the registry.' });
        }
        const usage = await data.usage();
        return send(res, 200, storagePage(ctx, usage));
      }
      default:
        throw new HttpProblem(notFound('There is no page at this address.', paths));
    }
  }

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        opts.onError?.(err);
        res.destroy();
        return;
      }
      const problem = toProblem(err, paths, registryUrl());
      if (problem.status >= 500) opts.onError?.(err);
      if (err instanceof FormTooLarge) res.setHeader('Connection', 'close');
      send(res, problem.status, errorPage(view(undefined, req), problem));
    });
  };
  return Object.assign(handler, { sessions });
}

function notFound(message: string, paths: Paths): ErrorView {
  return { status: 404, title: 'Not found', message, links: [{ href: paths.repos(), label: 'All repositories' }] };
}

function unknownReference(name: string, reference: string, paths: Paths): ErrorView {
  const what = reference.includes(':') ? `The image ${reference}` : `The tag “${reference}”`;
  return { status: 404, title: 'Not found', message: `${what} does not exist in ${name}.`, links: [{ href: paths.repo(name), label: `Tags of ${name}` }, { href: paths.repos(), label: 'All repositories' }] };
}

function csrfProblem(): ErrorView {
  return { status: 403, title: 'Request refused', message: 'The form was out of date or not sent by this page. Reload the page and try again.' };
}

/** Maps any error to what a user should read: never a stack trace. */
export function toProblem(err: unknown, paths: Paths, registry: string): ErrorView {
  if (err instanceof HttpProblem) return err.view;
  if (err instanceof RegistryDownError) {
    return { status: 502, title: 'Registry unavailable', message: `The registry at ${new URL(registry).host} is not answering (${err.message}). Try again in a moment.`, links: [{ href: paths.repos(), label: 'Try again' }] };
  }
  if (err instanceof RegistryDeniedError) return { status: 403, title: 'Not allowed', message: `The registry refused: ${err.message}.` };
  if (err instanceof RegistryNotFoundError) return notFound(err.message, paths);
  if (err instanceof RegistryError) return { status: 502, title: 'Registry error', message: err.message };
  if (err instanceof FormTooLarge) return { status: 413, title: 'Request too large', message: 'The form sent was too large.' };
  return { status: 500, title: 'Something went wrong', message: 'The UI could not show this page. Try again in a moment.' };
}

class FormTooLarge extends Error {}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_FORM_BYTES) throw new FormTooLarge('form too large');
    chunks.push(buf);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** The host the browser asked for (behind a proxy, the one it forwarded), if it looks like a host. */
function forwardedHost(req: IncomingMessage | undefined): string | undefined {
  const raw = (req?.headers['x-forwarded-host'] as string | undefined)?.split(',')[0]?.trim() ?? req?.headers.host;
  return raw && /^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/.test(raw) ? raw : undefined;
}

/** Browsers send Origin on POST; when present it must name this host (a second line of defence behind CSRF tokens). */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  if (origin === 'null') return false;
  const host = (req.headers['x-forwarded-host'] as string | undefined)?.split(',')[0]?.trim() ?? req.headers.host;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

/** The client's address: the hop the nearest proxy (Traefik) appended to X-Forwarded-For, else the socket's. */
function clientAddress(req: IncomingMessage): string {
  const xff = req.headers['x-forwarded-for'];
  const list = (Array.isArray(xff) ? xff.join(',') : (xff ?? '')).split(',').map((s) => s.trim()).filter(Boolean);
  return list.at(-1) ?? req.socket.remoteAddress ?? 'unknown';
}

/** "latest" first, then newest-looking versions first (natural order, descending). */
export function compareTags(a: string, b: string): number {
  if (a === b) return 0;
  if (a === 'latest') return -1;
  if (b === 'latest') return 1;
  return b.localeCompare(a, 'en', { numeric: true });
}

export interface UiServer {
  listen(): Promise<{ port: number; url: string }>;
  close(): Promise<void>;
  readonly server: Server;
  readonly handler: UiHandler;
}

export function createUiServer(opts: UiOptions & { host?: string; port?: number }): UiServer {
  const handler = createUiHandler(opts);
  const server = createServer(handler);
  server.headersTimeout = 30_000;
  server.requestTimeout = 60_000;
  return {
    server,
    handler,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port ?? 8080, opts.host ?? '127.0.0.1', () => {
          server.off('error', reject);
          const addr = server.address() as AddressInfo;
          const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
          resolve({ port: addr.port, url: `http://${host}:${addr.port}${normaliseBase(opts.basePath)}/` });
        });
      }),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
