/**
 * A real registry (ours, in-process) with real images pushed by skopeo, users with different permissions, an
 * SBOM attached through the referrers API, and the web UI both standalone and mounted at /ui/ on the registry.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { createRegistryServer, type RegistryServer } from '../../src/registry/server.js';
import { createUiHandler, type UiHandler } from '../../src/ui/server.js';
import { buildOciImage, skopeoPush, skopeoTag, type BuiltImage, type PlatformSpec } from './oci-images.js';
import { basicAuth } from '../helpers/auth.js';

export interface Account {
  user: string;
  password: string;
}

export interface RegistryFixture {
  url: string;
  host: string;
  dir: string;
  htpasswdPath: string;
  admin: Account;
  viewer: Account;
  rotating: Account;
  registry: RegistryServer;
  /** The UI mounted at /ui/ on the registry's own listener. */
  mountedUi: UiHandler;
  images: { webIndex: BuiltImage; webOld: BuiltImage; cli: BuiltImage; sbomDigest: string };
  /** Replaces a user's password in htpasswd and makes the registry re-read it. */
  rotatePassword(user: string, password: string): Promise<void>;
  close(): Promise<void>;
}

const accountAuth = (a: Account) => basicAuth(a.user, a.password);

/** Random bytes do not compress, so layer sizes read like real ones. */
const blob = (bytes: number) => randomBytes(bytes);

async function pushBlob(
  url: string,
  auth: string,
  repo: string,
  data: Buffer,
): Promise<{ digest: string; size: number }> {
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    headers: { Authorization: auth, 'Content-Type': 'application/octet-stream' },
    body: new Uint8Array(data),
  });
  if (res.status !== 201) throw new Error(`blob upload to ${repo} answered ${res.status}: ${await res.text()}`);
  return { digest, size: data.length };
}

/** Attaches an SPDX SBOM to `subject` as an OCI artifact (what `oras attach` sends). */
async function attachSbom(
  url: string,
  auth: string,
  repo: string,
  subject: { mediaType: string; digest: string; size: number },
): Promise<string> {
  const empty = await pushBlob(url, auth, repo, Buffer.from('{}'));
  const sbom = await pushBlob(
    url,
    auth,
    repo,
    Buffer.from(
      JSON.stringify({ spdxVersion: 'SPDX-2.3', name: 'team/web', packages: [{ name: 'server', versionInfo: '1.0' }] }),
    ),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/spdx+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', ...empty },
      layers: [{ mediaType: 'application/spdx+json', ...sbom }],
      subject,
      annotations: { 'org.opencontainers.image.created': '2026-11-02T10:05:00Z' },
    }),
  );
  const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
  const res = await fetch(`${url}/v2/${repo}/manifests/${digest}`, {
    method: 'PUT',
    headers: { Authorization: auth, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
    body: new Uint8Array(manifest),
  });
  if (res.status !== 201) throw new Error(`artifact manifest answered ${res.status}: ${await res.text()}`);
  return digest;
}

interface AccessFiles {
  admin: Account;
  viewer: Account;
  rotating: Account;
  htpasswdPath: string;
  accessPath: string;
  /** Rewrites htpasswd from the accounts' current passwords. */
  writeHtpasswd(): Promise<void>;
}

/** Three users with random passwords in htpasswd, and the access rules: two admins and a read-only viewer. */
async function writeAccessFiles(dir: string): Promise<AccessFiles> {
  const admin = { user: 'admin', password: randomBytes(9).toString('base64url') };
  const viewer = { user: 'viewer', password: randomBytes(9).toString('base64url') };
  const rotating = { user: 'rotating', password: randomBytes(9).toString('base64url') };
  const accounts: Account[] = [admin, viewer, rotating];
  const htpasswdPath = join(dir, 'htpasswd');
  const accessPath = join(dir, 'access.yaml');
  const writeHtpasswd = () =>
    writeFile(htpasswdPath, accounts.map((a) => `${a.user}:${bcrypt.hashSync(a.password, 5)}`).join('\n') + '\n', {
      mode: 0o600,
    });
  await writeHtpasswd();
  await writeFile(
    accessPath,
    [
      'users:',
      '  admin: { admin: true }',
      '  rotating: { admin: true }',
      '  viewer: { rules: [ { repos: "**", actions: [pull] } ] }',
      '',
    ].join('\n'),
  );
  return { admin, viewer, rotating, htpasswdPath, accessPath, writeHtpasswd };
}

/** Our registry on a free port, with the UI mounted at /ui/ and pages small enough to show paging. */
async function startRegistry(
  dir: string,
  files: AccessFiles,
): Promise<{ registry: RegistryServer; mountedUi: UiHandler; url: string; host: string }> {
  let registryUrl = '';
  const mountedUi = createUiHandler({ registry: () => registryUrl, basePath: '/ui', pageSize: 4, listPageSize: 3 });
  const registry = createRegistryServer({
    port: 0,
    dataDir: join(dir, 'data'),
    htpasswd: files.htpasswdPath,
    access: files.accessPath,
    logLevel: 'silent',
    authPollMs: 200,
    uiHandler: mountedUi,
  });
  const { url, port } = await registry.listen();
  registryUrl = url;
  return { registry, mountedUi, url, host: `127.0.0.1:${port}` };
}

/** The first layer several images share, as they would share a base image. */
type BaseLayer = NonNullable<PlatformSpec['base']>;

/** team/web: a two-platform index tagged 1.0 and latest, and an older single-platform 0.9. */
async function pushWeb(
  host: string,
  creds: string,
  base: BaseLayer,
): Promise<{ webIndex: BuiltImage; webOld: BuiltImage }> {
  const webIndex = await buildOciImage([
    {
      os: 'linux',
      architecture: 'amd64',
      created: '2026-11-02T09:12:00Z',
      base,
      files: { 'app/server': blob(3_100_000), 'app/VERSION': '1.0\n' },
      entrypoint: ['/app/server'],
      cmd: ['--port', '8080'],
      env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'PORT=8080', 'LOG_FORMAT=json'],
      labels: {
        'org.opencontainers.image.title': 'web',
        'org.opencontainers.image.version': '1.0',
        'org.opencontainers.image.source': 'https://git.example.com/team/web',
      },
      exposedPorts: ['8080/tcp'],
    },
    {
      os: 'linux',
      architecture: 'arm64',
      variant: 'v8',
      created: '2026-11-03T15:40:00Z',
      files: { 'app/server': blob(2_650_000), 'app/VERSION': '1.0\n' },
      entrypoint: ['/app/server'],
      cmd: ['--port', '8080'],
      env: ['PORT=8080'],
      exposedPorts: ['8080/tcp'],
    },
  ]);
  await skopeoPush(webIndex.source, host, 'team/web:1.0', creds);
  await skopeoTag(host, 'team/web:1.0', 'team/web:latest', creds);
  const webOld = await buildOciImage([
    {
      os: 'linux',
      architecture: 'amd64',
      created: '2026-09-14T11:00:00Z',
      base,
      files: { 'app/server': blob(2_900_000), 'app/VERSION': '0.9\n' },
      entrypoint: ['/app/server'],
      exposedPorts: ['8080/tcp'],
      labels: { 'org.opencontainers.image.version': '0.9' },
    },
  ]);
  await skopeoPush(webOld.source, host, 'team/web:0.9', creds);
  return { webIndex, webOld };
}

/** team/api: two releases on the shared base. */
async function pushApi(host: string, creds: string, base: BaseLayer): Promise<void> {
  const api = await buildOciImage([
    {
      os: 'linux',
      architecture: 'amd64',
      created: '2026-11-21T08:30:00Z',
      base,
      files: { 'srv/api': blob(4_200_000) },
      entrypoint: ['/srv/api'],
      exposedPorts: ['9000/tcp', '9090/tcp'],
      env: ['GOMAXPROCS=2'],
    },
  ]);
  await skopeoPush(api.source, host, 'team/api:2.4.0', creds);
  const apiOld = await buildOciImage([
    {
      os: 'linux',
      architecture: 'amd64',
      created: '2026-10-30T08:30:00Z',
      base,
      files: { 'srv/api': blob(4_050_000) },
      entrypoint: ['/srv/api'],
    },
  ]);
  await skopeoPush(apiOld.source, host, 'team/api:2.3.1', creds);
}

/** tools/cli: v2 and an older v1, without the shared base. */
async function pushCli(host: string, creds: string): Promise<BuiltImage> {
  const cli = await buildOciImage([
    {
      os: 'linux',
      architecture: 'amd64',
      created: '2026-11-27T17:05:00Z',
      files: { 'usr/bin/tool': blob(1_300_000) },
      entrypoint: ['/usr/bin/tool'],
      labels: { maintainer: 'platform@example.com' },
    },
  ]);
  await skopeoPush(cli.source, host, 'tools/cli:v2', creds);
  const cliOld = await buildOciImage([
    {
      os: 'linux',
      architecture: 'amd64',
      created: '2026-08-02T17:05:00Z',
      files: { 'usr/bin/tool': blob(1_150_000) },
      entrypoint: ['/usr/bin/tool'],
    },
  ]);
  await skopeoPush(cliOld.source, host, 'tools/cli:v1', creds);
  return cli;
}

/** Repositories with one tag each: ml/trainer, infra/postgres-backup (on the shared base) and docs/site. */
async function pushSingleTagRepositories(host: string, creds: string, base: BaseLayer): Promise<void> {
  const trainer = await buildOciImage([
    {
      os: 'linux',
      architecture: 'amd64',
      created: '2026-11-12T22:10:00Z',
      files: { 'opt/model.bin': blob(7_800_000) },
      cmd: ['python', '-m', 'trainer'],
    },
  ]);
  await skopeoPush(trainer.source, host, 'ml/trainer:0.3.0', creds);
  const backup = await buildOciImage([
    {
      os: 'linux',
      architecture: 'amd64',
      created: '2026-10-05T04:00:00Z',
      base,
      files: { 'usr/local/bin/backup.sh': '#!/bin/sh\npg_dump "$DATABASE_URL" | gzip\n' },
      entrypoint: ['/usr/local/bin/backup.sh'],
    },
  ]);
  await skopeoPush(backup.source, host, 'infra/postgres-backup:16', creds);
  const site = await buildOciImage([
    {
      os: 'linux',
      architecture: 'amd64',
      created: '2026-11-28T12:00:00Z',
      files: { 'srv/www/index.html': '<h1>docs</h1>', 'srv/www/app.js': blob(350_000) },
      exposedPorts: ['80/tcp'],
    },
  ]);
  await skopeoPush(site.source, host, 'docs/site:main', creds);
}

/** Every repository the tests browse, pushed one after another in a fixed order. */
async function pushImages(
  host: string,
  creds: string,
): Promise<{ webIndex: BuiltImage; webOld: BuiltImage; cli: BuiltImage }> {
  const base = { 'etc/os-release': 'NAME=regctl-base\n', 'usr/lib/libbase.so': blob(2_400_000) };
  const { webIndex, webOld } = await pushWeb(host, creds, base);
  await pushApi(host, creds, base);
  const cli = await pushCli(host, creds);
  await pushSingleTagRepositories(host, creds, base);
  return { webIndex, webOld, cli };
}

export async function startRegistryWithImages(): Promise<RegistryFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'regctl-ui-test-'));
  const files = await writeAccessFiles(dir);
  const { admin, viewer, rotating, htpasswdPath } = files;
  const { registry, mountedUi, url, host } = await startRegistry(dir, files);
  const { webIndex, webOld, cli } = await pushImages(host, `${admin.user}:${admin.password}`);
  const sbomDigest = await attachSbom(url, accountAuth(admin), 'team/web', {
    mediaType: webIndex.mediaType,
    digest: webIndex.digest,
    size: webIndex.size,
  });

  return {
    url,
    host,
    dir,
    htpasswdPath,
    admin,
    viewer,
    rotating,
    registry,
    mountedUi,
    images: { webIndex, webOld, cli, sbomDigest },
    async rotatePassword(user, password) {
      const account = [admin, viewer, rotating].find((a) => a.user === user);
      if (!account) throw new Error(`no account ${user}`);
      account.password = password;
      await files.writeHtpasswd();
      const res = await fetch(`${url}/admin/v1/reload`, {
        method: 'POST',
        headers: { Authorization: accountAuth(admin) },
      });
      if (!res.ok) throw new Error(`reload answered ${res.status}`);
    },
    async close() {
      await registry.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
