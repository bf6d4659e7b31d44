/**
 * One definition of a repository and one set of GC defaults (src/common/gc-defaults.ts), seen where a user sees
 * them: a registry holding five repositories and a directory left with a layer link and no manifest (what a push
 * that never put its manifest leaves), planted in storage with a blob older than the GC's grace window. The
 * catalog, the UI's repository list and its storage page name the same five; the delete preview's figures add up
 * to what `regctl gc` with no flag then frees, and so does the storage page's "A GC would free".
 */
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDigest } from '../../../src/registry/reference.js';
import { pathFor } from '../../../src/registry/storage/paths.js';
import { createUiServer, type UiServer } from '../../../src/ui/server.js';
import { authHeaders, pushImage, sha, startFixture, type Fixture } from '../../helpers/day-two-fixture.js';
import { runCli } from '../stack/cli-harness.js';

const REPOS = ['apps/api', 'apps/web', 'base/node', 'tools/ci', 'tools/lint'];
const ORPHAN = 'apps/left-behind';
const orphanBlob = Buffer.from('a layer whose manifest never came '.repeat(300));

let fx: Fixture;
let ui: UiServer;
let base: string;
let cookie: string;

beforeAll(async () => {
  fx = await startFixture();
  for (const r of REPOS) await pushImage(fx.url, r, 'v1', [Buffer.from(`layer of ${r}`)], fx.admin);
  // apps/web:v2 is another image: deleting v1 leaves that image with no tag.
  await pushImage(fx.url, 'apps/web', 'v2', [Buffer.from('layer of apps/web v2')], fx.admin);
  const digest = parseDigest(sha(orphanBlob));
  const data = join(fx.dataDir, pathFor({ kind: 'blobData', digest }));
  await mkdir(dirname(data), { recursive: true });
  await writeFile(data, orphanBlob);
  const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
  await utimes(data, twoHoursAgo, twoHoursAgo);
  const link = join(fx.dataDir, pathFor({ kind: 'layerLink', name: ORPHAN, digest }));
  await mkdir(dirname(link), { recursive: true });
  await writeFile(link, digest.value);

  ui = createUiServer({ registry: fx.url, port: 0 });
  base = (await ui.listen()).url;
  const res = await fetch(`${base}login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: fx.admin.username, password: fx.admin.password, next: '' }).toString(),
  });
  expect(res.status).toBe(303);
  cookie = res.headers.get('set-cookie')?.split(';')[0] ?? '';
});
afterAll(async () => {
  await ui?.close();
  await fx?.close();
});

const page = async (path: string): Promise<string> => {
  const res = await fetch(`${base}${path}`, { headers: { cookie }, redirect: 'manual' });
  expect(res.status, path).toBe(200);
  return res.text();
};
const bytesOf = (html: string, testid: string): number => {
  const m = new RegExp(`data-testid="${testid}"[^>]*data-bytes="(\\d+)"`).exec(html);
  if (!m) throw new Error(`no ${testid} figure on the page`);
  return Number(m[1]);
};

describe('one definition of a repository', () => {
  it('the catalog, the repositories page and the storage page list the same repositories', async () => {
    const catalog = (await (await fetch(`${fx.url}/v2/_catalog`, { headers: authHeaders(fx.admin) })).json()) as {
      repositories: string[];
    };
    const listed = [...(await page('repos')).matchAll(/class="repo-link" href="[^"]*">([^<]+)</g)].map((m) => m[1]);
    const storage = [...(await page('storage')).matchAll(/<tr data-repo="([^"]+)"/g)].map((m) => m[1]);
    expect(catalog.repositories).toEqual(REPOS);
    expect(listed.sort()).toEqual(REPOS);
    expect(storage.sort()).toEqual(REPOS);
  });
});

describe('one set of GC defaults', () => {
  it("the delete preview's figures add up to what regctl gc with no flag frees, as does the storage page's", async () => {
    const preview = await page('r/apps/web/-/delete/v1');
    const frees = bytesOf(preview, 'gc-frees');
    const before = bytesOf(preview, 'reclaimable-now');
    expect(bytesOf(preview, 'untagged-frees')).toBeGreaterThan(0);
    const storageFigure = Number(
      /data-testid="reclaimable" title="([\d,]+) bytes"/.exec(await page('storage'))?.[1]?.replace(/,/g, ''),
    );

    const del = await fetch(`${fx.url}/v2/apps/web/manifests/v1`, { method: 'DELETE', headers: authHeaders(fx.admin) });
    expect(del.status).toBe(202);
    const run = await runCli(['gc', '--json'], { cwd: fx.stackDir, env: { PATH: process.env.PATH, ...fx.env } });
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout) as { freedBytes: number; repositoriesRemoved: string[] };
    // Not a vacuous 0 = 0: the planted blob is old enough for the default grace window and no manifest holds it.
    expect(summary.freedBytes).toBe(orphanBlob.length);
    expect(frees + before).toBe(summary.freedBytes);
    expect(storageFigure).toBe(summary.freedBytes);
    expect(summary.repositoriesRemoved).toEqual([ORPHAN]);
  });
});
