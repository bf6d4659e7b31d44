/**
 * The web UI marks repositories of the pull-through cache with their upstream, on the list and on the repository
 * page, for an admin (from the usage report) and for a read-only user (from the tags list's header). Our registry
 * in-process serves as the cache, a second one of ours as its upstream; the UI runs over a real socket.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CACHED_FROM_HEADER } from '../../../src/common/cached-from.js';
import { createRegistryServer, type RegistryServer } from '../../../src/registry/server.js';
import { createUiServer, type UiServer } from '../../../src/ui/server.js';
import { basicAuth } from '../../helpers/auth.js';
import { startTestRegistry, type TestRegistry } from './registry-helper.js';

const users = {
  admin: randomBytes(9).toString('base64url'),
  viewer: randomBytes(9).toString('base64url'),
};

let dir: string;
let upstream: TestRegistry;
let ours: RegistryServer;
let oursUrl: string;
let ui: UiServer;
let base: string;

async function signIn(user: keyof typeof users): Promise<string> {
  const res = await fetch(`${base}login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: user, password: users[user], next: '' }).toString(),
  });
  expect(res.status).toBe(303);
  return res.headers.get('set-cookie')?.split(';')[0] ?? '';
}

const page = async (cookie: string, path: string): Promise<string> => {
  const res = await fetch(`${base}${path}`, { headers: { Cookie: cookie } });
  expect(res.status).toBe(200);
  return res.text();
};
/** The list row of `name`, from its cell up to the end of the row. */
const row = (html: string, name: string): string => {
  const at = html.indexOf(`>${name}</a>`);
  expect(at, `a row for ${name}`).toBeGreaterThan(0);
  return html.slice(at, html.indexOf('</tr>', at));
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'regctl-ui-cached-'));
  upstream = await startTestRegistry();
  await upstream.pushImage('lib/app', 'v1');
  await writeFile(
    join(dir, 'htpasswd'),
    Object.entries(users)
      .map(([u, p]) => `${u}:${bcrypt.hashSync(p, 4)}`)
      .join('\n') + '\n',
    { mode: 0o600 },
  );
  await writeFile(
    join(dir, 'access.yaml'),
    'users:\n  admin: { admin: true }\n  viewer: { rules: [ { repos: "**", actions: [pull] } ] }\n',
  );
  await writeFile(join(dir, 'upstream-credentials'), `${upstream.user}:${upstream.password}\n`, { mode: 0o600 });
  ours = createRegistryServer({
    port: 0,
    dataDir: join(dir, 'data'),
    htpasswd: join(dir, 'htpasswd'),
    access: join(dir, 'access.yaml'),
    logLevel: 'silent',
    proxies: [
      { prefix: 'hub', upstream: upstream.url, credentialsFile: join(dir, 'upstream-credentials'), ttlMs: 3600_000 },
    ],
  });
  oursUrl = (await ours.listen()).url;
  const auth = basicAuth('admin', users.admin);
  // One repository pulled through the cache, one of our own.
  const pulled = await fetch(`${oursUrl}/v2/hub/lib/app/manifests/v1`, { headers: { Authorization: auth } });
  expect(pulled.status).toBe(200);
  const blob = Buffer.from('our own');
  const digest = `sha256:${(await import('node:crypto')).createHash('sha256').update(blob).digest('hex')}`;
  const own = await fetch(`${oursUrl}/v2/team/own/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    headers: { Authorization: auth },
    body: new Uint8Array(blob),
  });
  expect(own.status).toBe(201);
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest, size: blob.length },
    layers: [],
  };
  const put = await fetch(`${oursUrl}/v2/team/own/manifests/v1`, {
    method: 'PUT',
    headers: { Authorization: auth, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
    body: JSON.stringify(manifest),
  });
  expect(put.status).toBe(201);
  ui = createUiServer({ registry: oursUrl, port: 0 });
  base = (await ui.listen()).url;
});

afterAll(async () => {
  await ui?.close();
  await ours?.close();
  await upstream?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('cached repositories in the web UI', () => {
  it("the tags list of a cached repository names its upstream; the registry's own names none", async () => {
    const auth = { Authorization: basicAuth('viewer', users.viewer) };
    const cached = await fetch(`${oursUrl}/v2/hub/lib/app/tags/list`, { headers: auth });
    expect(cached.headers.get(CACHED_FROM_HEADER)).toBe(upstream.url);
    const own = await fetch(`${oursUrl}/v2/team/own/tags/list`, { headers: auth });
    expect(own.status).toBe(200);
    expect(own.headers.get(CACHED_FROM_HEADER)).toBeNull();
  });

  for (const user of ['admin', 'viewer'] as const) {
    it(`shows "cached from <upstream host>" on the list and the repository page (${user})`, async () => {
      const cookie = await signIn(user);
      const host = new URL(upstream.url).host;
      const list = await page(cookie, 'repos');
      expect(row(list, 'hub/lib/app')).toContain(
        `data-testid="cached-from" title="${upstream.url}">cached from ${host}`,
      );
      expect(row(list, 'team/own')).not.toContain('cached from');
      expect(await page(cookie, 'r/hub/lib/app')).toContain(`>cached from ${host}</span>`);
      expect(await page(cookie, 'r/team/own')).not.toContain('cached from');
    });
  }
});
