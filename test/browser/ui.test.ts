/**
 * The web UI in a real browser (Debian's Chromium via playwright-core) against our real registry, holding real
 * images pushed by skopeo. Saves the screenshots under docs/screenshots/.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { launchChromium } from '../helpers/browser.js';
import { peerAvailable } from '../helpers/peers.js';
import { createUiServer, type UiServer } from '../../src/ui/server.js';
import { startRegistryWithImages, type Account, type RegistryFixture } from './ui-fixture.js';
import { basicAuth } from '../helpers/auth.js';

const SHOTS = join(import.meta.dirname, '..', '..', 'docs', 'screenshots');
const canRun = peerAvailable('chromium') && peerAvailable('skopeo');

describe.skipIf(!canRun)('web UI in Chromium against our registry', () => {
  let fx: RegistryFixture;
  let ui: UiServer;
  let uiUrl: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const cspViolations: string[] = [];

  const watch = (p: Page) => {
    p.on('console', (msg) => {
      if (/Content Security Policy|Refused to/i.test(msg.text())) cspViolations.push(msg.text());
    });
    p.on('dialog', (d) => void d.accept());
  };

  async function signIn(p: Page, base: string, account: Account): Promise<void> {
    await p.goto(`${base}login`);
    await p.getByLabel('User name').fill(account.user);
    await p.getByLabel('Password').fill(account.password);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.waitForURL((u) => !u.pathname.endsWith('/login'));
  }

  beforeAll(async () => {
    await mkdir(SHOTS, { recursive: true });
    fx = await startRegistryWithImages();
    ui = createUiServer({ registry: fx.url, port: 0, publicRegistry: 'registry.example.com', listPageSize: 2 });
    uiUrl = (await ui.listen()).url;
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(uiUrl).origin });
    page = await context.newPage();
    watch(page);
  });

  afterAll(async () => {
    await browser?.close();
    await ui?.close();
    await fx?.close();
  });

  it('redirects unauthenticated pages to the login page and sends security headers', async () => {
    const res = await page.goto(`${uiUrl}r/team/web`);
    expect(new URL(page.url()).pathname).toBe('/login');
    expect(new URL(page.url()).searchParams.get('next')).toBe('/r/team/web');
    const headers = res!.headers();
    expect(headers['content-security-policy']).toContain("script-src 'self'");
    expect(headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(headers['x-frame-options']).toBe('DENY');
    expect(headers['x-content-type-options']).toBe('nosniff');
    expect(headers['referrer-policy']).toBe('same-origin');
    await page.screenshot({ path: join(SHOTS, 'login.png') });
  });

  it('says so when the password is wrong', async () => {
    await page.getByLabel('User name').fill(fx.admin.user);
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('Wrong user name or password');
    expect(new URL(page.url()).pathname).toBe('/login');
  });

  it('signs in with the keyboard and lands on the page first asked for', async () => {
    await page.goto(`${uiUrl}r/team/web`);
    await page.getByLabel('User name').focus();
    await page.keyboard.type(fx.admin.user);
    await page.keyboard.press('Tab');
    await page.keyboard.type(fx.admin.password);
    await page.keyboard.press('Enter');
    await page.waitForURL(`${uiUrl}r/team/web`);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('main');
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'regctl_ui_session');
    expect(session?.httpOnly).toBe(true);
    expect(session?.sameSite).toBe('Strict');
    expect(await page.evaluate(() => document.cookie)).not.toContain('regctl_ui_session');
  });

  it('lists every repository across catalog pages, with tag counts, sizes and push dates', async () => {
    await page.goto(`${uiUrl}repos`);
    const names = await page.locator('[data-testid=repo-table] tbody tr td:first-child a').allTextContents();
    // 6 repositories, fetched 2 per `_catalog` page: the UI followed `Link` to the end.
    expect(names).toEqual(['docs/site', 'infra/postgres-backup', 'ml/trainer', 'team/api', 'team/web', 'tools/cli']);
    const web = page.locator('tr', { has: page.getByRole('link', { name: 'team/web', exact: true }) });
    await expect.poll(() => web.locator('td[data-label=Tags]').textContent()).toBe('3');
    expect(await web.locator('td[data-label=Size]').textContent()).toMatch(/MiB$/);
    expect(await web.locator('td[data-label="Last push"]').textContent()).toMatch(/ago|just now/);
    await page.screenshot({ path: join(SHOTS, 'repositories.png') });
  });

  it('searches and sorts across all repositories', async () => {
    await page.getByLabel('Search').fill('team');
    await page.getByRole('button', { name: 'Search' }).click();
    expect(await page.locator('[data-testid=repo-table] tbody tr td:first-child a').allTextContents()).toEqual([
      'team/api',
      'team/web',
    ]);
    await page.getByLabel('Search').fill('');
    await page.getByLabel('Sort by').selectOption('Largest first');
    await page.waitForURL(/sort=size/);
    const names = await page.locator('[data-testid=repo-table] tbody tr td:first-child a').allTextContents();
    expect(names[0]).toBe('team/web');
    expect(names.at(-1)).toBe('docs/site');
  });

  it('shows a multi-arch tag with each platform’s own size and date, and copies its pull command', async () => {
    await page.goto(`${uiUrl}r/team/web`);
    const row = page.locator('tr[data-tag="1.0"]');
    const platforms = await row.getByTestId('platform').allTextContents();
    expect(platforms).toHaveLength(2);
    const [amd, arm] = fx.images.webIndex.platforms;
    expect(platforms[0]).toContain('linux/amd64');
    expect(platforms[0]).toContain(`${(amd!.size / 1024 ** 2).toFixed(2)} MiB`);
    expect(platforms[1]).toContain('linux/arm64/v8');
    expect(platforms[1]).toContain(`${(arm!.size / 1024 ** 2).toFixed(2)} MiB`);
    expect(await page.locator('tr[data-tag=latest] .mono').first().getAttribute('title')).toBe(
      fx.images.webIndex.digest,
    );
    await page.screenshot({ path: join(SHOTS, 'repository.png') });

    const copy = page
      .locator('tr[data-pull-for="1.0"]')
      .getByRole('button', { name: 'Copy pull command for team/web:1.0 by digest' });
    await copy.click();
    await expect.poll(() => copy.textContent()).toBe('Copied');
    const clip = await page.evaluate(() => navigator.clipboard.readText());
    expect(clip).toBe(`docker pull registry.example.com/team/web@${fx.images.webIndex.digest}`);
  });

  it('opens the multi-arch image: platforms, referrers and raw JSON', async () => {
    await page.getByRole('link', { name: '1.0', exact: true }).click();
    await page.waitForURL(`${uiUrl}r/team/web/-/image/1.0`);
    expect(await page.getByTestId('image-digest').textContent()).toBe(fx.images.webIndex.digest);
    const created = await page.getByTestId('platform-created').allTextContents();
    expect(created).toEqual(['2026-11-02 09:12 UTC', '2026-11-03 15:40 UTC']);
    const refRow = page.locator('[data-testid=referrer-table] tbody tr');
    expect(await refRow.count()).toBe(1);
    expect(await refRow.textContent()).toContain('application/spdx+json');
    await page.screenshot({ path: join(SHOTS, 'image-index.png') });
    await page.getByText('Manifest JSON').click();
    expect(JSON.parse((await page.getByTestId('raw-manifest').textContent()) ?? '')).toMatchObject({
      mediaType: 'application/vnd.oci.image.index.v1+json',
    });

    await page.locator('tr[data-platform="linux/amd64"] a').click();
    expect(await page.getByTestId('ports').textContent()).toContain('8080/tcp');
    expect(await page.getByTestId('env').textContent()).toContain('LOG_FORMAT=json');
    expect(await page.getByTestId('labels').textContent()).toContain('org.opencontainers.image.version=1.0');
    expect(await page.locator('[data-testid=layer-table] tbody tr').count()).toBe(2);
    await page.screenshot({ path: join(SHOTS, 'image.png'), fullPage: true });
  });

  it('previews a tag delete, deletes it, and the sibling tag on the same digest stays', async () => {
    await page.goto(`${uiUrl}r/team/web`);
    await page.getByRole('link', { name: 'Delete tag latest' }).click();
    await page.waitForURL(`${uiUrl}r/team/web/-/delete/latest`);
    expect(await page.getByTestId('sibling').allTextContents()).toEqual(['1.0']);
    expect(await page.getByTestId('gc-estimate').textContent()).toContain('0 B');
    await page.screenshot({ path: join(SHOTS, 'delete-preview.png') });
    await page.getByRole('button', { name: 'Delete tag latest' }).click();
    await page.waitForURL(`${uiUrl}r/team/web`);
    await expect.poll(() => page.getByRole('status').first().textContent()).toContain('Deleted tag latest');
    expect(
      await page.locator('tr[data-tag]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-tag'))),
    ).toEqual(['1.0', '0.9']);
    const head = await fetch(`${fx.url}/v2/team/web/manifests/1.0`, {
      method: 'HEAD',
      headers: {
        Authorization: basicAuth(fx.admin.user, fx.admin.password),
        Accept: 'application/vnd.oci.image.index.v1+json',
      },
    });
    expect(head.status).toBe(200);
    expect(head.headers.get('docker-content-digest')).toBe(fx.images.webIndex.digest);
  });

  it('previews what a GC would free when the last tag of an image goes', async () => {
    await page.goto(`${uiUrl}r/team/web/-/delete/0.9`);
    expect(await page.getByTestId('sibling').count()).toBe(0);
    // The base layer is shared with the other tags; the image's own layer, config and manifest are not.
    const text = (await page.getByTestId('gc-estimate').textContent()) ?? '';
    expect(text).toMatch(/up to 2\.\d\d MiB/);
    expect(text).toContain('3 blobs');
    // regctl gc keeps untagged manifests by default (GC_DEFAULTS): the delete alone frees nothing, and says so.
    expect(await page.getByTestId('gc-frees').getAttribute('data-bytes')).toBe('0');
    expect(text).toContain('regctl gc --delete-untagged would free up to');
    await page.screenshot({ path: join(SHOTS, 'delete-preview-last-tag.png') });
  });

  it('shows storage with exact per-repository bytes from the registry', async () => {
    await page.getByRole('link', { name: 'Storage' }).click();
    await page.waitForURL(`${uiUrl}storage`);
    const usage = (await (
      await fetch(`${fx.url}/admin/v1/usage`, {
        headers: { Authorization: basicAuth(fx.admin.user, fx.admin.password) },
      })
    ).json()) as { totalBytes: number; repositories: { name: string; exclusiveBytes: number; sharedBytes: number }[] };
    expect(await page.getByTestId('total-bytes').getAttribute('title')).toBe(
      `${usage.totalBytes.toLocaleString('en-US')} bytes`,
    );
    for (const r of usage.repositories) {
      const row = page.locator(`tr[data-repo="${r.name}"]`);
      expect(await row.locator('td[data-label=Exclusive]').getAttribute('data-bytes')).toBe(String(r.exclusiveBytes));
      expect(await row.locator('td[data-label=Shared]').getAttribute('data-bytes')).toBe(String(r.sharedBytes));
    }
    // The base layer (2.4 MB of random bytes, tarred and gzip'd) is the one blob several repositories use.
    const shared = Number((await page.getByTestId('shared-bytes').getAttribute('title'))?.replace(/[^0-9]/g, ''));
    expect(shared).toBeGreaterThan(2_400_000);
    expect(shared).toBeLessThan(2_410_000);
    await page.screenshot({ path: join(SHOTS, 'storage.png') });
  });

  it('shows clear messages for an unknown repository or tag', async () => {
    let res = await page.goto(`${uiUrl}r/no/such-repo`);
    expect(res!.status()).toBe(404);
    expect(await page.getByTestId('error-message').textContent()).toContain('“no/such-repo” does not exist');
    res = await page.goto(`${uiUrl}r/team/web/-/image/nope`);
    expect(res!.status()).toBe(404);
    expect(await page.getByTestId('error-message').textContent()).toContain(
      'The tag “nope” does not exist in team/web',
    );
    res = await page.goto(`${uiUrl}r/Bad..Name`);
    expect(res!.status()).toBe(404);
    expect(await page.getByTestId('error-message').textContent()).toContain('not a valid repository name');
  });

  it('hides delete from a read-only user, and the server refuses it anyway', async () => {
    const ctx2 = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const p2 = await ctx2.newPage();
    watch(p2);
    await signIn(p2, uiUrl, fx.viewer);
    await p2.goto(`${uiUrl}r/team/api`);
    expect(await p2.locator('tr[data-tag]').count()).toBe(2);
    expect(await p2.getByRole('link', { name: /^Delete tag/ }).count()).toBe(0);
    expect(await p2.getByRole('link', { name: 'Storage' }).count()).toBe(0);
    const csrf = await p2.locator('input[name=csrf]').first().inputValue();
    const res = await p2.request.post(`${uiUrl}r/team/api/-/delete/2.4.0`, { form: { csrf }, maxRedirects: 0 });
    expect(res.status()).toBe(403);
    expect(await res.text()).toContain('You may not delete tags in team/api');
    const storage = await p2.goto(`${uiUrl}storage`);
    expect(storage!.status()).toBe(403);
    await ctx2.close();
  });

  it('refuses a delete without the session’s CSRF token', async () => {
    const res = await page.request.post(`${uiUrl}r/team/api/-/delete/2.4.0`, {
      form: { csrf: 'forged' },
      maxRedirects: 0,
    });
    expect(res.status()).toBe(403);
    await page.goto(`${uiUrl}r/team/api`);
    expect(await page.locator('tr[data-tag]').count()).toBe(2);
  });

  it('works mounted at /ui/ on the registry’s own listener, with pagination', async () => {
    const ctx3 = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const p3 = await ctx3.newPage();
    watch(p3);
    const base = `${fx.url}/ui/`;
    await p3.goto(`${base}repos`);
    expect(new URL(p3.url()).pathname).toBe('/ui/login');
    await signIn(p3, base, fx.admin);
    expect(new URL(p3.url()).pathname).toBe('/ui/repos');
    expect(await p3.getByTestId('pager-summary').textContent()).toBe('1–4 of 6 repositories');
    await p3.getByRole('link', { name: 'Next →' }).click();
    expect(await p3.locator('[data-testid=repo-table] tbody tr td:first-child a').allTextContents()).toEqual([
      'team/web',
      'tools/cli',
    ]);
    await p3.getByRole('link', { name: 'tools/cli' }).click();
    expect(new URL(p3.url()).pathname).toBe('/ui/r/tools/cli');
    // Mounted on the registry, pull commands name the host the browser used.
    expect(await p3.locator('tr[data-pull-for=v2] code').first().textContent()).toBe(
      `docker pull ${fx.host}/tools/cli:v2`,
    );
    expect((await ctx3.cookies()).find((c) => c.name === 'regctl_ui_session')?.path).toBe('/ui/');
    await ctx3.close();
  });

  it('switches theme from the system’s to light and dark, and remembers the choice', async () => {
    await page.goto(`${uiUrl}repos`);
    const theme = () => page.evaluate(() => document.documentElement.getAttribute('data-theme'));
    expect(await theme()).toBeNull();
    const toggle = page.getByRole('button', { name: /^Theme/ });
    await toggle.click();
    expect(await theme()).toBe('light');
    await toggle.click();
    expect(await theme()).toBe('dark');
    await page.reload();
    expect(await theme()).toBe('dark');
    expect(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe('rgb(15, 18, 24)');
    await page.screenshot({ path: join(SHOTS, 'repositories-dark.png') });
    await toggle.click();
    expect(await theme()).toBeNull();
  });

  it('fits a phone-width screen', async () => {
    const phone = await browser.newContext({
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
      colorScheme: 'dark',
    });
    const p4 = await phone.newPage();
    watch(p4);
    await signIn(p4, uiUrl, fx.admin);
    await p4.goto(`${uiUrl}r/team/web`);
    // No theme chosen in this browser: the page follows the system's dark scheme.
    expect(await p4.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe('rgb(15, 18, 24)');
    const overflow = await p4.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    expect(overflow).toBeLessThanOrEqual(0);
    await p4.screenshot({ path: join(SHOTS, 'phone-repository.png') });
    await phone.close();
  });

  it('ends the session when the registry stops accepting the password', async () => {
    const ctx5 = await browser.newContext();
    const p5 = await ctx5.newPage();
    await signIn(p5, uiUrl, fx.rotating);
    await p5.goto(`${uiUrl}repos`);
    await fx.rotatePassword(fx.rotating.user, 'a-brand-new-password');
    await p5.goto(`${uiUrl}r/tools/cli`);
    expect(new URL(p5.url()).pathname).toBe('/login');
    expect(await p5.getByRole('status').first().textContent()).toContain('no longer accepts your credentials');
    await p5.goto(`${uiUrl}repos`);
    expect(new URL(p5.url()).pathname).toBe('/login');
    await ctx5.close();
  });

  it('says the session expired after the idle timeout', async () => {
    const short = createUiServer({ registry: fx.url, port: 0, sessions: { idleMs: 1500 } });
    const base = (await short.listen()).url;
    const ctx6 = await browser.newContext();
    const p6 = await ctx6.newPage();
    await signIn(p6, base, fx.admin);
    await new Promise((r) => setTimeout(r, 2000));
    await p6.goto(`${base}r/team/web`);
    expect(new URL(p6.url()).pathname).toBe('/login');
    expect(await p6.getByRole('status').first().textContent()).toContain('Your session has expired');
    await ctx6.close();
    await short.close();
  });

  it('says the registry is down, on the login page and for a signed-in user', async () => {
    let target = fx.url;
    // A registry that is down: a listener of this test's own that drops every connection (a port found free
    // could be taken by another test's server meanwhile).
    const dead = createNetServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
    const deadUrl = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`;
    onTestFinished(() => void dead.close());
    const flaky = createUiServer({ registry: () => target, port: 0 });
    const base = (await flaky.listen()).url;
    const ctx7 = await browser.newContext();
    const p7 = await ctx7.newPage();
    await signIn(p7, base, fx.admin);
    target = deadUrl;
    const res = await p7.goto(`${base}r/tools/cli`);
    expect(res!.status()).toBe(502);
    expect(await p7.getByRole('heading', { level: 1 }).textContent()).toBe('Registry unavailable');
    expect(await p7.content()).not.toMatch(/at \w+ \(|node:internal|\.ts:\d+/);
    await ctx7.clearCookies();
    await p7.goto(`${base}login`);
    await p7.getByLabel('User name').fill(fx.admin.user);
    await p7.getByLabel('Password').fill(fx.admin.password);
    await p7.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => p7.getByRole('alert').textContent()).toContain('Registry unavailable');
    await ctx7.close();
    await flaky.close();
  });

  it('signs out', async () => {
    await page.goto(`${uiUrl}repos`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/login\?reason=signedout/);
    expect(await page.getByRole('status').first().textContent()).toContain('You have signed out');
    await page.goto(`${uiUrl}repos`);
    expect(new URL(page.url()).pathname).toBe('/login');
  });

  it('ran with no Content-Security-Policy violation', () => {
    expect(cspViolations).toEqual([]);
  });
});
