/**
 * The UI's URL space, relative to its mount point (`/` or `/ui/`). Repository names may contain slashes, so
 * the segment `/-/` (never a valid name component) separates a name from what follows it:
 *   /repos                           list (q, sort, dir, page)
 *   /r/<name>                        a repository's tags (page)
 *   /r/<name>/-/image/<reference>    an image, index or artifact, by tag or digest
 *   /r/<name>/-/delete/<tag>         GET: preview, POST: delete
 *   /storage                         usage (admins)
 *   /robots                          robot accounts (admins)
 *   /events                          the webhook delivery log (admins)
 *   /login, /logout, /healthz, /static/app.js, /static/style.css
 */

const NAME_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
export const NAME_RE = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
export const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
export const DIGEST_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export function isValidName(name: string): boolean {
  return name.length <= 255 && NAME_RE.test(name);
}
export function isValidReference(ref: string): boolean {
  return TAG_RE.test(ref) || DIGEST_RE.test(ref);
}

export type Route =
  | { page: 'home' }
  | { page: 'repos' }
  | { page: 'repo'; name: string }
  | { page: 'image'; name: string; reference: string }
  | { page: 'delete'; name: string; tag: string }
  | { page: 'storage' }
  | { page: 'robots' }
  | { page: 'events' }
  | { page: 'login' }
  | { page: 'logout' }
  | { page: 'healthz' }
  | { page: 'static'; file: string }
  | { page: 'invalid'; what: string }
  | { page: 'unknown' };

/** Parses a path already relative to the mount point (starts with `/`, no query). */
export function parseRoute(path: string): Route {
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return { page: 'unknown' };
  }
  if (decoded === '/' || decoded === '') return { page: 'home' };
  if (decoded === '/repos' || decoded === '/repos/') return { page: 'repos' };
  if (decoded === '/storage') return { page: 'storage' };
  if (decoded === '/robots') return { page: 'robots' };
  if (decoded === '/events') return { page: 'events' };
  if (decoded === '/login') return { page: 'login' };
  if (decoded === '/logout') return { page: 'logout' };
  if (decoded === '/healthz') return { page: 'healthz' };
  if (decoded.startsWith('/static/')) return { page: 'static', file: decoded.slice('/static/'.length) };
  if (!decoded.startsWith('/r/')) return { page: 'unknown' };
  const rest = decoded.slice(3).replace(/\/$/, '');
  const sep = rest.indexOf('/-/');
  const name = sep < 0 ? rest : rest.slice(0, sep);
  if (!isValidName(name)) return { page: 'invalid', what: `"${name}" is not a valid repository name` };
  if (sep < 0) return { page: 'repo', name };
  const [action, reference, ...extra] = rest.slice(sep + 3).split('/');
  if (!reference || extra.length > 0) return { page: 'unknown' };
  if (action === 'image') {
    if (!isValidReference(reference)) return { page: 'invalid', what: `"${reference}" is not a valid tag or digest` };
    return { page: 'image', name, reference };
  }
  if (action === 'delete') {
    if (!TAG_RE.test(reference)) return { page: 'invalid', what: `"${reference}" is not a valid tag` };
    return { page: 'delete', name, tag: reference };
  }
  return { page: 'unknown' };
}

/** Builds links; `base` is the mount point without a trailing slash ('' or '/ui'). */
export class Paths {
  constructor(readonly base: string) {}
  private p(path: string): string {
    return `${this.base}${path}`;
  }
  home(): string {
    return this.p('/');
  }
  repos(query: Record<string, string | number | undefined> = {}): string {
    return this.p(`/repos${queryString(query)}`);
  }
  repo(name: string, query: Record<string, string | number | undefined> = {}): string {
    return this.p(`/r/${encodeName(name)}${queryString(query)}`);
  }
  image(name: string, reference: string): string {
    return this.p(`/r/${encodeName(name)}/-/image/${encodeURIComponent(reference)}`);
  }
  delete(name: string, tag: string): string {
    return this.p(`/r/${encodeName(name)}/-/delete/${encodeURIComponent(tag)}`);
  }
  storage(): string {
    return this.p('/storage');
  }
  robots(): string {
    return this.p('/robots');
  }

  events(): string {
    return this.p('/events');
  }

  login(query: Record<string, string | number | undefined> = {}): string {
    return this.p(`/login${queryString(query)}`);
  }
  logout(): string {
    return this.p('/logout');
  }
  asset(file: string): string {
    return this.p(`/static/${file}`);
  }
  /** The cookie path: the mount point itself, so the cookie never reaches the registry's own API. */
  cookiePath(): string {
    return this.base === '' ? '/' : `${this.base}/`;
  }
  /** Accepts a post-login target only if it is a path inside this UI (no open redirect). */
  safeNext(next: string | null | undefined): string {
    if (!next || !next.startsWith('/') || next.startsWith('//') || next.includes('\\')) return this.repos();
    if (this.base && !(next === this.base || next.startsWith(`${this.base}/`))) return this.repos();
    if (next.startsWith(this.p('/login')) || next.startsWith(this.p('/logout'))) return this.repos();
    return next;
  }
}

function encodeName(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

function queryString(query: Record<string, string | number | undefined>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : '';
}
