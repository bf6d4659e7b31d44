/**
 * Builds real OCI image layouts on disk (gzip'd tar layers made by GNU tar, configs, manifests, and indexes for
 * multi-arch images) that a real client (skopeo) then pushes to the registry under test.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { execa } from 'execa';

export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
  created: string;
  /** Files of the image's own layer: path → content. */
  files: Record<string, string | Buffer>;
  /** Files of a first, shared layer: the same content gives the same blob in every image that uses it. */
  base?: Record<string, string | Buffer>;
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  labels?: Record<string, string>;
  exposedPorts?: string[];
}

export interface BuiltImage {
  /** `oci:<dir>:<ref>` for skopeo. */
  source: string;
  digest: string;
  mediaType: string;
  /** Bytes of the top manifest (or index). */
  size: number;
  /** Per platform: the image manifest's digest and its total size (config + layers). */
  platforms: { platform: string; digest: string; size: number; created: string }[];
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function writeBlob(dir: string, data: Buffer): Promise<{ digest: string; size: number }> {
  const hex = sha256(data);
  const path = join(dir, 'blobs', 'sha256', hex);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, data);
  return { digest: `sha256:${hex}`, size: data.length };
}

async function layerTar(files: Record<string, string | Buffer>): Promise<Buffer> {
  const root = await mkdtemp(join(tmpdir(), 'regctl-layer-'));
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
  const { stdout } = await execa(
    'tar',
    ['-C', root, '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@1700000000', '-cf', '-', '.'],
    { encoding: 'buffer' },
  );
  return gzipSync(Buffer.from(stdout), { level: 6 });
}

async function imageManifest(dir: string, p: PlatformSpec): Promise<{ digest: string; size: number; total: number }> {
  const tars = [...(p.base ? [await layerTar(p.base)] : []), await layerTar(p.files)];
  const diffIds = tars.map((t) => `sha256:${sha256(gunzipSync(t))}`);
  const layers = [];
  for (const t of tars) layers.push(await writeBlob(dir, t));
  const config = {
    created: p.created,
    architecture: p.architecture,
    os: p.os,
    ...(p.variant ? { variant: p.variant } : {}),
    config: {
      Entrypoint: p.entrypoint ?? null,
      Cmd: p.cmd ?? null,
      Env: p.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Labels: p.labels ?? {},
      ExposedPorts: Object.fromEntries((p.exposedPorts ?? []).map((port) => [port, {}])),
      WorkingDir: '/app',
    },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: [
      ...(p.base
        ? [{ created: '2026-09-01T00:00:00Z', created_by: `ADD base.tar / # ${Object.keys(p.base).join(' ')}` }]
        : []),
      { created: '2026-09-01T00:00:00Z', created_by: 'ENV PATH=/usr/local/bin:/usr/bin:/bin', empty_layer: true },
      { created: p.created, created_by: `COPY . / # ${Object.keys(p.files).join(' ')}` },
    ],
  };
  const cfg = await writeBlob(dir, Buffer.from(JSON.stringify(config)));
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...l })),
  };
  const m = await writeBlob(dir, Buffer.from(JSON.stringify(manifest)));
  return { ...m, total: cfg.size + layers.reduce((n, l) => n + l.size, 0) };
}

/** Writes an OCI layout holding one image (one platform) or an index (several), under the ref `ref`. */
export async function buildOciImage(platforms: PlatformSpec[], ref = 'image'): Promise<BuiltImage> {
  const dir = await mkdtemp(join(tmpdir(), 'regctl-oci-'));
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const built = [];
  for (const p of platforms) {
    const m = await imageManifest(dir, p);
    built.push({ spec: p, ...m });
  }
  let top: { mediaType: string; digest: string; size: number };
  if (built.length === 1) {
    top = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: built[0]!.digest, size: built[0]!.size };
  } else {
    const index = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: built.map((b) => ({
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: b.digest,
        size: b.size,
        platform: {
          os: b.spec.os,
          architecture: b.spec.architecture,
          ...(b.spec.variant ? { variant: b.spec.variant } : {}),
        },
      })),
    };
    top = {
      mediaType: 'application/vnd.oci.image.index.v1+json',
      ...(await writeBlob(dir, Buffer.from(JSON.stringify(index)))),
    };
  }
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ ...top, annotations: { 'org.opencontainers.image.ref.name': ref } }],
    }),
  );
  return {
    source: `oci:${dir}:${ref}`,
    digest: top.digest,
    mediaType: top.mediaType,
    size: top.size,
    platforms: built.map((b) => ({
      platform: [b.spec.os, b.spec.architecture, b.spec.variant].filter(Boolean).join('/'),
      digest: b.digest,
      size: b.total,
      created: b.spec.created,
    })),
  };
}

/** Pushes with skopeo (all platforms of an index), plain HTTP to a loopback registry. */
export async function skopeoPush(source: string, registryHost: string, target: string, creds: string): Promise<void> {
  await execa('skopeo', [
    'copy',
    '--quiet',
    '--all',
    '--preserve-digests',
    '--dest-tls-verify=false',
    '--dest-creds',
    creds,
    source,
    `docker://${registryHost}/${target}`,
  ]);
}

/** Adds a tag to an image already in the registry, with skopeo copying registry to registry. */
export async function skopeoTag(registryHost: string, from: string, to: string, creds: string): Promise<void> {
  await execa('skopeo', [
    'copy',
    '--quiet',
    '--all',
    '--preserve-digests',
    '--src-tls-verify=false',
    '--dest-tls-verify=false',
    '--src-creds',
    creds,
    '--dest-creds',
    creds,
    `docker://${registryHost}/${from}`,
    `docker://${registryHost}/${to}`,
  ]);
}
