/**
 * The UI in front of the reference registry (Debian's docker-registry, distribution 2.8.2), which has no admin
 * API and no referrers API: every page still works or says clearly what this registry cannot do.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peerAvailable } from '../helpers/peers.js';
import { startReferenceRegistry, type ReferenceRegistry } from '../helpers/reference-registry.js';
import { createUiServer, type UiServer } from '../../src/ui/server.js';
import { buildOciImage, skopeoPush, type BuiltImage } from './oci-images.js';

const canRun = peerAvailable('docker-registry') && peerAvailable('skopeo');

describe.skipIf(!canRun)('web UI against the reference registry', () => {
  let reg: ReferenceRegistry;
  let ui: UiServer;
  let base: string;
  let cookie: string;
  let csrf: string;
  let image: BuiltImage;

  const get = (path: string) => fetch(`${base}${path}`, { headers: { Cookie: cookie }, redirect: 'manual' });

  beforeAll(async () => {
    reg = await startReferenceRegistry();
    image = await buildOciImage([
      {
        os: 'linux',
        architecture: 'amd64',
        created: '2026-11-01T10:00:00Z',
        files: { 'bin/a': 'a'.repeat(3000) },
        exposedPorts: ['80/tcp'],
      },
      { os: 'linux', architecture: 'arm64', created: '2026-11-02T10:00:00Z', files: { 'bin/a': 'b'.repeat(5000) } },
    ]);
    await skopeoPush(image.source, reg.host, 'ref/app:1', `${reg.username}:${reg.password}`);
    ui = createUiServer({ registry: reg.url, port: 0 });
    base = (await ui.listen()).url;
    const login = await fetch(`${base}login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: reg.username, password: reg.password }).toString(),
    });
    expect(login.status).toBe(303);
    cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    csrf = /name="csrf" value="([^"]+)"/.exec(await (await get('repos')).text())![1]!;
  });

  afterAll(async () => {
    await ui?.close();
    await reg?.stop();
  });

  it('lists repositories and tags, with each platform of an index', async () => {
    const list = await (await get('repos')).text();
    expect(list).toContain('href="/r/ref/app"');
    expect(list).not.toContain('href="/storage"');
    const repo = await (await get('r/ref/app')).text();
    expect(repo).toContain('data-tag="1"');
    expect(repo).toContain('linux/amd64');
    expect(repo).toContain('linux/arm64');
    expect(repo).toContain(image.digest.slice(0, 19));
  });

  it('shows an image and says the referrers API is missing', async () => {
    const res = await get('r/ref/app/-/image/1');
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('2026-11-02 10:00 UTC');
    expect(text).toContain('this registry does not serve the referrers API');
  });

  it('says the storage report is not available', async () => {
    const res = await get('storage');
    expect(res.status).toBe(404);
    expect(await res.text()).toContain('which this registry does not have');
  });

  it('reports a clear error when the registry refuses to delete by tag, and the tag stays', async () => {
    const res = await fetch(`${base}r/ref/app/-/delete/1`, {
      method: 'POST',
      redirect: 'manual',
      headers: { Cookie: cookie, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf }).toString(),
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    const text = await res.text();
    expect(text).toContain('the registry answered');
    expect(text).not.toMatch(/at \w+ \(|node:internal/);
    expect(await (await get('r/ref/app')).text()).toContain('data-tag="1"');
  });
});
