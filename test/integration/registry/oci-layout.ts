/** Writes a small OCI image layout (config + gzip tar layers) for clients to copy from, no registry needed. */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A one-file POSIX tar archive. */
function tarOf(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, 'utf8');
  header.write('0000644\0', 100, 8, 'ascii');
  header.write('0000000\0', 108, 8, 'ascii');
  header.write('0000000\0', 116, 8, 'ascii');
  header.write(content.length.toString(8).padStart(11, '0') + '\0', 124, 12, 'ascii');
  header.write('00000000000\0', 136, 12, 'ascii');
  header.write('        ', 148, 8, 'ascii');
  header.write('0', 156, 1, 'ascii');
  header.write('ustar\0', 257, 6, 'ascii');
  header.write('00', 263, 2, 'ascii');
  let sum = 0;
  for (const b of header) sum += b;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, pad, Buffer.alloc(1024)]);
}

export interface LayoutImage {
  dir: string;
  /** Digest of the image manifest. */
  manifestDigest: string;
  layerDigests: string[];
}

export async function writeOciLayout(
  dir: string,
  opts: { tag: string; arch?: string; layers?: number; layerBytes?: number },
): Promise<LayoutImage> {
  await mkdir(join(dir, 'blobs/sha256'), { recursive: true });
  const put = async (b: Buffer) => {
    const hex = sha(b);
    await writeFile(join(dir, 'blobs/sha256', hex), b);
    return { digest: `sha256:${hex}`, size: b.length };
  };
  const layers: { mediaType: string; digest: string; size: number }[] = [];
  const diffIds: string[] = [];
  for (let i = 0; i < (opts.layers ?? 3); i++) {
    const tar = tarOf(`file-${i}.bin`, randomBytes(opts.layerBytes ?? 64 * 1024));
    diffIds.push(`sha256:${sha(tar)}`);
    layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...(await put(gzipSync(tar))) });
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture: opts.arch ?? 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: diffIds },
    }),
  );
  const cfg = await put(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
      layers,
    }),
  );
  const m = await put(manifest);
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...m,
          annotations: { 'org.opencontainers.image.ref.name': opts.tag },
        },
      ],
    }),
  );
  return { dir, manifestDigest: m.digest, layerDigests: layers.map((l) => l.digest) };
}
