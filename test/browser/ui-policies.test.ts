/**
 * The policies a repository is under, in a real browser (Debian's Chromium via playwright-core) against our
 * registry in-process: the repository page shows the quota as "used of limit" with a bar, the retention rule and
 * the immutable-tag patterns; the storage page shows usage against quota per repository. The admin endpoint behind
 * it answers only users who may pull the repository. Saves docs/screenshots/repository-policies.png.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RepositoryPolicies } from '../../src/common/repository-policies.js';
import type { UsageReport } from '../../src/common/admin-api.js';
import { formatBytes } from '../../src/common/units.js';
import { createRegistryServer, type RegistryServer } from '../../src/registry/server.js';
import { createUiServer, type UiServer } from '../../src/ui/server.js';
import { basicAuth } from '../helpers/auth.js';
import { launchChromium } from '../helpers/browser.js';
import { peerAvailable } from '../helpers/peers.js';

const SHOTS = join(import.meta.dirname, '..', '..', 'docs', 'screenshots');

const POLICIES = `policies:
  immutableTags:
    - { repos: "q/**", tags: "v*" }
  retention:
    schedule: 24h
    rules:
      - { repos: "q/**", keepLast: 5, untaggedOlderThan: 7d }
  quotas:
    - { repos: "q/**", limit: 64KiB }
`;

const accounts = {
  admin: randomBytes(9).toString('base64url'),
  viewer: randomBytes(9).toString('base64url'),
  outsider: randomBytes(9).toString('base64url'),
};

async function push(url: string, repo: string, tag: string, layerBytes: number): Promise<number> {
  const auth = basicAuth('admin', accounts.admin);
  const blob = async (data: Buffer) => {
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      headers: { authorization: auth },
      body: new Uint8Array(data),
    });
    if (res.status !== 201) throw new Error(`blob: ${res.status} ${await res.text()}`);
    return { digest, size: data.length };
  };
  const config = await blob(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: {} })));
  const layer = await blob(randomBytes(layerBytes));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
    }),
  );
  const res = await fetch(`${url}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: { authorization: auth, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    body: new Uint8Array(manifest),
  });
  if (res.status !== 201) throw new Error(`manifest: ${res.status} ${await res.text()}`);
  return config.size + layer.size + manifest.length;
}

describe.skipIf(!peerAvailable('chromium'))('repository policies in the web UI', () => {
  let dir: string;
  let registry: RegistryServer;
  let url: string;
  let ui: UiServer;
  let uiUrl: string;
  let browser: Browser;
  let used: number;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regctl-ui-policies-'));
    const htpasswd = join(dir, 'htpasswd');
    await writeFile(
      htpasswd,
      Object.entries(accounts)
        .map(([u, p]) => `${u}:${bcrypt.hashSync(p, 5)}`)
        .join('\n') + '\n',
      { mode: 0o600 },
    );
    await writeFile(
      join(dir, 'access.yaml'),
      'users:\n  admin: { admin: true }\n  viewer: { rules: [ { repos: "q/**", actions: [pull] } ] }\n' +
        '  outsider: { rules: [ { repos: "other/**", actions: [pull] } ] }\n',
    );
    await writeFile(join(dir, 'config.yaml'), POLICIES);
    registry = createRegistryServer({
      port: 0,
      dataDir: join(dir, 'data'),
      htpasswd,
      access: join(dir, 'access.yaml'),
      policiesFile: join(dir, 'config.yaml'),
      logLevel: 'silent',
    });
    url = (await registry.listen()).url;
    used = await push(url, 'q/app', 'v1', 20_000);
    await push(url, 'free/app', 'v1', 30_000);
    ui = createUiServer({ registry: url, port: 0, publicRegistry: 'registry.example.com' });
    uiUrl = (await ui.listen()).url;
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await ui?.close();
    await registry?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function signedIn(user: keyof typeof accounts): Promise<Page> {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    await page.goto(`${uiUrl}login`);
    await page.getByLabel('User name').fill(user);
    await page.getByLabel('Password').fill(accounts[user]);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => !u.pathname.endsWith('/login'));
    return page;
  }

  it('the repository page shows quota usage, retention and immutable tags; the storage page the quota', async () => {
    const page = await signedIn('admin');
    await page.goto(`${uiUrl}r/q/app`);
    const card = page.getByTestId('repo-policies');
    await expect.poll(() => card.isVisible()).toBe(true);
    const quota = page.getByTestId('policy-quota');
    expect(await quota.innerText()).toContain(`${formatBytes(used)} of 64.0 KiB`);
    expect(await quota.innerText()).toContain('policies.quotas[0] (repos q/**), per repository');
    const bar = quota.locator('svg.bar rect.bar-excl');
    expect(Number(await bar.getAttribute('width'))).toBeCloseTo((used / 65536) * 100, 1);
    expect(await page.getByTestId('policy-retention').innerText()).toContain(
      'keep the newest 5 tags; remove untagged manifests after 7d; runs every 1d',
    );
    expect(await page.getByTestId('policy-immutable').innerText()).toContain('v*');
    await page.screenshot({ path: join(SHOTS, 'repository-policies.png'), fullPage: true });

    await page.goto(`${uiUrl}r/free/app`);
    expect(await page.getByTestId('repo-policies').innerText()).toContain(
      'No quota, retention or immutable-tag rule applies to this repository.',
    );

    await page.goto(`${uiUrl}storage`);
    const row = page.locator('tr[data-repo="q/app"] [data-testid="quota-usage"]');
    expect(await row.innerText()).toContain(`${formatBytes(used)} of 64.0 KiB`);
    expect(await page.locator('tr[data-repo="free/app"] [data-testid="quota-usage"]').count()).toBe(0);
    // The same number the usage API reports, and the one a push is refused by.
    const report = (await (
      await fetch(`${url}/admin/v1/usage`, { headers: { authorization: basicAuth('admin', accounts.admin) } })
    ).json()) as UsageReport;
    expect(report.repositories.find((r) => r.name === 'q/app')?.quota).toEqual({
      rule: 'policies.quotas[0]',
      repos: ['q/**'],
      limitBytes: 65536,
      usedBytes: used,
    });
    await page.context().close();
  });

  it('a user who may pull sees the card; the endpoint refuses one who may not', async () => {
    const page = await signedIn('viewer');
    await page.goto(`${uiUrl}r/q/app`);
    expect(await page.getByTestId('policy-quota').innerText()).toContain(`${formatBytes(used)} of 64.0 KiB`);
    await page.context().close();
    const ask = (user: keyof typeof accounts) =>
      fetch(`${url}/admin/v1/repository-policies?name=q/app`, {
        headers: { authorization: basicAuth(user, accounts[user]) },
      });
    const viewer = await ask('viewer');
    expect(viewer.status).toBe(200);
    const body = (await viewer.json()) as RepositoryPolicies;
    expect(body.immutableTags).toEqual([{ rule: 'policies.immutableTags[0]', repos: ['q/**'], tags: 'v*' }]);
    expect(body.retention).toMatchObject({ keepLast: 5, untaggedOlderThan: '7d', schedule: '1d', dryRun: false });
    expect((await ask('outsider')).status).toBe(403);
  });
});
