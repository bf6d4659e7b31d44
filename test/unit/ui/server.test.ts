import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUiServer, type UiServer } from '../../../src/ui/server.js';
import { TrustedProxies } from '../../../src/common/client-address.js';
import { startTestRegistry, type TestRegistry } from './registry-helper.js';

const HEADERS = ['content-security-policy', 'x-frame-options', 'x-content-type-options', 'referrer-policy'];

describe('UI server over a real socket, against our registry', () => {
  let reg: TestRegistry;
  let ui: UiServer;
  let base: string;
  let secure: UiServer;
  let secureBase: string;

  const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
  const post = (path: string, fields: Record<string, string>, headers: Record<string, string> = {}, at = base) =>
    fetch(`${at}${path}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
      body: form(fields),
    });
  const cookieOf = (res: Response) => res.headers.get('set-cookie')?.split(';')[0] ?? '';
  async function signIn(at = base, user = reg.user, password = reg.password): Promise<string> {
    const res = await post('login', { username: user, password, next: '' }, {}, at);
    expect(res.status).toBe(303);
    return cookieOf(res);
  }

  beforeAll(async () => {
    reg = await startTestRegistry();
    await reg.pushImage('team/web', 'v1');
    await reg.pushImage('odd/config', 'v1', undefined, Buffer.from('not json at all'));
    ui = createUiServer({ registry: reg.url, port: 0, throttle: { freeAttempts: 3, baseDelayMs: 60_000 } });
    base = (await ui.listen()).url;
    secure = createUiServer({ registry: reg.url, port: 0, secureCookies: true, basePath: '/ui/' });
    secureBase = (await secure.listen()).url;
  });
  afterAll(async () => {
    await ui?.close();
    await secure?.close();
    await reg?.close();
  });

  it('sends the security headers on every kind of response', async () => {
    for (const path of ['login', 'repos', 'static/app.js', 'static/style.css', 'healthz', 'no/such/page', 'r/Bad']) {
      const res = await fetch(`${base}${path}`, { redirect: 'manual' });
      for (const h of HEADERS) expect(res.headers.get(h), `${h} on ${path}`).toBeTruthy();
      expect(res.headers.get('content-security-policy')).toMatch(
        /default-src 'none'.*script-src 'self'.*frame-ancestors 'none'/,
      );
      expect(res.headers.get('content-security-policy')).not.toContain('unsafe-inline');
    }
  });

  it('answers /healthz without a session and serves its assets with types and caching', async () => {
    const health = await fetch(`${base}healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const js = await fetch(`${base}static/app.js`);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('cache-control')).toBe('no-cache');
    const page = await (await fetch(`${base}login`)).text();
    const versioned = /src="([^"]+app\.js\?v=[0-9a-f]+)"/.exec(page)?.[1];
    expect(versioned).toBeDefined();
    const cached = await fetch(new URL(versioned!, base));
    expect(cached.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect((await fetch(`${base}static/nope.js`)).status).toBe(404);
  });

  it('keeps pages free of inline script and inline style', async () => {
    const cookie = await signIn();
    for (const path of ['login', 'repos', 'r/team/web', 'r/team/web/-/image/v1', 'r/team/web/-/delete/v1', 'storage']) {
      const text = await (await fetch(`${base}${path}`, { headers: { Cookie: cookie } })).text();
      expect(text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(text).not.toMatch(/\sstyle="/);
      expect(text).not.toMatch(/\son[a-z]+="/);
    }
  });

  it('redirects pages to sign-in, but says 404 for addresses that are no page', async () => {
    const res = await fetch(`${base}r/team/web?page=2`, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/login?next=%2Fr%2Fteam%2Fweb%3Fpage%3D2');
    expect((await fetch(`${base}wp-admin`, { redirect: 'manual' })).status).toBe(404);
  });

  it('sets an httpOnly SameSite=Strict session cookie, Secure and scoped to the mount point when asked', async () => {
    const res = await post('login', { username: reg.user, password: reg.password });
    expect(res.headers.get('set-cookie')).toMatch(
      /^regctl_ui_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict$/,
    );
    const s = await post(
      'ui/login',
      { username: reg.user, password: reg.password },
      {},
      secureBase.replace(/ui\/$/, ''),
    );
    expect(s.headers.get('set-cookie')).toMatch(/; Path=\/ui\/; HttpOnly; SameSite=Strict; Secure$/);
    expect(s.headers.get('location')).toBe('/ui/repos');
  });

  it('never redirects off-site after sign-in', async () => {
    const res = await post('login', { username: reg.user, password: reg.password, next: '//evil.example.com/' });
    expect(res.headers.get('location')).toBe('/repos');
  });

  it('refuses POSTs from another origin', async () => {
    const res = await post(
      'login',
      { username: reg.user, password: reg.password },
      { Origin: 'https://evil.example.com' },
    );
    expect(res.status).toBe(403);
    expect(res.headers.get('set-cookie')).toBeNull();
  });

  it('refuses sign-out and delete without the session’s CSRF token', async () => {
    const cookie = await signIn();
    expect((await post('logout', { csrf: 'forged' }, { Cookie: cookie })).status).toBe(403);
    expect((await post('r/team/web/-/delete/v1', { csrf: '' }, { Cookie: cookie })).status).toBe(403);
    const still = await fetch(`${base}r/team/web`, { headers: { Cookie: cookie }, redirect: 'manual' });
    expect(still.status).toBe(200);
    expect(await still.text()).toContain('data-tag="v1"');
  });

  it('signs out with the token, and the old cookie no longer works', async () => {
    const cookie = await signIn();
    const page = await (await fetch(`${base}repos`, { headers: { Cookie: cookie } })).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(page)?.[1] ?? '';
    const out = await post('logout', { csrf }, { Cookie: cookie });
    expect(out.status).toBe(303);
    expect(out.headers.get('location')).toBe('/login?reason=signedout');
    expect(out.headers.get('set-cookie')).toContain('Max-Age=0');
    const after = await fetch(`${base}repos`, { headers: { Cookie: cookie }, redirect: 'manual' });
    expect(after.headers.get('location')).toBe('/login?reason=expired&next=%2Frepos');
  });

  it('answers unsupported methods with 405 and an Allow header', async () => {
    const cookie = await signIn();
    const res = await fetch(`${base}repos`, { method: 'PUT', headers: { Cookie: cookie } });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
    const del = await fetch(`${base}r/team/app/-/delete/v1`, { method: 'PUT', headers: { Cookie: cookie } });
    expect(del.status).toBe(405);
    expect(del.headers.get('allow')).toBe('GET, HEAD, POST');
  });

  it('shows an image whose config blob is not JSON, without its config', async () => {
    const cookie = await signIn();
    const repo = await fetch(`${base}r/odd/config`, { headers: { Cookie: cookie } });
    expect(repo.status).toBe(200);
    const image = await fetch(`${base}r/odd/config/-/image/v1`, { headers: { Cookie: cookie } });
    expect(image.status).toBe(200);
    const text = await image.text();
    expect(text).toContain('odd/config:v1');
    expect(text).not.toContain('Configuration');
  });

  it('throttles repeated failed sign-ins, even when the right password follows', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await post('login', { username: 'someone', password: `wrong-${i}` });
      expect(res.status).toBe(401);
      expect(await res.text()).toContain('Wrong user name or password.');
    }
    const locked = await post('login', { username: 'someone', password: 'wrong-again' });
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(50);
    expect(await locked.text()).toContain('Too many failed sign-ins.');
    // the same client address is throttled for every user name
    expect((await post('login', { username: reg.user, password: reg.password })).status).toBe(429);
  });

  it('rejects oversized forms with a message', async () => {
    const res = await post(
      'login',
      { username: 'x', password: 'y'.repeat(20_000) },
      { 'X-Forwarded-For': '192.0.2.9' },
    );
    expect(res.status).toBe(413);
    expect(await res.text()).toContain('Request too large');
  });
});

describe('UI sign-in throttle and forwarding headers', () => {
  let reg: TestRegistry;
  const servers: UiServer[] = [];
  const start = async (trusted?: string[]) => {
    const ui = createUiServer({
      registry: reg.url,
      port: 0,
      throttle: { freeAttempts: 3, baseDelayMs: 60_000 },
      ...(trusted ? { trustedProxies: new TrustedProxies(trusted) } : {}),
    });
    servers.push(ui);
    return (await ui.listen()).url;
  };
  const attempt = (at: string, i: number, forwardedFor: string) =>
    fetch(`${at}login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Forwarded-For': forwardedFor },
      body: new URLSearchParams({ username: `user-${i}`, password: `guess-${i}` }).toString(),
    });

  beforeAll(async () => {
    reg = await startTestRegistry();
  });
  afterAll(async () => {
    for (const s of servers) await s.close();
    await reg?.close();
  });

  it('ignores X-Forwarded-For from a peer that is no trusted proxy: a new address per guess is still throttled', async () => {
    const at = await start();
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await attempt(at, i, `198.51.100.${i + 1}`)).status);
    expect(statuses).toEqual([401, 401, 401, 429, 429, 429]);
  });

  it('behind a trusted proxy, counts each forwarded client apart', async () => {
    const at = await start(['127.0.0.1/32', '::1/128']);
    for (let i = 0; i < 3; i++) expect((await attempt(at, i, '203.0.113.7')).status).toBe(401);
    expect((await attempt(at, 3, '203.0.113.7')).status).toBe(429);
    // Another client behind the same proxy, and one whose forged left part names the throttled one.
    expect((await attempt(at, 4, '203.0.113.8')).status).toBe(401);
    expect((await attempt(at, 5, '203.0.113.7, 203.0.113.9')).status).toBe(401);
  });
});
