/**
 * Signed-out browsing of the public repositories, over real sockets against our registry with Basic and with token
 * auth: with `anonymous: { pull: [...] }` in the access file, a visitor with no session sees the list of the public
 * repositories (and nothing else), a public repository's page and its image, with no push, delete or admin control;
 * a private repository's page asks for sign-in. Without a public repository, every page asks for sign-in, as before.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, type RegistryServer } from '../../../src/registry/server.js';
import { createUiServer, type UiServer } from '../../../src/ui/server.js';
import { basicAuth } from '../../helpers/auth.js';
import { sha256 } from '../registry/helpers.js';

const ACCESS = 'users:\n  admin: { admin: true }\n';
const PUBLIC = 'anonymous: { pull: [ "pub/**" ] }\n';

async function stack(dir: string, access: string, token: boolean) {
  await writeFile(join(dir, 'htpasswd'), `admin:${bcrypt.hashSync('admin-pw', 4)}\n`);
  await writeFile(join(dir, 'access.yaml'), access);
  const reg: RegistryServer = createRegistryServer({
    port: 0,
    dataDir: join(dir, 'data'),
    htpasswd: join(dir, 'htpasswd'),
    access: join(dir, 'access.yaml'),
    ...(token ? { authMode: 'token' as const, tokenKey: join(dir, 'token-key.pem') } : {}),
    logLevel: 'silent',
  });
  const regUrl = (await reg.listen()).url;
  const auth = { authorization: basicAuth('admin', 'admin-pw') };
  for (const repo of ['pub/web', 'team/secret']) {
    const config = Buffer.from(`{"architecture":"amd64","os":"linux","repo":"${repo}"}`);
    const post = await fetch(`${regUrl}/v2/${repo}/blobs/uploads/?digest=${sha256(config)}`, {
      method: 'POST',
      headers: auth,
      body: config,
    });
    expect(post.status).toBe(201);
    const put = await fetch(`${regUrl}/v2/${repo}/manifests/v1`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
        layers: [],
      }),
    });
    expect(put.status).toBe(201);
  }
  const ui: UiServer = createUiServer({ registry: regUrl, port: 0 });
  const base = (await ui.listen()).url;
  return { reg, ui, base };
}

const page = (base: string, path: string) => fetch(new URL(path, base), { redirect: 'manual' });

describe.each([false, true])('public repositories signed out (token auth: %s)', (token) => {
  let dir: string;
  let s: Awaited<ReturnType<typeof stack>>;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regctl-ui-public-'));
    s = await stack(dir, `${ACCESS}${PUBLIC}`, token);
  });
  afterAll(async () => {
    await s?.ui.close();
    await s?.reg.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('lists the public repositories only, with a sign-in link and no admin controls', async () => {
    const res = await page(s.base, '/repos');
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('pub/web');
    expect(html).not.toContain('team/secret');
    expect(html).toContain('data-testid="sign-in"');
    expect(html).not.toContain('Sign out');
    expect(html).not.toContain('>Storage<');
  });

  it("shows a public repository's page and image; a private one asks for sign-in", async () => {
    const repo = await page(s.base, '/r/pub/web');
    expect(repo.status).toBe(200);
    const html = await repo.text();
    expect(html).toContain('v1');
    expect(html).not.toMatch(/name="csrf"/);
    const image = await page(s.base, '/r/pub/web/-/image/v1');
    expect(image.status).toBe(200);
    const secret = await page(s.base, '/r/team/secret');
    expect(secret.status).toBe(303);
    expect(secret.headers.get('location')).toMatch(/\/login\?next=/);
  });
});

describe('no public repository', () => {
  it('asks for sign-in on every page, as before', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'regctl-ui-public-'));
    const s = await stack(dir, ACCESS, false);
    try {
      const res = await page(s.base, '/repos');
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toMatch(/\/login/);
    } finally {
      await s.ui.close();
      await s.reg.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
