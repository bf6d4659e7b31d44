import { VerifyError, bodyLength, expectDigestHeader, expectStatus, sha256 } from './http.js';
import type { Body, HttpClient } from './http.js';
import { leanGetLoad, type LeanLoadResult } from './lean-load.js';

/** OCI Distribution operations the phases time, each verifying what the registry answers. */

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';
const MANIFEST_ACCEPT = [OCI_MANIFEST, OCI_INDEX, 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');

async function startUpload(client: HttpClient, repo: string): Promise<string> {
  const res = await client.request('POST', `/v2/${repo}/blobs/uploads/`, { consume: 'buffer' });
  expectStatus(res, 202, `POST /v2/${repo}/blobs/uploads/`);
  return client.pathOf(res.headers.location);
}

function withDigest(path: string, digest: string): string {
  return `${path}${path.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}

/** POST then one PUT carrying the whole blob. */
export async function pushBlobMonolithic(client: HttpClient, repo: string, body: Body, digest: string): Promise<void> {
  const location = await startUpload(client, repo);
  const res = await client.request('PUT', withDigest(location, digest), {
    body,
    headers: { 'content-type': 'application/octet-stream' },
  });
  expectStatus(res, 201, `PUT blob ${digest}`);
  expectDigestHeader(res, digest, `PUT blob ${digest}`);
}

/** POST, one PATCH per chunk with its Content-Range, then a PUT with no body that closes the upload. */
export async function pushBlobChunked(
  client: HttpClient,
  repo: string,
  chunks: Iterable<Buffer>,
  digest: string,
): Promise<number> {
  let location = await startUpload(client, repo);
  let offset = 0;
  let patches = 0;
  for (const chunk of chunks) {
    const end = offset + chunk.length - 1;
    const res = await client.request('PATCH', location, {
      body: chunk,
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${end}` },
    });
    expectStatus(res, 202, `PATCH ${offset}-${end}`);
    const range = res.headers.range;
    if (range !== `0-${end}` && range !== `bytes=0-${end}`) {
      throw new VerifyError(`PATCH ${offset}-${end}: Range ${String(range)}, expected 0-${end}`);
    }
    location = client.pathOf(res.headers.location);
    offset = end + 1;
    patches += 1;
  }
  const res = await client.request('PUT', withDigest(location, digest));
  expectStatus(res, 201, `PUT (close chunked upload) ${digest}`);
  expectDigestHeader(res, digest, `PUT (close chunked upload) ${digest}`);
  return patches;
}

/** GET a blob, hashing it as it streams; checks status, Docker-Content-Digest, byte count and the bytes' digest. */
export async function pullBlob(client: HttpClient, repo: string, digest: string, size: number): Promise<void> {
  const res = await client.request('GET', `/v2/${repo}/blobs/${digest}`, { consume: 'hash' });
  expectStatus(res, 200, `GET blob ${digest}`);
  expectDigestHeader(res, digest, `GET blob ${digest}`);
  if (res.bytes !== size) throw new VerifyError(`GET blob ${digest}: ${res.bytes} bytes, expected ${size}`);
  if (res.digest !== digest) throw new VerifyError(`GET blob ${digest}: content hashes to ${res.digest}`);
}

export async function putManifest(
  client: HttpClient,
  repo: string,
  reference: string,
  manifest: Buffer,
  mediaType: string,
  digest = sha256(manifest),
): Promise<string> {
  const res = await client.request('PUT', `/v2/${repo}/manifests/${reference}`, {
    body: manifest,
    headers: { 'content-type': mediaType },
  });
  expectStatus(res, 201, `PUT manifest ${repo}:${reference}`);
  expectDigestHeader(res, digest, `PUT manifest ${repo}:${reference}`);
  return digest;
}

export async function getManifest(client: HttpClient, repo: string, reference: string, digest: string): Promise<void> {
  const res = await client.request('GET', `/v2/${repo}/manifests/${reference}`, {
    headers: { accept: MANIFEST_ACCEPT },
  });
  expectStatus(res, 200, `GET manifest ${repo}:${reference}`);
  expectDigestHeader(res, digest, `GET manifest ${repo}:${reference}`);
  if (res.digest !== digest) throw new VerifyError(`GET manifest ${repo}:${reference}: body hashes to ${res.digest}`);
}

/**
 * Fetches one manifest from every server `client` reaches for `seconds` through the lean load client, after one
 * checked GET per server (status, digest header, body hash): during the load, every response must carry exactly
 * the manifest's bytes.
 */
export async function leanManifestLoad(
  client: HttpClient,
  target: { repo: string; reference: string; manifest: Buffer; digest: string },
  connections: number,
  seconds: number,
): Promise<LeanLoadResult> {
  const origins = client.origins();
  for (let i = 0; i < origins.length; i++) await getManifest(client, target.repo, target.reference, target.digest);
  return leanGetLoad({
    origins,
    path: `/v2/${target.repo}/manifests/${target.reference}`,
    headers: { accept: MANIFEST_ACCEPT, ...(client.authorization ? { authorization: client.authorization } : {}) },
    expected: target.manifest,
    connections,
    seconds,
  });
}

export async function headManifest(
  client: HttpClient,
  repo: string,
  reference: string,
  digest: string,
  size: number,
): Promise<void> {
  const res = await client.request('HEAD', `/v2/${repo}/manifests/${reference}`, {
    headers: { accept: MANIFEST_ACCEPT },
    consume: 'discard',
  });
  expectStatus(res, 200, `HEAD manifest ${repo}:${reference}`);
  expectDigestHeader(res, digest, `HEAD manifest ${repo}:${reference}`);
  if (Number(res.headers['content-length']) !== size) {
    throw new VerifyError(`HEAD manifest: Content-Length ${String(res.headers['content-length'])}, expected ${size}`);
  }
}

/** An OCI image manifest referring to `config` and `layers`; `annotations` make otherwise equal manifests distinct. */
export function imageManifest(
  config: { digest: string; size: number },
  layers: { digest: string; size: number }[],
  annotations?: Record<string, string>,
): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ mediaType: OCI_LAYER, digest: l.digest, size: l.size })),
      ...(annotations ? { annotations } : {}),
    }),
  );
}

/** Pushes a small blob monolithically and returns its descriptor. */
export async function pushSmallBlob(
  client: HttpClient,
  repo: string,
  data: Buffer,
): Promise<{ digest: string; size: number }> {
  const digest = sha256(data);
  await pushBlobMonolithic(client, repo, data, digest);
  return { digest, size: bodyLength(data) };
}

export interface ListWalk {
  items: string[];
  pages: number;
  /** Pages that broke pagination: more than `n` entries, or not starting after the previous page's last entry. */
  violations: string[];
}

/**
 * Walks a paginated list (`_catalog` or tags) with `n`, following `Link` headers, and notes each page that does
 * not honour `n` or does not start after the `last` it asked for.
 */
export async function walkList(
  client: HttpClient,
  firstPath: string,
  key: 'repositories' | 'tags',
  n: number,
): Promise<ListWalk> {
  const items: string[] = [];
  let path: string | undefined = firstPath;
  let pages = 0;
  const violations: string[] = [];
  while (path !== undefined) {
    const res = await client.request('GET', path);
    expectStatus(res, 200, `GET ${path}`);
    const parsed = JSON.parse(res.body.toString('utf8')) as Record<string, unknown>;
    const page = parsed[key];
    if (page !== null && page !== undefined && !Array.isArray(page))
      throw new VerifyError(`GET ${path}: no ${key} array`);
    const list = (page ?? []) as string[];
    if (list.length > n) violations.push(`GET ${path}: ${list.length} entries, more than n=${n}`);
    const previous = items[items.length - 1];
    if (previous !== undefined && list[0] !== undefined && list[0] <= previous) {
      violations.push(`GET ${path}: page starts at ${list[0]}, not after ${previous}`);
    }
    items.push(...list);
    pages += 1;
    const link = res.headers.link;
    const match = typeof link === 'string' ? /<([^>]+)>/.exec(link) : null;
    path = match?.[1] !== undefined && list.length > 0 ? client.pathOf(match[1]) : undefined;
  }
  return { items, pages, violations };
}
