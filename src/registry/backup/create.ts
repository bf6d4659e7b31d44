/**
 * Making a backup of a live store in two phases:
 * 1. behind the read-only fence (once writes already in flight have finished), `snapshotIndex` copies the
 *    registry's in-memory index of tags and revisions: no I/O, so the fence lasts milliseconds at any size;
 * 2. with the fence down, `captureState` derives every link file from that snapshot and the (immutable)
 *    manifests, and `backupStream` streams the manifest, the links and every blob they name while the registry
 *    serves on: blobs are content-addressed, and each is re-hashed on the way out.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { pack as tarPack, type Pack } from 'tar-stream';
import { tryParseDigest, type Digest } from '../reference.js';
import { mustExist } from '../manifest.js';
import { pathFor } from '../storage/paths.js';
import type { RegistryStore } from '../storage/store.js';
import type { RepositorySnapshot } from '../metadata/store.js';
import { FORMAT, FORMAT_VERSION, MANIFEST_NAME, blobPath, type BackupFile, type BackupManifest } from './manifest.js';

export interface CapturedState {
  /** Link files under `_manifests` and `_layers`, with their content. */
  files: { path: string; content: Buffer }[];
  repositories: { name: string; tags: number; manifests: number }[];
  /** Every digest a layer or revision link names, sorted, without duplicates. */
  blobs: Digest[];
}

/** Every repository's tags and revisions as the registry serves them, as of one moment (the store's snapshot). */
export interface IndexSnapshot {
  repositories: RepositorySnapshot[];
}

/**
 * Copies the index in one read of the metadata store (no storage I/O): consistent across replicas writing
 * meanwhile, and short enough that the fence around it lasts only as long as this process's writes in flight.
 */
export async function snapshotIndex(store: RegistryStore): Promise<IndexSnapshot> {
  return { repositories: await store.index.snapshot() };
}

/**
 * The link files of a snapshot, written as the registry writes them (a digest, no newline): each revision, each
 * tag's current and index link, a layer link for every blob a revision names, and a referrers link for every
 * revision with a subject. Manifests are read from blob storage (immutable), after the fence has lifted.
 */
export async function captureState(store: RegistryStore, snapshot: IndexSnapshot): Promise<CapturedState> {
  const files = new Map<string, Buffer>();
  const blobs = new Map<string, Digest>();
  const link = (path: string, d: Digest) => files.set(path, Buffer.from(d.value));
  for (const repo of snapshot.repositories) {
    const name = repo.name;
    for (const value of repo.revisions) {
      const digest = tryParseDigest(value);
      if (!digest) continue;
      link(pathFor({ kind: 'revisionLink', name, digest }), digest);
      blobs.set(digest.value, digest);
      const m = await store.manifests.read(digest);
      if (!m) continue;
      for (const d of m.info.blobs) {
        if (!mustExist(d)) continue;
        const bd = tryParseDigest(d.digest);
        if (!bd) continue;
        link(pathFor({ kind: 'layerLink', name, digest: bd }), bd);
        blobs.set(bd.value, bd);
      }
      const subject = m.info.subject ? tryParseDigest(m.info.subject.digest) : undefined;
      if (subject) link(pathFor({ kind: 'referrerLink', name, subject, digest }), digest);
    }
    for (const [tag, value] of repo.tags) {
      const digest = tryParseDigest(value);
      if (!digest) continue;
      link(pathFor({ kind: 'tagCurrentLink', name, tag }), digest);
      link(pathFor({ kind: 'tagIndexLink', name, tag, digest }), digest);
    }
  }
  return {
    files: [...files]
      .map(([path, content]) => ({ path, content }))
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
    repositories: snapshot.repositories.map((r) => ({
      name: r.name,
      tags: r.tags.length,
      manifests: r.revisions.length,
    })),
    blobs: [...blobs.values()].sort((a, b) => (a.value < b.value ? -1 : 1)),
  };
}

export interface BackupOptions {
  /** Digests held by a previous backup: listed in `baseBlobs`, not copied. */
  exclude?: ReadonlySet<string>;
  base?: { id: string; createdAt: string } | null;
  fenceMs: number;
  regctlVersion: string;
  now?: Date;
}

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

async function hashBlob(store: RegistryStore, digest: Digest, algorithm: string): Promise<string> {
  const h = createHash(algorithm);
  for await (const chunk of await store.blobs.open(digest)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** The manifest of a backup of `state`: stats every blob (missing ones are reported, not fatal). */
export async function buildManifest(
  store: RegistryStore,
  state: CapturedState,
  opts: BackupOptions,
): Promise<{ manifest: BackupManifest; blobs: { digest: Digest; file: BackupFile }[] }> {
  const files: BackupFile[] = state.files.map((f) => ({
    path: f.path,
    size: f.content.length,
    sha256: sha256(f.content),
  }));
  // Without a named base an exclude list would make an archive nothing can restore, so it is ignored.
  const base = opts.exclude && opts.exclude.size > 0 && opts.base ? opts.base : null;
  const baseBlobs: BackupFile[] = [];
  const blobs: { digest: Digest; file: BackupFile }[] = [];
  const missingBlobs: string[] = [];
  for (const digest of state.blobs) {
    store.index.noteUse(digest.value);
    const size = await store.blobs.size(digest);
    if (size === undefined) {
      missingBlobs.push(digest.value);
      continue;
    }
    const file: BackupFile = {
      path: blobPath(digest.algorithm, digest.hex),
      size,
      sha256: digest.algorithm === 'sha256' ? digest.hex : await hashBlob(store, digest, 'sha256'),
    };
    if (base && opts.exclude?.has(digest.value)) baseBlobs.push(file);
    else {
      files.push(file);
      blobs.push({ digest, file });
    }
  }
  const manifest: BackupManifest = {
    format: FORMAT,
    formatVersion: FORMAT_VERSION,
    id: randomUUID(),
    regctlVersion: opts.regctlVersion,
    createdAt: (opts.now ?? new Date()).toISOString(),
    fenceMs: opts.fenceMs,
    base,
    repositories: state.repositories,
    files,
    baseBlobs,
    missingBlobs,
  };
  return { manifest, blobs };
}

function writeBuffer(p: Pack, name: string, data: Buffer, mtime: Date): Promise<void> {
  return new Promise((resolve, reject) => {
    p.entry({ name, size: data.length, mode: 0o644, mtime }, data, (err) => (err ? reject(err) : resolve()));
  });
}

async function writeBlob(p: Pack, store: RegistryStore, digest: Digest, file: BackupFile, mtime: Date): Promise<void> {
  const src = await store.blobs.open(digest);
  const hash = createHash(digest.algorithm);
  let sink!: ReturnType<Pack['entry']>;
  const written = new Promise<void>((resolve, reject) => {
    sink = p.entry({ name: file.path, size: file.size, mode: 0o644, mtime }, (err) => (err ? reject(err) : resolve()));
  });
  written.catch(() => undefined);
  let bytes = 0;
  try {
    for await (const chunk of src) {
      const buf = chunk as Buffer;
      bytes += buf.length;
      if (bytes > file.size) break;
      hash.update(buf);
      if (!sink.write(buf)) await new Promise<void>((r) => sink.once('drain', () => r()));
    }
  } finally {
    src.destroy();
  }
  if (bytes !== file.size)
    throw new Error(`blob ${digest.value} changed size while it was copied (${bytes} bytes, expected ${file.size})`);
  if (hash.digest('hex') !== digest.hex)
    throw new Error(`blob ${digest.value} does not match its digest in storage: run \`GET /admin/v1/fsck\``);
  sink.end(undefined);
  await written;
}

/**
 * The archive as a byte stream: manifest, link files, blobs. A blob that no longer matches its digest or
 * size aborts the stream with an error (the client then holds an incomplete archive it must discard).
 */
export function backupStream(
  store: RegistryStore,
  state: CapturedState,
  built: { manifest: BackupManifest; blobs: { digest: Digest; file: BackupFile }[] },
  onBlob?: (file: BackupFile) => void,
): Readable {
  const p = tarPack();
  const mtime = new Date(built.manifest.createdAt);
  const run = async () => {
    await writeBuffer(p, MANIFEST_NAME, Buffer.from(JSON.stringify(built.manifest, null, 2) + '\n'), mtime);
    for (const f of state.files) await writeBuffer(p, f.path, f.content, mtime);
    for (const b of built.blobs) {
      await writeBlob(p, store, b.digest, b.file, mtime);
      onBlob?.(b.file);
    }
    p.finalize();
  };
  const out = Readable.from(p as AsyncIterable<Buffer>, { objectMode: false });
  run().catch((err: unknown) => out.destroy(err instanceof Error ? err : new Error(String(err))));
  return out;
}
