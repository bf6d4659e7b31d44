import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadStackConfig } from '../../../src/config/load.js';
import {
  addUser,
  editUsersYaml,
  listUsers,
  permissionsFromFlags,
  readUsersFiles,
  removeUser,
  setUser,
} from '../../../src/ops/users.js';
import { STATE_FILE, sha256 } from '../../../src/stack/write.js';
import {
  authHeaders,
  captureOutput,
  getManifestDigest,
  pushBlob,
  pushImage,
  startFixture,
  type Creds,
  type Fixture,
} from '../../helpers/day-two-fixture.js';

describe('permissionsFromFlags', () => {
  it('groups actions by pattern in canonical order', () => {
    expect(permissionsFromFlags({ push: ['apps/**'], pull: ['apps/**', '**'], delete: ['apps/tmp/*'] })).toEqual({
      admin: false,
      rules: [
        { repos: 'apps/**', actions: ['pull', 'push'] },
        { repos: '**', actions: ['pull'] },
        { repos: 'apps/tmp/*', actions: ['delete'] },
      ],
    });
    expect(permissionsFromFlags({ admin: true, pull: ['x'] })).toEqual({ admin: true, rules: [] });
    expect(() => permissionsFromFlags({ pull: [' '] })).toThrow(/needs a repository pattern/);
  });
});

describe('editUsersYaml', () => {
  const text = '# who may do what\nusers:\n  # the first admin\n  admin:\n    admin: true\nother: kept\n';
  it('adds, replaces and removes one user and keeps comments and other keys', () => {
    const added = editUsersYaml(text, 'ci', { admin: false, rules: [{ repos: 'apps/**', actions: ['pull', 'push'] }] });
    expect(added).toContain('# who may do what');
    expect(added).toContain('# the first admin');
    expect(parseYaml(added)).toEqual({
      users: { admin: { admin: true }, ci: { rules: [{ repos: 'apps/**', actions: ['pull', 'push'] }] } },
      other: 'kept',
    });
    const replaced = editUsersYaml(added, 'ci', { admin: true, rules: [] });
    expect(parseYaml(replaced).users.ci).toEqual({ admin: true });
    const removed = editUsersYaml(replaced, 'ci', undefined);
    expect(parseYaml(removed)).toEqual({ users: { admin: { admin: true } }, other: 'kept' });
  });
  it('refuses invalid YAML', () => {
    expect(() => editUsersYaml('users: [', 'x', undefined)).toThrow(/not valid YAML/);
  });
});

describe('users on a stack served by a real registry', () => {
  let fx: Fixture;
  let viewer: Creds;
  let ci: Creds;
  const status = async (method: string, path: string, creds?: Creds) => {
    const res = await fetch(`${fx.url}${path}`, { method, headers: authHeaders(creds) });
    return { status: res.status, body: await res.text() };
  };

  beforeAll(async () => {
    fx = await startFixture();
    await pushImage(fx.url, 'apps/web', 'v1', [Buffer.from('layer-a')], fx.admin);
    await pushImage(fx.url, 'other/tool', 'v1', [Buffer.from('layer-b')], fx.admin);
  });
  afterAll(async () => fx.close());

  it('add: a generated password shown once, written to all three files, enforced at once', async () => {
    const out = captureOutput();
    const r = await addUser({
      dir: fx.stackDir,
      name: 'viewer',
      permissions: permissionsFromFlags({ pull: ['**'] }),
      out,
      env: fx.env,
    });
    expect(r.generated).toBe(true);
    expect(r.password).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(r.reloaded).toBe(true);
    viewer = { username: 'viewer', password: r.password as string };
    const htpasswd = await readFile(join(fx.stackDir, 'auth/htpasswd'), 'utf8');
    expect(htpasswd).toMatch(/^viewer:\$2y\$10\$/m);
    expect(htpasswd).not.toContain(r.password);
    expect((await stat(join(fx.stackDir, 'auth/htpasswd'))).mode & 0o777).toBe(0o600);
    expect(parseYaml(await readFile(join(fx.stackDir, 'auth/access.yaml'), 'utf8')).users.viewer).toEqual({
      rules: [{ repos: '**', actions: ['pull'] }],
    });
    expect((await loadStackConfig(fx.stackDir)).users.viewer).toEqual({
      admin: false,
      rules: [{ repos: '**', actions: ['pull'] }],
    });
    const state = JSON.parse(await readFile(join(fx.stackDir, STATE_FILE), 'utf8')) as Record<string, string>;
    expect(state['regctl.yaml']).toBe(sha256(await readFile(join(fx.stackDir, 'regctl.yaml'), 'utf8')));

    expect((await getManifestDigest(fx.url, 'apps/web', 'v1', viewer)).status).toBe(200);
    const push = await pushBlob(fx.url, 'apps/web', Buffer.from('nope'), viewer);
    expect(push.status).toBe(403);
    const del = await status('DELETE', '/v2/apps/web/manifests/v1', viewer);
    expect(del.status).toBe(403);
    expect(JSON.parse(del.body).errors[0].code).toBe('DENIED');
    expect((await status('GET', '/v2/', { username: 'nobody', password: 'whatever-password' })).status).toBe(401);
    expect((await getManifestDigest(fx.url, 'apps/web', 'v1', { username: 'nobody', password: 'x' })).status).toBe(401);
  });

  it('add with a given password and scoped rules; refuses duplicates, bad names, no permission', async () => {
    const out = captureOutput();
    const r = await addUser({
      dir: fx.stackDir,
      name: 'ci',
      permissions: permissionsFromFlags({ pull: ['apps/**'], push: ['apps/**'] }),
      password: 'a-given-password-123',
      out,
      env: fx.env,
    });
    expect(r.password).toBeUndefined();
    ci = { username: 'ci', password: 'a-given-password-123' };
    expect((await pushBlob(fx.url, 'apps/web', Buffer.from('ci-blob'), ci)).status).toBe(201);
    expect((await pushBlob(fx.url, 'other/tool', Buffer.from('ci-blob'), ci)).status).toBe(403);
    expect((await getManifestDigest(fx.url, 'other/tool', 'v1', ci)).status).toBe(403);
    await expect(
      addUser({ dir: fx.stackDir, name: 'ci', permissions: permissionsFromFlags({ pull: ['**'] }), out }),
    ).rejects.toMatchObject({ code: 'FILE_EXISTS' });
    await expect(
      addUser({ dir: fx.stackDir, name: 'bad:name', permissions: permissionsFromFlags({ pull: ['**'] }), out }),
    ).rejects.toMatchObject({ code: 'USAGE' });
    await expect(
      addUser({ dir: fx.stackDir, name: 'idle', permissions: permissionsFromFlags({}), out }),
    ).rejects.toMatchObject({ code: 'USAGE' });
    await expect(
      addUser({
        dir: fx.stackDir,
        name: 'shorty',
        permissions: permissionsFromFlags({ pull: ['**'] }),
        password: 'short',
        out,
      }),
    ).rejects.toMatchObject({ code: 'USAGE' });
  });

  it('set replaces permissions live', async () => {
    const out = captureOutput();
    await setUser({
      dir: fx.stackDir,
      name: 'viewer',
      permissions: permissionsFromFlags({ pull: ['**'], push: ['other/**'] }),
      out,
      env: fx.env,
    });
    expect((await pushBlob(fx.url, 'other/tool', Buffer.from('viewer-now-pushes'), viewer)).status).toBe(201);
    expect((await pushBlob(fx.url, 'apps/web', Buffer.from('viewer-now-pushes'), viewer)).status).toBe(403);
    await expect(
      setUser({ dir: fx.stackDir, name: 'ghost', permissions: permissionsFromFlags({ pull: ['**'] }), out }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(
      setUser({ dir: fx.stackDir, name: 'admin', permissions: permissionsFromFlags({ pull: ['**'] }), out }),
    ).rejects.toMatchObject({ code: 'USAGE' });
  });

  it('a re-render from regctl.yaml (init --force) keeps the users and their permissions', async () => {
    const { renderStack } = await import('../../../src/stack/render.js');
    const rendered =
      renderStack(await loadStackConfig(fx.stackDir)).find((f) => f.path === 'auth/access.yaml')?.content ?? '';
    const current = await readFile(join(fx.stackDir, 'auth/access.yaml'), 'utf8');
    expect(parseYaml(rendered)).toEqual(parseYaml(current));
  });

  it('list shows every user with permissions', async () => {
    const list = listUsers(await readUsersFiles(fx.stackDir));
    expect(list.map((u) => [u.name, u.admin, u.hasPassword, u.envAdmin])).toEqual([
      ['admin', true, true, true],
      ['ci', false, true, false],
      ['viewer', false, true, false],
    ]);
  });

  it('remove revokes at once and everywhere; the .env admin cannot be removed', async () => {
    const out = captureOutput();
    await removeUser({ dir: fx.stackDir, name: 'viewer', out, env: fx.env });
    expect((await getManifestDigest(fx.url, 'apps/web', 'v1', viewer)).status).toBe(401);
    expect(await readFile(join(fx.stackDir, 'auth/htpasswd'), 'utf8')).not.toMatch(/^viewer:/m);
    expect(parseYaml(await readFile(join(fx.stackDir, 'auth/access.yaml'), 'utf8')).users.viewer).toBeUndefined();
    expect((await loadStackConfig(fx.stackDir)).users.viewer).toBeUndefined();
    await expect(removeUser({ dir: fx.stackDir, name: 'admin', out })).rejects.toMatchObject({ code: 'USAGE' });
    await expect(removeUser({ dir: fx.stackDir, name: 'viewer', out })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await getManifestDigest(fx.url, 'apps/web', 'v1', ci)).status).toBe(200);
  });
});
