/**
 * Cached repositories in the web UI, in a real browser (Debian's Chromium via playwright-core): our registry
 * in-process is a pull-through cache of a second one of ours; a read-only user sees "cached from <upstream>" beside
 * the cached repository on the list and on its page, and nothing beside the registry's own. Saves a screenshot
 * under docs/screenshots/.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, type RegistryServer } from '../../src/registry/server.js';
import { createUiServer, type UiServer } from '../../src/ui/server.js';
import { basicAuth } from '../helpers/auth.js';
import { launchChromium } from '../helpers/browser.js';
import { peerAvailable } from '../helpers/peers.js';
import { startTestRegistry, type TestRegistry } from '../unit/ui/registry-helper.js';

const SHOTS = join(import.meta.dirname, '..', '..', 'docs', 'screenshots');
const password = randomBytes(9).toString('base64url');

describe.skipIf(!peerAvailable('chromium'))('cached repositories in the web UI, in Chromium', () => {
  let dir: string;
  let upstream: TestRegistry;
  let ours: RegistryServer;
  let ui: UiServer;
  let base: string;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    await mkdir(SHOTS, { recursive: true });
    dir = await mkdtemp(join(tmpdir(), 'regctl-ui-cached-browser-'));
    upstream = await startTestRegistry();
    await upstream.pushImage('library/alpine', '3');
    await writeFile(
      join(dir, 'htpasswd'),
      `viewer:${bcrypt.hashSync(password, 4)}\nadmin:${bcrypt.hashSync(password, 4)}\n`,
    );
    await writeFile(
      join(dir, 'access.yaml'),
      'users:\n  admin: { admin: true }\n  viewer: { rules: [ { repos: "**", actions: [pull] } ] }\n',
    );
    await writeFile(join(dir, 'credentials'), `${upstream.user}:${upstream.password}\n`, { mode: 0o600 });
    ours = createRegistryServer({
      port: 0,
      dataDir: join(dir, 'data'),
      htpasswd: join(dir, 'htpasswd'),
      access: join(dir, 'access.yaml'),
      logLevel: 'silent',
      proxies: [{ prefix: 'hub', upstream: upstream.url, credentialsFile: join(dir, 'credentials'), ttlMs: 3600_000 }],
    });
    const oursUrl = (await ours.listen()).url;
    const auth = { Authorization: basicAuth('admin', password) };
    expect((await fetch(`${oursUrl}/v2/hub/library/alpine/manifests/3`, { headers: auth })).status).toBe(200);
    const blob = Buffer.from('{}');
    const digest = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';
    expect(
      (
        await fetch(`${oursUrl}/v2/team/app/blobs/uploads/?digest=${digest}`, {
          method: 'POST',
          headers: auth,
          body: new Uint8Array(blob),
        })
      ).status,
    ).toBe(201);
    const put = await fetch(`${oursUrl}/v2/team/app/manifests/v1`, {
      method: 'PUT',
      headers: { ...auth, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      body: JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest, size: blob.length },
        layers: [],
      }),
    });
    expect(put.status).toBe(201);
    ui = createUiServer({ registry: oursUrl, port: 0, publicRegistry: 'registry.example.com' });
    base = (await ui.listen()).url;
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 720 } })).newPage();
  });

  afterAll(async () => {
    await browser?.close();
    await ui?.close();
    await ours?.close();
    await upstream?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('shows "cached from <upstream host>" beside the cached repository, on the list and on its page', async () => {
    await page.goto(`${base}login`);
    await page.getByLabel('User name').fill('viewer');
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => u.pathname.endsWith('/repos'));
    const host = new URL(upstream.url).host;
    const cachedRow = page.getByRole('row').filter({ hasText: 'hub/library/alpine' });
    await expect.poll(() => cachedRow.getByTestId('cached-from').innerText()).toBe(`cached from ${host}`);
    expect(await page.getByRole('row').filter({ hasText: 'team/app' }).getByTestId('cached-from').count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'repos-cached.png') });

    await page.getByRole('link', { name: 'hub/library/alpine' }).click();
    await page.waitForURL((u) => u.pathname.endsWith('/r/hub/library/alpine'));
    expect(await page.getByTestId('cached-from').innerText()).toBe(`cached from ${host}`);
    expect(await page.getByTestId('cached-from').getAttribute('title')).toBe(upstream.url);
  });
});
