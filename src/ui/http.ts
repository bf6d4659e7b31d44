/**
 * The request plumbing every UI route shares, in one place: security headers, the session lookup, the
 * same-origin and CSRF checks on forms, the rule that pages need a signed-in session, allowed methods, and the
 * mapping of any error to an error page a user can read (never a stack trace).
 *
 * Routes are a table (`RouteTable`, filled in routes/index.ts) with one entry per page of `parseRoute`; an
 * entry says how the page is reached (`access`) and handles one exchange.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { UiApp } from './app.js';
import { RegistryData } from './data.js';
import { parseRoute, type Paths, type Route } from './paths.js';
import {
  RegistryAuthError,
  RegistryDeniedError,
  RegistryDownError,
  RegistryError,
  RegistryNotFoundError,
} from './registry-client.js';
import { applySecurityHeaders, clearSessionCookie, parseCookies, SESSION_COOKIE } from './security.js';
import { tokensEqual, type Notice, type Session } from './sessions.js';
import { errorPage, type ErrorView } from './views/error.js';
import type { ViewContext } from './views/layout.js';

const MAX_FORM_BYTES = 16 * 1024;

export type Page = Route['page'];
export type RouteOf<P extends Page> = Extract<Route, { page: P }>;

/** One request as a route sees it. */
export interface Exchange<R extends Route = Route> {
  readonly app: UiApp;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  /** The path below the mount point (starts with `/`). */
  readonly path: string;
  readonly route: R;
  readonly method: string;
  readonly session: Session | undefined;
}

/** A request to a page that needs a session: the session, its view of the registry and the page frame. */
export interface PageExchange<R extends Route = Route> extends Exchange<R> {
  readonly session: Session;
  readonly data: RegistryData;
  readonly view: ViewContext;
}

type Handler<X> = (x: X) => void | Promise<void>;

/**
 * How a page is reached:
 * - `open`: answered first, for any method and without a session (the health check, static files);
 * - `public`: sign-in and sign-out, with or without a session; a POST must come from this site;
 * - `session`: needs a signed-in session, else the browser goes to sign-in (or, with `signedOut: 'not-found'`,
 *   gets a 404; with `signedOut: 'public'`, the page is drawn for a signed-out visitor when the registry lists its
 *   public repositories to anyone, see public-browsing.ts); GET and HEAD, and POST from this site when `post` is
 *   set; other methods get 405.
 */
export type RouteEntry<R extends Route> =
  | { readonly access: 'open'; readonly handle: Handler<Exchange<R>> }
  | { readonly access: 'public'; readonly handle: Handler<Exchange<R>> }
  | {
      readonly access: 'session';
      readonly post?: boolean;
      readonly signedOut?: 'not-found' | 'public';
      readonly handle: Handler<PageExchange<R>>;
    };

export type RouteTable = { readonly [P in Page]: RouteEntry<RouteOf<P>> };

/** A problem to show as an error page with its status: what route handlers throw. */
export class HttpProblem extends Error {
  constructor(readonly view: ErrorView) {
    super(view.message);
  }
}

export class FormTooLarge extends Error {}

/** The Node request handler for a route table. */
export function requestHandler(app: UiApp, routes: RouteTable): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    dispatch(app, routes, req, res).catch((err: unknown) => {
      if (res.headersSent) {
        app.onError(err);
        res.destroy();
        return;
      }
      const problem = toProblem(err, app.paths, app.registryUrl());
      if (problem.status >= 500) app.onError(err);
      if (err instanceof FormTooLarge) res.setHeader('Connection', 'close');
      send(res, problem.status, errorPage(app.view(undefined, req), problem));
    });
  };
}

async function dispatch(app: UiApp, routes: RouteTable, req: IncomingMessage, res: ServerResponse): Promise<void> {
  applySecurityHeaders(res);
  const url = new URL(req.url ?? '/', 'http://ui.invalid');
  let path = url.pathname;
  if (app.base && (path === app.base || path.startsWith(`${app.base}/`))) path = path.slice(app.base.length) || '/';
  const route = parseRoute(path);
  const method = req.method ?? 'GET';
  const cookieId = parseCookies(req.headers.cookie).get(SESSION_COOKIE);
  const lookup = app.sessions.lookup(cookieId);
  const session = lookup.session;
  const entry = routes[route.page] as RouteEntry<Route>;
  const exchange: Exchange = { app, req, res, url, path, route, method, session };

  if (entry.access === 'open') return entry.handle(exchange);
  if (method === 'POST' && !sameOrigin(req)) {
    return send(
      res,
      403,
      errorPage(app.view(session, req), {
        status: 403,
        title: 'Request refused',
        message: 'This form was sent from another site.',
      }),
    );
  }
  if (entry.access === 'public') return entry.handle(exchange);
  const here = method === 'GET' ? `${app.base}${path}${url.search}` : undefined;
  if (!session) {
    if (entry.signedOut === 'public' && (method === 'GET' || method === 'HEAD') && (await app.publicBrowsing.open()))
      return browsePublic(app, { ...exchange, entry }, here);
    if (entry.signedOut === 'not-found')
      return send(
        res,
        404,
        errorPage(app.view(undefined, req), notFound('There is no page at this address.', app.paths)),
      );
    if (cookieId) res.setHeader('Set-Cookie', clearSessionCookie(app.cookie));
    return redirect(res, app.paths.login({ reason: lookup.expired ? 'expired' : undefined, next: here }));
  }
  try {
    if (method !== 'GET' && method !== 'HEAD' && !(method === 'POST' && entry.post)) {
      res.setHeader('Allow', entry.post ? 'GET, HEAD, POST' : 'GET, HEAD');
      throw new HttpProblem({ status: 405, title: 'Method not allowed', message: `${method} is not supported here.` });
    }
    const data = new RegistryData(app.clientFor(session), session, app.listPageSize);
    await entry.handle({ ...exchange, session, data, view: app.view(session, req) });
  } catch (err) {
    if (err instanceof RegistryAuthError) {
      // The registry no longer accepts this user's password (rotated or removed): end all their sessions.
      app.sessions.endUser(session.user);
      res.setHeader('Set-Cookie', clearSessionCookie(app.cookie));
      return redirect(res, app.paths.login({ reason: 'rotated', next: here }));
    }
    const problem = toProblem(err, app.paths, app.registryUrl());
    if (problem.status >= 500 && !(err instanceof RegistryDownError)) app.onError(err);
    send(res, problem.status, errorPage(app.view(session, req), problem));
  }
}

/** A page drawn for a signed-out visitor from the public repositories; what the registry refuses asks for sign-in. */
async function browsePublic(
  app: UiApp,
  x: Exchange & { entry: Extract<RouteEntry<Route>, { access: 'session' }> },
  here: string | undefined,
): Promise<void> {
  const { session, client } = app.publicBrowsing;
  try {
    const data = new RegistryData(client, session, app.listPageSize);
    await x.entry.handle({ ...x, session, data, view: app.view(undefined, x.req) });
  } catch (err) {
    if (err instanceof RegistryAuthError) return redirect(x.res, app.paths.login({ next: here }));
    const problem = toProblem(err, app.paths, app.registryUrl());
    if (problem.status >= 500 && !(err instanceof RegistryDownError)) app.onError(err);
    send(x.res, problem.status, errorPage(app.view(undefined, x.req), problem));
  }
}

export function send(res: ServerResponse, status: number, body: string, type = 'text/html; charset=utf-8'): void {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  if (!res.hasHeader('Cache-Control')) res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

/** 303 See Other: after a form, the browser GETs `location`. */
export function redirect(res: ServerResponse, location: string): void {
  res.statusCode = 303;
  res.setHeader('Location', location);
  res.setHeader('Cache-Control', 'no-store');
  res.end();
}

/** The urlencoded form a POST carries, up to 16 KiB (`FormTooLarge` beyond). */
export async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
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

/** Whether a form carries the session's CSRF token (compared in constant time). */
export function csrfMatches(form: URLSearchParams, session: Session): boolean {
  return tokensEqual(form.get('csrf') ?? '', session.csrf);
}

/** The session's one-time notice, if any, removed so that it shows once. */
export function takeFlash(session: Session): Notice | undefined {
  const flash = session.flash;
  session.flash = undefined;
  return flash;
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

export function notFound(message: string, paths: Paths): ErrorView {
  return { status: 404, title: 'Not found', message, links: [{ href: paths.repos(), label: 'All repositories' }] };
}

export function unknownReference(name: string, reference: string, paths: Paths): ErrorView {
  const what = reference.includes(':') ? `The image ${reference}` : `The tag “${reference}”`;
  return {
    status: 404,
    title: 'Not found',
    message: `${what} does not exist in ${name}.`,
    links: [
      { href: paths.repo(name), label: `Tags of ${name}` },
      { href: paths.repos(), label: 'All repositories' },
    ],
  };
}

export function csrfProblem(): ErrorView {
  return {
    status: 403,
    title: 'Request refused',
    message: 'The form was out of date or not sent by this page. Reload the page and try again.',
  };
}

/** Maps any error to what a user should read: never a stack trace. */
export function toProblem(err: unknown, paths: Paths, registry: string): ErrorView {
  if (err instanceof HttpProblem) return err.view;
  if (err instanceof RegistryDownError) {
    return {
      status: 502,
      title: 'Registry unavailable',
      message: `The registry at ${new URL(registry).host} is not answering (${err.message}). Try again in a moment.`,
      links: [{ href: paths.repos(), label: 'Try again' }],
    };
  }
  if (err instanceof RegistryDeniedError)
    return { status: 403, title: 'Not allowed', message: `The registry refused: ${err.message}.` };
  if (err instanceof RegistryNotFoundError) return notFound(err.message, paths);
  if (err instanceof RegistryError) return { status: 502, title: 'Registry error', message: err.message };
  if (err instanceof FormTooLarge)
    return { status: 413, title: 'Request too large', message: 'The form sent was too large.' };
  return {
    status: 500,
    title: 'Something went wrong',
    message: 'The UI could not show this page. Try again in a moment.',
  };
}
