/**
 * `/login` (GET: the form, POST: sign in) and `/logout` (POST). Signing in checks the password against the
 * registry itself (`GET /v2/`), throttles failures per user name and per client address, and keeps the
 * registry's `whoami` (absent when the registry has no admin API) in the new session.
 */
import { clientAddress } from '../../common/client-address.js';
import type { WhoAmI } from '../../common/admin-api.js';
import {
  csrfMatches,
  csrfProblem,
  readForm,
  redirect,
  send,
  toProblem,
  type Exchange,
  type RouteEntry,
  type RouteOf,
} from '../http.js';
import { RegistryAuthError, RegistryNotFoundError } from '../registry-client.js';
import { clearSessionCookie, sessionCookie } from '../security.js';
import type { Notice } from '../sessions.js';
import { errorPage } from '../views/error.js';
import { loginPage } from '../views/login.js';

export const login: RouteEntry<RouteOf<'login'>> = {
  access: 'public',
  handle: (x) => (x.method === 'POST' ? signIn(x) : signInForm(x)),
};

export const logout: RouteEntry<RouteOf<'logout'>> = {
  access: 'public',
  handle: async ({ app, req, res, method, session }) => {
    if (method !== 'POST') return redirect(res, app.paths.repos());
    const form = await readForm(req);
    if (session && !csrfMatches(form, session)) return send(res, 403, errorPage(app.view(session, req), csrfProblem()));
    if (session) app.sessions.end(session.id);
    res.setHeader('Set-Cookie', clearSessionCookie(app.cookie));
    redirect(res, app.paths.login({ reason: 'signedout' }));
  },
};

/** What the sign-in form says after a redirect with `?reason=`. */
const REASONS: ReadonlyMap<string, Notice> = new Map([
  ['expired', { kind: 'warn', title: 'Your session has expired.', text: ' Sign in again to continue.' }],
  [
    'rotated',
    {
      kind: 'warn',
      title: 'Your session has ended.',
      text: ' The registry no longer accepts your credentials (was the password changed?). Sign in again.',
    },
  ],
  ['signedout', { kind: 'ok', title: 'You have signed out.' }],
]);

function signInForm({ app, req, res, url, session }: Exchange): void {
  const next = app.paths.safeNext(url.searchParams.get('next'));
  if (session) return redirect(res, next);
  const flash = REASONS.get(url.searchParams.get('reason') ?? '');
  send(res, 200, loginPage(app.view(undefined, req), { next, flash }));
}

async function signIn({ app, req, res, url }: Exchange): Promise<void> {
  const form = await readForm(req);
  const user = (form.get('username') ?? '').trim();
  const password = form.get('password') ?? '';
  const next = app.paths.safeNext(form.get('next') ?? url.searchParams.get('next'));
  const refuse = (status: number, flash: Notice) =>
    send(res, status, loginPage(app.view(undefined, req), { next, user, flash }));
  const registryProblem = (err: unknown) => {
    const problem = toProblem(err, app.paths, app.registryUrl());
    refuse(problem.status, { kind: 'error', title: problem.title, text: ` ${problem.message}` });
  };
  const keys = [`user:${user.toLowerCase()}`, `ip:${clientAddress(req, app.trustedProxies)}`];
  const wait = app.throttle.retryAfterMs(keys);
  if (wait > 0) {
    const seconds = Math.ceil(wait / 1000);
    res.setHeader('Retry-After', String(seconds));
    return refuse(429, {
      kind: 'error',
      title: 'Too many failed sign-ins.',
      text: ` Wait ${seconds} second${seconds === 1 ? '' : 's'} and try again.`,
    });
  }
  if (!user || !password) return refuse(400, { kind: 'error', title: 'Enter your user name and password.' });
  const client = app.clientFor({ user, password });
  try {
    await client.ping();
  } catch (err) {
    if (!(err instanceof RegistryAuthError)) return registryProblem(err);
    app.throttle.fail(keys);
    return refuse(401, { kind: 'error', title: 'Wrong user name or password.', text: ' Check both and try again.' });
  }
  app.throttle.succeed(keys);
  let whoami: WhoAmI | undefined;
  try {
    whoami = await client.whoami();
  } catch (err) {
    if (!(err instanceof RegistryNotFoundError)) return registryProblem(err);
  }
  const session = app.sessions.create(user, password, whoami);
  res.setHeader('Set-Cookie', sessionCookie(session.id, app.cookie));
  redirect(res, next);
}
