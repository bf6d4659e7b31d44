import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import bcrypt from 'bcryptjs';
import { createRegistryServer, type RegistryServer, type RegistryServerOptions } from '../../../src/registry/server.js';
import { JOURNAL_DIR } from '../../../src/registry/storage/fs-journal.js';
import { basicAuth } from '../../helpers/auth.js';
import { isMetadataCompanion, METADATA_FILE, metadataDump } from '../../helpers/metadata-dump.js';

export const sha256 = (data: Buffer | string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

export type TestInit = Omit<RequestInit, 'body'> & { body?: BodyInit | Buffer | null; auth?: [string, string] | null };

export interface TestRegistry {
  url: string;
  dir: string;
  data: string;
  server: RegistryServer;
  logs: string[];
  /** fetch with the admin's credentials unless `auth: null` or other credentials are given. */
  fetch(path: string, init?: TestInit): Promise<Response>;
  stop(): Promise<void>;
}

export const USERS: Record<string, string> = {
  admin: 'admin-pw',
  ci: 'ci-pw',
  viewer: 'viewer-pw',
  nobody: 'nobody-pw',
};

export const ACCESS_YAML = `users:
  admin: { admin: true }
  ci: { rules: [ { repos: "apps/**", actions: [pull, push] } ] }
  viewer: { rules: [ { repos: "**", actions: [pull] } ] }
`;

/** Starts a registry on a free loopback port with a fresh data dir, htpasswd (cost 4) and access file. */
export async function startRegistry(
  opts: Omit<Partial<RegistryServerOptions>, 'access'> & { access?: string | false; auth?: boolean } = {},
): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'regctl-reg-test-'));
  const data = join(dir, 'data');
  const htpasswd = join(dir, 'htpasswd');
  await writeFile(
    htpasswd,
    Object.entries(USERS)
      .map(([u, p]) => `${u}:${bcrypt.hashSync(p, 4)}`)
      .join('\n') + '\n',
  );
  let access: string | undefined;
  if (opts.access !== false) {
    access = join(dir, 'access.yaml');
    await writeFile(access, opts.access ?? ACCESS_YAML);
  }
  const logs: string[] = [];
  const { auth, access: _accessText, ...rest } = opts;
  const server = createRegistryServer({
    host: '127.0.0.1',
    port: 0,
    dataDir: data,
    htpasswd: auth === false ? undefined : htpasswd,
    noAuth: auth === false,
    access,
    log: (level, msg, fields) => logs.push(JSON.stringify({ level, msg, ...fields })),
    ...rest,
  });
  const { url } = await server.listen();
  return {
    url,
    dir,
    data,
    server,
    logs,
    fetch: (path, init = {}) => {
      const { auth: creds, body, ...rest2 } = init;
      const headers = new Headers(rest2.headers);
      const pair = creds === undefined ? (['admin', USERS.admin] as [string, string]) : creds;
      if (pair && !headers.has('authorization')) headers.set('authorization', basicAuth(pair[0], pair[1]));
      const payload = Buffer.isBuffer(body) ? new Uint8Array(body) : body;
      return fetch(url + path, { ...rest2, body: payload, headers, redirect: 'manual' });
    },
    stop: async () => {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Every file under `root` with its content hash: compared before and after a refused request. The metadata store's
 * SQLite file stands for its logical content (test/helpers/metadata-dump.ts) and its WAL companions are left out;
 * so are the write journal's segments: they log the writes and removals a refused request made on its way (an
 * upload's marker created, then removed), not what the registry stores.
 */
export async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(dir, e.name);
      if (dir === root && e.name === JOURNAL_DIR) continue;
      const rel = relative(root, p);
      if (e.isDirectory()) {
        out[rel + '/'] = 'dir';
        await walk(p);
      } else if (rel === METADATA_FILE) out[rel] = metadataDump(p);
      else if (isMetadataCompanion(rel)) continue;
      else
        out[rel] = createHash('sha256')
          .update(await readFile(p))
          .digest('hex');
    }
  };
  await walk(root);
  return out;
}

export async function pushBlob(
  reg: TestRegistry,
  repo: string,
  data: Buffer | string,
  auth?: [string, string],
): Promise<string> {
  const digest = sha256(data);
  const res = await reg.fetch(`/v2/${repo}/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    body: data,
    auth,
    headers: { 'content-type': 'application/octet-stream' },
  });
  if (res.status !== 201) throw new Error(`push blob: ${res.status} ${await res.text()}`);
  return digest;
}

export interface PushedImage {
  manifest: Buffer;
  digest: string;
  config: string;
  layers: string[];
}

/** Pushes an OCI image (config + layers) and its manifest under `tag`. */
export async function pushImage(
  reg: TestRegistry,
  repo: string,
  tag: string,
  opts: { layers?: string[]; extra?: Record<string, unknown>; mediaType?: string } = {},
): Promise<PushedImage> {
  const configBody = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    tag,
    rootfs: { type: 'layers', diff_ids: [] },
  });
  const config = await pushBlob(reg, repo, configBody);
  const layers: string[] = [];
  const layerDescs = [];
  for (const l of opts.layers ?? [`layer of ${repo}:${tag}`]) {
    const d = await pushBlob(reg, repo, l);
    layers.push(d);
    layerDescs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: d, size: Buffer.byteLength(l) });
  }
  const mediaType = opts.mediaType ?? 'application/vnd.oci.image.manifest.v1+json';
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: {
        mediaType: mediaType.includes('docker')
          ? 'application/vnd.docker.container.image.v1+json'
          : 'application/vnd.oci.image.config.v1+json',
        digest: config,
        size: Buffer.byteLength(configBody),
      },
      layers: layerDescs,
      ...opts.extra,
    }),
  );
  const res = await reg.fetch(`/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    body: manifest,
    headers: { 'content-type': mediaType },
  });
  if (res.status !== 201) throw new Error(`push manifest: ${res.status} ${await res.text()}`);
  return { manifest, digest: sha256(manifest), config, layers };
}

/** A request whose path is sent byte for byte (fetch would normalise `..` away). */
export function rawRequest(reg: TestRegistry, method: string, path: string, body?: string): Promise<Response> {
  return new Promise((resolvePromise, reject) => {
    const url = new URL(reg.url);
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        headers: {
          authorization: basicAuth('admin', USERS.admin as string),
          'content-length': Buffer.byteLength(body ?? ''),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
          resolvePromise(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 0, headers }));
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export async function errorCode(res: Response): Promise<string | undefined> {
  const body = (await res.json()) as { errors?: { code: string }[] };
  return body.errors?.[0]?.code;
}
