import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { randomBuffer } from '../lib/data.js';
import { VerifyError, expectDigestHeader, expectStatus } from '../lib/http.js';
import { timed } from '../lib/load.js';
import type { PhaseSpec, Step } from '../lib/phase.js';
import { OCI_INDEX, OCI_MANIFEST } from '../lib/registry-ops.js';
import type { Sizes } from '../lib/sizes.js';
import { mbPerSecond } from '../lib/stats.js';
import type { Credentials } from './context.js';

const exec = promisify(execFile);
const MiB = 1024 * 1024;
const LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const TAG = 'bench';

/** A ustar archive holding one regular file. */
export function tarOneFile(name: string, data: Buffer): Buffer {
  const header = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string): void => {
    header.write(value.slice(0, length), offset, length, 'latin1');
  };
  const octal = (value: number, length: number): string => `${value.toString(8).padStart(length - 1, '0')}\0`;
  field(0, 100, name);
  field(100, 8, octal(0o644, 8));
  field(108, 8, octal(0, 8));
  field(116, 8, octal(0, 8));
  field(124, 12, octal(data.length, 12));
  field(136, 12, octal(0, 12));
  field(148, 8, '        ');
  field(156, 1, '0');
  field(257, 6, 'ustar\0');
  field(263, 2, '00');
  let sum = 0;
  for (const byte of header) sum += byte;
  field(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  const padding = (512 - (data.length % 512)) % 512;
  return Buffer.concat([header, data, Buffer.alloc(padding), Buffer.alloc(1024)]);
}

const hex = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

export interface OciLayout {
  dir: string;
  manifestDigest: string;
  blobDigests: string[];
  layerBytes: number;
}

/**
 * An OCI image layout with `layers` gzip layers of random (incompressible) content totalling about `bytes`,
 * reused from `cacheDir` when an identical one was made before.
 */
export async function makeOciLayout(cacheDir: string, layers: number, bytes: number): Promise<OciLayout> {
  const dir = join(cacheDir, `oci-${layers}x${bytes}`);
  const summaryFile = join(dir, 'bench-summary.json');
  try {
    return JSON.parse(await readFile(summaryFile, 'utf8')) as OciLayout;
  } catch {
    // not made yet
  }
  await rm(dir, { recursive: true, force: true });
  const blobsDir = join(dir, 'blobs/sha256');
  await mkdir(blobsDir, { recursive: true });
  const layerDescriptors: { mediaType: string; digest: string; size: number }[] = [];
  const diffIds: string[] = [];
  let layerBytes = 0;
  for (let i = 0; i < layers; i++) {
    const tar = tarOneFile(`layer-${i}.bin`, randomBuffer(Math.floor(bytes / layers)));
    diffIds.push(`sha256:${hex(tar)}`);
    const gz = gzipSync(tar, { level: 1 });
    const digest = hex(gz);
    await writeFile(join(blobsDir, digest), gz);
    layerDescriptors.push({ mediaType: LAYER_GZIP, digest: `sha256:${digest}`, size: gz.length });
    layerBytes += gz.length;
  }
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: diffIds } }),
  );
  await writeFile(join(blobsDir, hex(config)), config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: `sha256:${hex(config)}`,
        size: config.length,
      },
      layers: layerDescriptors,
    }),
  );
  await writeFile(join(blobsDir, hex(manifest)), manifest);
  const manifestDigest = `sha256:${hex(manifest)}`;
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        {
          mediaType: OCI_MANIFEST,
          digest: manifestDigest,
          size: manifest.length,
          annotations: { 'org.opencontainers.image.ref.name': TAG },
        },
      ],
    }),
  );
  const layout: OciLayout = {
    dir,
    manifestDigest,
    blobDigests: [...layerDescriptors.map((l) => l.digest), `sha256:${hex(config)}`, manifestDigest].sort(),
    layerBytes,
  };
  await writeFile(summaryFile, JSON.stringify(layout));
  return layout;
}

/** Checks a layout skopeo wrote: the tagged manifest is the one pushed, every blob hashes to its name. */
async function verifyLayout(dir: string, layout: OciLayout): Promise<void> {
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const got = index.manifests.map((m) => m.digest);
  if (!got.includes(layout.manifestDigest))
    throw new VerifyError(`copied out manifest ${got.join(',')}, expected ${layout.manifestDigest}`);
  const names = (await readdir(join(dir, 'blobs/sha256'))).sort();
  const want = layout.blobDigests.map((d) => d.slice('sha256:'.length));
  if (names.join() !== want.join())
    throw new VerifyError(`copied out blobs ${names.length}, expected ${want.length} with the same digests`);
  for (const name of names) {
    const data = await readFile(join(dir, 'blobs/sha256', name));
    if (hex(data) !== name) throw new VerifyError(`copied out blob ${name} hashes to ${hex(data)}`);
  }
}

export function skopeoPhase(sizes: Sizes, creds: Credentials, layout: () => OciLayout, workDir: string): PhaseSpec {
  const repo = 'bench/skopeo';
  const credArg = `${creds.user}:${creds.password}`;
  const copyIn: Step = async (server) => {
    const l = layout();
    const dest = `docker://127.0.0.1:${server.port}/${repo}:${TAG}`;
    const args = [
      'copy',
      '--quiet',
      '--preserve-digests',
      '--dest-tls-verify=false',
      '--dest-creds',
      credArg,
      `oci:${l.dir}:${TAG}`,
      dest,
    ];
    const { seconds } = await timed(() => exec('skopeo', args, { maxBuffer: 16 * MiB }));
    const c = server.client(creds, 1);
    try {
      const res = await c.request('HEAD', `/v2/${repo}/manifests/${TAG}`, {
        headers: { accept: OCI_MANIFEST },
        consume: 'discard',
      });
      expectStatus(res, 200, 'HEAD the manifest skopeo pushed');
      expectDigestHeader(res, l.manifestDigest, 'HEAD the manifest skopeo pushed');
    } finally {
      c.close();
    }
    return { inSeconds: seconds, inMBps: mbPerSecond(l.layerBytes, seconds) };
  };
  const copyOut: Step = async (server) => {
    const l = layout();
    const out = join(workDir, `skopeo-out-${server.name}`);
    await rm(out, { recursive: true, force: true });
    const src = `docker://127.0.0.1:${server.port}/${repo}:${TAG}`;
    const args = [
      'copy',
      '--quiet',
      '--preserve-digests',
      '--src-tls-verify=false',
      '--src-creds',
      credArg,
      src,
      `oci:${out}:${TAG}`,
    ];
    const { seconds } = await timed(() => exec('skopeo', args, { maxBuffer: 16 * MiB }));
    await verifyLayout(out, l);
    await rm(out, { recursive: true, force: true });
    return { outSeconds: seconds, outMBps: mbPerSecond(l.layerBytes, seconds) };
  };
  const total = `${Math.round(sizes.skopeoBytes / MiB)} MiB`;
  return {
    id: 'skopeo',
    title: `skopeo copy of a ${sizes.skopeoLayers}-layer, ${total} image, in and out`,
    description:
      `An OCI layout with ${sizes.skopeoLayers} gzip layers of random content (${total} in all) is copied into each ` +
      'registry with `skopeo copy --preserve-digests oci:DIR:bench docker://127.0.0.1:PORT/bench/skopeo:bench` ' +
      "(HEAD of the manifest then checked against the layout's digest), then copied out to a new OCI layout whose " +
      'index and every blob are hashed and compared with the source.',
    steps: [copyIn, copyOut],
    metrics: [
      { id: 'inSeconds', label: 'skopeo copy in (push)', unit: 's', better: 'lower' },
      { id: 'inMBps', label: 'skopeo copy in, layer throughput', unit: 'MB/s', better: 'higher' },
      { id: 'outSeconds', label: 'skopeo copy out (pull)', unit: 's', better: 'lower' },
      { id: 'outMBps', label: 'skopeo copy out, layer throughput', unit: 'MB/s', better: 'higher' },
    ],
  };
}
