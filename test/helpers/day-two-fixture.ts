/**
 * Shared by the day-two unit tests: a real registry (`createRegistryServer`) on a loopback port over a temp data
 * directory, with the auth files of a stack directory, and a tiny OCI client to push and pull through it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseStackConfig } from '../../src/config/schema.js';
import type { Output } from '../../src/common/io.js';
import { createRegistryServer, type RegistryServer, type RegistryServerOptions } from '../../src/registry/server.js';
import { renderStack, writeStack } from '../../src/stack/render.js';
import { hashPassword } from '../../src/stack/htpasswd.js';
import { basicAuth } from './auth.js';

export interface Creds {
  username: string;
  password: string;
}

export const authHeaders = (c: Creds | undefined): Record<string, string> =>
  c ? { authorization: basicAuth(c.username, c.password) } : {};

export const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** An Output that records lines (for asserting what a person would read). */
export function captureOutput(): Output & { lines: string[]; json: (v: unknown) => void; docs: unknown[] } {
  const lines: string[] = [];
  const docs: unknown[] = [];
  const push = (prefix: string) => (t?: string) => lines.push(`${prefix}${t ?? ''}`);
  const out = {
    lines,
    docs,
    line: push(''),
    step: push('→ '),
    ok: push('✓ '),
    warn: push('! '),
    error: push('✗ '),
    progress: push('… '),
    json: (v: unknown) => docs.push(v),
    isTTY: false,
  } as unknown as Output & { lines: string[]; docs: unknown[] };
  Object.defineProperty(out, 'color', { value: new Proxy({}, { get: () => (s: string) => s }) });
  return out;
}

export interface Fixture {
  root: string;
  stackDir: string;
  dataDir: string;
  admin: Creds;
  url: string;
  server: RegistryServer;
  env: NodeJS.ProcessEnv;
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** A stack directory rendered by the stack module, and a registry serving its auth files (with `server` options). */
export async function startFixture(
  server: Partial<RegistryServerOptions> = {},
  config: Record<string, unknown> = {},
): Promise<Fixture> {
  const root = await mkdtemp(join(tmpdir(), 'regctl-day-two-'));
  const stackDir = join(root, 'stack');
  const dataDir = join(root, 'data');
  const parsed = parseStackConfig({ version: 1, name: 'daytwo', host: 'example.test', ...config });
  if (!parsed.config) throw new Error('fixture config invalid');
  const admin = { username: 'admin', password: randomBytes(18).toString('base64url') };
  await writeStack(
    stackDir,
    renderStack(parsed.config, { secrets: { ...admin, htpasswd: `admin:${hashPassword(admin.password, 4)}\n` } }),
  );
  let registry: RegistryServer;
  let url = '';
  const start = async () => {
    registry = createRegistryServer({
      ...server,
      dataDir,
      htpasswd: join(stackDir, 'auth/htpasswd'),
      access: join(stackDir, 'auth/access.yaml'),
      port: 0,
      log: () => undefined,
      authPollMs: 100,
      throttle: { maxFailures: 10_000 },
    });
    url = (await registry.listen()).url;
  };
  await start();
  const fixture: Fixture = {
    root,
    stackDir,
    dataDir,
    admin,
    get url() {
      return url;
    },
    get server() {
      return registry;
    },
    get env() {
      return { REGCTL_REGISTRY_URL: url };
    },
    async restart() {
      await registry.close();
      await start();
    },
    async close() {
      await registry.close();
      await rm(root, { recursive: true, force: true });
    },
  };
  return fixture;
}

export async function pushBlob(
  url: string,
  repo: string,
  data: Buffer,
  creds: Creds | undefined,
): Promise<{ digest: string; status: number }> {
  const digest = sha(data);
  const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    headers: {
      ...authHeaders(creds),
      'content-type': 'application/octet-stream',
      'content-length': String(data.length),
    },
    body: new Uint8Array(data),
  });
  await res.arrayBuffer();
  return { digest, status: res.status };
}

export async function putManifest(
  url: string,
  repo: string,
  ref: string,
  manifest: unknown,
  mediaType: string,
  creds: Creds | undefined,
): Promise<{ digest: string; status: number; body: string }> {
  const body = Buffer.from(JSON.stringify(manifest));
  const res = await fetch(`${url}/v2/${repo}/manifests/${ref}`, {
    method: 'PUT',
    headers: { ...authHeaders(creds), 'content-type': mediaType },
    body: new Uint8Array(body),
  });
  return { digest: sha(body), status: res.status, body: await res.text() };
}

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** Pushes an image of `layers` random layers (sizes in bytes) plus a config; returns the manifest digest and blob digests. */
export async function pushImage(
  url: string,
  repo: string,
  tag: string,
  layers: Buffer[],
  creds: Creds | undefined,
  extra: Record<string, unknown> = {},
): Promise<{ digest: string; blobs: string[] }> {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [] },
      n: randomBytes(4).toString('hex'),
    }),
  );
  const blobs: string[] = [];
  const cfg = await pushBlob(url, repo, config, creds);
  if (cfg.status !== 201) throw new Error(`config push: ${cfg.status}`);
  const layerDescs = [];
  for (const l of layers) {
    const r = await pushBlob(url, repo, l, creds);
    if (r.status !== 201) throw new Error(`layer push: ${r.status}`);
    blobs.push(r.digest);
    layerDescs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: r.digest, size: l.length });
  }
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfg.digest, size: config.length },
    layers: layerDescs,
    ...extra,
  };
  const m = await putManifest(url, repo, tag, manifest, OCI_MANIFEST, creds);
  if (m.status !== 201) throw new Error(`manifest push: ${m.status} ${m.body}`);
  return { digest: m.digest, blobs: [cfg.digest, ...blobs] };
}

export async function getManifestDigest(
  url: string,
  repo: string,
  ref: string,
  creds: Creds | undefined,
): Promise<{ status: number; digest: string | null }> {
  const res = await fetch(`${url}/v2/${repo}/manifests/${ref}`, {
    headers: { ...authHeaders(creds), accept: `${OCI_MANIFEST}, ${OCI_INDEX}` },
  });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, digest: res.status === 200 ? sha(body) : null };
}

export async function getBlob(
  url: string,
  repo: string,
  digest: string,
  creds: Creds | undefined,
): Promise<{ status: number; digest: string | null }> {
  const res = await fetch(`${url}/v2/${repo}/blobs/${digest}`, { headers: authHeaders(creds) });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, digest: res.status === 200 ? sha(body) : null };
}
