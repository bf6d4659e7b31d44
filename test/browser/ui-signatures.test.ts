/**
 * The image page's signed marks and attachment kinds in Chromium, after the real cosign and notation signed and
 * attested images in our registry (the browser fixture's registry and images): a cosign bundle signature, a cosign
 * tag-scheme signature (`sha256-<hex>.sig`), a notation signature, a cosign attestation, and the fixture's SBOM.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.js';
import { peerAvailable, peerPath } from '../helpers/peers.js';
import { run } from '../helpers/run.js';
import { createUiServer, type UiServer } from '../../src/ui/server.js';
import { startRegistryWithImages, type RegistryFixture } from './ui-fixture.js';

const canRun =
  peerAvailable('chromium') && peerAvailable('skopeo') && peerAvailable('cosign') && peerAvailable('notation');

describe.skipIf(!canRun)('signed marks on the image page', () => {
  let fx: RegistryFixture;
  let ui: UiServer;
  let uiUrl: string;
  let browser: Browser;
  let page: Page;
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'regctl-ui-signatures-'));
    fx = await startRegistryWithImages();
    const env = {
      COSIGN_PASSWORD: '',
      HOME: work,
      DOCKER_CONFIG: join(work, 'docker'),
      XDG_CONFIG_HOME: join(work, 'xdg'),
      NOTATION_USERNAME: fx.admin.user,
      NOTATION_PASSWORD: fx.admin.password,
    };
    await mkdir(join(work, 'xdg'), { recursive: true });
    await run(peerPath('cosign'), ['generate-key-pair'], { env, cwd: work });
    await run(peerPath('notation'), ['cert', 'generate-test', '--default', 'regctl-ui'], { env });
    const cosign = (args: string[]) =>
      run(
        peerPath('cosign'),
        [
          ...args,
          '--key',
          'cosign.key',
          '--use-signing-config=false',
          '--tlog-upload=false',
          '--allow-http-registry',
          '--registry-username',
          fx.admin.user,
          '--registry-password',
          fx.admin.password,
          '-y',
        ],
        { env, cwd: work },
      );
    const v2 = `${fx.host}/tools/cli@${fx.images.cli.digest}`;
    await cosign(['sign', v2]);
    await cosign(['sign', '--new-bundle-format=false', v2]);
    await writeFile(join(work, 'predicate.json'), JSON.stringify({ builder: { id: 'regctl-test' } }));
    await cosign(['attest', '--type', 'slsaprovenance', '--predicate', 'predicate.json', v2]);
    await run(peerPath('notation'), ['sign', '--insecure-registry', v2], { env });

    ui = createUiServer({ registry: fx.url, port: 0, publicRegistry: 'registry.example.com' });
    uiUrl = (await ui.listen()).url;
    browser = await launchChromium();
    page = await browser.newPage();
    await page.goto(`${uiUrl}login`);
    await page.getByLabel('User name').fill(fx.admin.user);
    await page.getByLabel('Password').fill(fx.admin.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => !u.pathname.endsWith('/login'));
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await ui?.close();
    await fx?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('marks the image signed by cosign and notation and lists each attachment by kind', async () => {
    await page.goto(`${uiUrl}r/tools/cli/-/image/v2`);
    const marks = page.getByTestId('signed-marks');
    expect(await marks.textContent()).toMatch(/signed · cosign\s*signed · notation/);
    const rows = page.locator('[data-testid=referrer-table] tbody tr');
    const kinds = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-kind')));
    expect(kinds.sort()).toEqual(['attestation', 'cosign signature', 'cosign signature', 'notation signature']);
    const tagged = page.locator('[data-testid=referrer-table] tbody tr', { hasText: 'tag sha256-' });
    expect(await tagged.textContent()).toContain(`tag ${fx.images.cli.digest.replace(':', '-')}.sig`);
  });

  it('an image with an SBOM and no signature says so', async () => {
    await page.goto(`${uiUrl}r/team/web/-/image/1.0`);
    expect(await page.getByTestId('signed-marks').textContent()).toBe('not signed');
    const kinds = await page
      .locator('[data-testid=referrer-table] tbody tr')
      .evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-kind')));
    expect(kinds).toEqual(['sbom']);
  });
});
