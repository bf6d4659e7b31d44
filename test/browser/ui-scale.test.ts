/**
 * The UI on a registry holding 2,000 repositories: every one is listed, searched and paginated, for an admin (one
 * usage report) and for a pull-only user (tag lists fetched with bounded concurrency). Prints the page times.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import pMap from 'p-map';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.js';
import { peerAvailable } from '../helpers/peers.js';
import { createRegistryServer, type RegistryServer } from '../../src/registry/server.js';
import { createUiServer, type UiServer } from '../../src/ui/server.js';
import { buildOciImage, skopeoPush } from './oci-images.js';
import { basicAuth } from '../helpers/auth.js';

const REPOS = 2000;
const canRun = peerAvailable('chromium') && peerAvailable('skopeo');

describe.skipIf(!canRun)('web UI with 2,000 repositories', () => {
  let dir: string;
  let registry: RegistryServer;
  let ui: UiServer;
  let uiUrl: string;
  let registryUrl: string;
  let browser: Browser;
  const admin = { user: 'admin', password: randomBytes(9).toString('base64url') };
  const viewer = { user: 'viewer', password: randomBytes(9).toString('base64url') };
  const name = (i: number) => `group-${String(i % 20).padStart(2, '0')}/service-${String(i).padStart(4, '0')}`;

  /** Signs in without loading the list, so the next list load starts with this session's caches empty. */
  async function signInOnly(page: Page, account: { user: string; password: string }): Promise<void> {
    await page.goto(`${uiUrl}login?next=%2Fhealthz`);
    await page.getByLabel('User name').fill(account.user);
    await page.getByLabel('Password').fill(account.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${uiUrl}healthz`);
  }

  async function timed(page: Page, url: string): Promise<number> {
    const start = performance.now();
    const res = await page.goto(url);
    expect(res!.status()).toBe(200);
    return Math.round(performance.now() - start);
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regctl-ui-scale-'));
    await writeFile(
      join(dir, 'htpasswd'),
      `${admin.user}:${bcrypt.hashSync(admin.password, 5)}\n${viewer.user}:${bcrypt.hashSync(viewer.password, 5)}\n`,
      { mode: 0o600 },
    );
    await writeFile(
      join(dir, 'access.yaml'),
      'users:\n  admin: { admin: true }\n  viewer: { rules: [ { repos: "**", actions: [pull] } ] }\n',
    );
    registry = createRegistryServer({
      port: 0,
      dataDir: join(dir, 'data'),
      htpasswd: join(dir, 'htpasswd'),
      access: join(dir, 'access.yaml'),
      logLevel: 'silent',
    });
    const { url, port } = await registry.listen();
    registryUrl = url;
    const auth = basicAuth(admin.user, admin.password);

    const seed = await buildOciImage([
      {
        os: 'linux',
        architecture: 'amd64',
        created: '2026-11-01T00:00:00Z',
        files: { 'bin/app': randomBytes(20_000) },
      },
    ]);
    await skopeoPush(seed.source, `127.0.0.1:${port}`, 'seed/base:1', `${admin.user}:${admin.password}`);
    const manifestRes = await fetch(`${url}/v2/seed/base/manifests/1`, {
      headers: { Authorization: auth, Accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    const manifest = (await manifestRes.json()) as { config: { digest: string }; layers: { digest: string }[] };
    const body = new Uint8Array(Buffer.from(JSON.stringify(manifest)));
    expect(createHash('sha256').update(body).digest('hex')).toBe(seed.digest.slice(7));

    // Each repository gets the seed's blobs by cross-repository mount and its manifest under one or two tags.
    await pMap(
      Array.from({ length: REPOS - 1 }, (_, i) => i),
      async (i) => {
        const repo = name(i);
        for (const digest of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
          const m = await fetch(`${url}/v2/${repo}/blobs/uploads/?mount=${digest}&from=seed/base`, {
            method: 'POST',
            headers: { Authorization: auth },
          });
          if (m.status !== 201) throw new Error(`mount into ${repo} answered ${m.status}`);
        }
        for (const tag of i % 7 === 0 ? ['1.0', '1.1'] : ['1.0']) {
          const put = await fetch(`${url}/v2/${repo}/manifests/${tag}`, {
            method: 'PUT',
            headers: { Authorization: auth, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
            body,
          });
          if (put.status !== 201) throw new Error(`manifest into ${repo} answered ${put.status}`);
        }
      },
      { concurrency: 16 },
    );

    ui = createUiServer({ registry: url, port: 0 });
    uiUrl = (await ui.listen()).url;
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await ui?.close();
    await registry?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('lists, searches and pages through all of them as an admin', async () => {
    const page = await browser.newPage();
    await signInOnly(page, admin);
    const cold = await timed(page, `${uiUrl}repos`);
    const auth = { Authorization: basicAuth(admin.user, admin.password) };
    let t = performance.now();
    await (await fetch(new URL('/admin/v1/usage', registryUrl), { headers: auth })).json();
    const usageMs = Math.round(performance.now() - t);
    t = performance.now();
    await (await fetch(new URL('/v2/_catalog?n=1000', registryUrl), { headers: auth })).json();
    const catalogMs = Math.round(performance.now() - t);
    const first = await timed(page, `${uiUrl}repos?sort=size`);
    const again = await timed(page, `${uiUrl}repos?sort=size`);
    expect(await page.getByTestId('pager-summary').textContent()).toBe(
      `1–50 of ${REPOS.toLocaleString('en-US')} repositories`,
    );
    const search = await timed(page, `${uiUrl}repos?q=service-199`);
    expect(await page.getByTestId('pager-summary').textContent()).toBe('1–9 of 9 matches');
    const last = await timed(page, `${uiUrl}repos?page=40`);
    expect(await page.locator('[data-testid=repo-table] tbody tr').count()).toBe(50);
    expect(await page.locator('[data-testid=repo-table] tbody tr td:first-child a').last().textContent()).toBe(
      'seed/base',
    );
    const tagCell = page
      .locator('tr', { has: page.getByRole('link', { name: name(1979), exact: true }) })
      .locator('td[data-label=Tags]');
    expect(await tagCell.textContent()).toBe('1');
    console.log(
      `admin, ${REPOS} repositories: first list page, cold caches ${cold} ms (the registry alone: usage report ${usageMs} ms, one catalog page ${catalogMs} ms); list sorted by size ${first} ms (first), ${again} ms (cached); search ${search} ms; page 40 ${last} ms`,
    );
    await page.close();
  });

  it('lists and sorts all of them as a pull-only user', async () => {
    const page = await browser.newPage();
    await signInOnly(page, viewer);
    const firstByName = await timed(page, `${uiUrl}repos`);
    expect(await page.getByTestId('pager-summary').textContent()).toBe(
      `1–50 of ${REPOS.toLocaleString('en-US')} repositories`,
    );
    const rows = page.locator('[data-testid=repo-table] tbody tr');
    expect(await rows.first().locator('td[data-label=Tags]').textContent()).toBe('2');
    expect(await rows.first().locator('td[data-label=Size]').textContent()).toMatch(/KiB$/);
    const byTags = await timed(page, `${uiUrl}repos?sort=tags`);
    expect(await page.getByTestId('pager-summary').textContent()).toBe(
      `1–50 of ${REPOS.toLocaleString('en-US')} repositories`,
    );
    expect(await rows.first().locator('td[data-label=Tags]').textContent()).toBe('2');
    const bySize = await timed(page, `${uiUrl}repos?sort=size-asc`);
    expect(await rows.first().locator('td[data-label=Size]').textContent()).toMatch(/KiB$/);
    const bySizeAgain = await timed(page, `${uiUrl}repos?sort=size`);
    console.log(
      `pull-only user, ${REPOS} repositories: first list page by name, cold caches ${firstByName} ms; sorted by tag count ${byTags} ms; by size ${bySize} ms (first: every repository's manifests), ${bySizeAgain} ms (cached)`,
    );
    await page.close();
  });
});
