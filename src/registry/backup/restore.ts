/**
 * Restoring a backup archive into a data directory (what `regctl restore` runs, inside a one-off container
 * with the stack's volume mounted, or directly on a directory).
 *
 * Nothing outside a staging directory is written until the whole archive has been read and checked: every file
 * against the manifest's size and sha256, every blob against its digest, nothing missing, nothing extra. Only
 * then is the staged tree renamed into place (the previous tree, with `force`, is renamed away first and removed
 * after). A damaged archive leaves the data directory exactly as it was.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { extract as tarExtract, type Header as TarHeader } from 'tar-stream';
import { exists, fsyncDir } from '../../common/fs.js';
import { recoverJournal, syncFilesystem } from '../storage/fs-journal.js';
import {
  MANIFEST_NAME,
  BackupFormatError,
  blobDigestOfPath,
  contentBytes,
  parseBackupManifest,
  type BackupFile,
  type BackupManifest,
} from './manifest.js';

export type RestoreRefusal = 'DAMAGED' | 'NOT_EMPTY' | 'BASE_MISSING';

export class RestoreRefused extends Error {
  readonly reason: RestoreRefusal;
  constructor(reason: RestoreRefusal, message: string) {
    super(message);
    this.name = 'RestoreRefused';
    this.reason = reason;
  }
}

export interface RestoreProgress {
  phase: 'verify' | 'base' | 'move';
  bytes: number;
  totalBytes: number;
  files: number;
  totalFiles: number;
}

export interface RestoreOptions {
  archive: string;
  dataDir: string;
  /** Replace existing data. */
  force?: boolean;
  /** Archives an incremental backup builds on (its base, the base's base…). */
  bases?: string[];
  /** Read and check everything, write nothing. */
  verifyOnly?: boolean;
  onProgress?: (p: RestoreProgress) => void;
}

export interface RestoreResult {
  id: string;
  createdAt: string;
  regctlVersion: string;
  repositories: BackupManifest['repositories'];
  files: number;
  bytes: number;
  /** Existing data was replaced (`force`). */
  replaced: boolean;
  verifyOnly: boolean;
}

const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;
const LAYOUT_DIRS = ['docker/registry/v2/repositories', 'docker/registry/v2/blobs'];

/** True when the data directory holds no repository and no blob (other files, like lost+found, do not count). */
export async function dataDirIsEmpty(dataDir: string): Promise<boolean> {
  for (const d of LAYOUT_DIRS) {
    try {
      if ((await readdir(join(dataDir, d))).length > 0) return false;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return true;
}

async function archiveSource(path: string): Promise<Readable> {
  const fh = await open(path, 'r').catch((err: NodeJS.ErrnoException) => {
    throw new RestoreRefused(
      'DAMAGED',
      `cannot read the archive ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`,
    );
  });
  const magic = Buffer.alloc(2);
  await fh.read(magic, 0, 2, 0);
  await fh.close();
  const raw = createReadStream(path, { highWaterMark: 1024 * 1024 });
  if (magic[0] !== 0x1f || magic[1] !== 0x8b) return raw;
  const gunzip = createGunzip();
  raw.on('error', (err) => gunzip.destroy(err));
  return raw.pipe(gunzip);
}

const damaged = (archive: string, why: string): RestoreRefused =>
  new RestoreRefused('DAMAGED', `the archive ${archive} is damaged: ${why}; nothing was restored`);

/** Opens where one file of the archive goes (restores into storage other than a directory). */
export type FileSink = (path: string) => Promise<Writable>;

interface ExtractPlan {
  /** Files to write, by archive path. */
  want: Map<string, BackupFile>;
  /** Where to write them (a directory, or a sink per file); undefined: check only. */
  into: string | FileSink | undefined;
  progress: RestoreProgress;
  onProgress: ((p: RestoreProgress) => void) | undefined;
}

/** Reads one archive: returns its manifest and extracts (or checks) the files `plan` wants from it. */
async function readArchive(
  archive: string,
  plan: (manifest: BackupManifest) => ExtractPlan,
): Promise<{ manifest: BackupManifest; seen: Set<string> }> {
  const source = await archiveSource(archive);
  const extractor = tarExtract();
  source.on('error', (err) => extractor.destroy(err));
  source.pipe(extractor);
  let manifest: BackupManifest | undefined;
  let current: ExtractPlan | undefined;
  const seen = new Set<string>();
  try {
    for await (const entry of extractor) {
      const { name, type, size } = entry.header;
      if (!manifest) {
        manifest = await manifestOfFirstEntry(archive, entry);
        current = plan(manifest);
        continue;
      }
      const p = current as ExtractPlan;
      const listed = fileIndex(manifest).get(name);
      if (type !== 'file' || !listed) throw damaged(archive, `it holds ${name}, which its manifest does not list`);
      if (seen.has(name)) throw damaged(archive, `it holds ${name} twice`);
      seen.add(name);
      if (size !== listed.size) throw damaged(archive, `${name} is ${size} bytes, the manifest says ${listed.size}`);
      const wanted = p.want.has(name);
      await copyEntry(entry as unknown as AsyncIterable<Buffer>, listed, wanted ? p.into : undefined, archive, (n) => {
        if (!wanted) return;
        p.progress.bytes += n;
        p.onProgress?.(p.progress);
      });
      if (wanted) {
        p.progress.files++;
        p.onProgress?.(p.progress);
      }
    }
  } catch (err) {
    source.destroy();
    if (err instanceof RestoreRefused) throw err;
    throw damaged(archive, (err as Error).message || 'unreadable tar data');
  }
  if (!manifest) throw damaged(archive, 'it is empty');
  return { manifest, seen };
}

const indexes = new WeakMap<BackupManifest, Map<string, BackupFile>>();
function fileIndex(m: BackupManifest): Map<string, BackupFile> {
  let idx = indexes.get(m);
  if (!idx) {
    idx = new Map(m.files.map((f) => [f.path, f]));
    indexes.set(m, idx);
  }
  return idx;
}

async function copyEntry(
  entry: AsyncIterable<Buffer>,
  file: BackupFile,
  into: string | FileSink | undefined,
  archive: string,
  onBytes: (n: number) => void,
): Promise<void> {
  const sha = createHash('sha256');
  const blob = blobDigestOfPath(file.path);
  let blobHash: Hash | undefined;
  if (blob && blob.algorithm !== 'sha256') {
    try {
      blobHash = createHash(blob.algorithm);
    } catch {
      throw damaged(archive, `${file.path} uses an unknown digest algorithm ${blob.algorithm}`);
    }
  }
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  let sink: Writable | undefined;
  if (typeof into === 'string') {
    const target = join(into, file.path);
    await mkdir(dirname(target), { recursive: true });
    fh = await open(target, 'wx', 0o644);
  } else if (into) sink = await into(file.path);
  let size = 0;
  try {
    for await (const chunk of entry) {
      size += chunk.length;
      sha.update(chunk);
      blobHash?.update(chunk);
      if (fh) await fh.write(chunk);
      if (sink && !sink.write(chunk)) await once(sink, 'drain');
      onBytes(chunk.length);
    }
    if (fh) await fh.sync();
    if (sink)
      await new Promise<void>((resolve, reject) => sink.end((err?: Error | null) => (err ? reject(err) : resolve())));
  } finally {
    await fh?.close();
    if (sink && !sink.writableFinished) sink.destroy();
  }
  if (size !== file.size) throw damaged(archive, `${file.path} is truncated (${size} of ${file.size} bytes)`);
  if (sha.digest('hex') !== file.sha256) throw damaged(archive, `${file.path} does not match its sha256`);
  if (blobHash && blob && blobHash.digest('hex') !== blob.hex)
    throw damaged(archive, `${file.path} does not match its digest`);
}

/**
 * Reads the archive and, for an incremental one, the base blobs from its bases, checking every file, and writes
 * them `into` (undefined: check only). Throws RestoreRefused (DAMAGED, BASE_MISSING) at the first fault.
 */
export async function readWhole(
  opts: Pick<RestoreOptions, 'archive' | 'bases' | 'onProgress'>,
  into: string | FileSink | undefined,
): Promise<{ manifest: BackupManifest; progress: RestoreProgress }> {
  const progress: RestoreProgress = { phase: 'verify', bytes: 0, totalBytes: 0, files: 0, totalFiles: 0 };
  const { manifest } = await readArchive(opts.archive, (m) => {
    progress.totalBytes = contentBytes(m) + m.baseBlobs.reduce((n, f) => n + f.size, 0);
    progress.totalFiles = m.files.length + m.baseBlobs.length;
    opts.onProgress?.(progress);
    return { want: fileIndex(m), into, progress, onProgress: opts.onProgress };
  }).then(async (r) => {
    const idx = fileIndex(r.manifest);
    const missing = [...idx.keys()].filter((p) => !r.seen.has(p));
    if (missing.length > 0)
      throw damaged(opts.archive, `it is truncated: ${missing.length} listed file(s) are absent, first ${missing[0]}`);
    return r;
  });
  const pending = new Map(manifest.baseBlobs.map((f) => [f.path, f]));
  for (const base of opts.bases ?? []) {
    if (pending.size === 0) break;
    progress.phase = 'base';
    await readArchive(base, (m) => {
      const want = new Map<string, BackupFile>();
      for (const f of m.files) {
        const need = pending.get(f.path);
        if (need && need.sha256 === f.sha256 && need.size === f.size) want.set(f.path, f);
      }
      return { want, into, progress, onProgress: opts.onProgress };
    }).then((r) => {
      for (const p of r.seen) pending.delete(p);
    });
  }
  if (pending.size > 0) {
    throw new RestoreRefused(
      'BASE_MISSING',
      `the archive is incremental (base backup ${manifest.base?.id ?? '?'} of ${manifest.base?.createdAt ?? '?'}) and ${pending.size} blob(s) are in none of the base archives given; nothing was restored`,
    );
  }
  return { manifest, progress };
}

/** Verifies an archive (and its bases) completely, then moves its content into `dataDir` in one rename. */
export async function restoreArchive(opts: RestoreOptions): Promise<RestoreResult> {
  const { dataDir } = opts;
  const verifyOnly = opts.verifyOnly ?? false;
  // What a stopped registry's write journal still holds belongs to the data being checked or replaced.
  if (!verifyOnly) await recoverJournal(dataDir, { syncAll: syncFilesystem, syncDir: fsyncDir });
  const hadData = verifyOnly ? false : !(await dataDirIsEmpty(dataDir));
  if (hadData && !opts.force) {
    throw new RestoreRefused('NOT_EMPTY', `${dataDir} already holds registry data; nothing was restored`);
  }
  const token = randomBytes(6).toString('hex');
  const staging = verifyOnly ? undefined : join(dataDir, `.regctl-restore-${token}`);
  if (staging) {
    // Leftovers of an interrupted restore (staging or old trees) hold nothing the registry serves.
    for (const name of await readdir(dataDir).catch(() => [] as string[])) {
      if (name.startsWith('.regctl-restore-')) await rm(join(dataDir, name), { recursive: true, force: true });
    }
    await mkdir(staging, { recursive: true, mode: 0o755 });
  }
  try {
    const { manifest, progress } = await readWhole(opts, staging);
    const result: RestoreResult = {
      id: manifest.id,
      createdAt: manifest.createdAt,
      regctlVersion: manifest.regctlVersion,
      repositories: manifest.repositories,
      files: progress.files,
      bytes: progress.bytes,
      replaced: false,
      verifyOnly,
    };
    if (!staging) return result;

    progress.phase = 'move';
    opts.onProgress?.(progress);
    if (!(await dataDirIsEmpty(dataDir)) && !opts.force) {
      throw new RestoreRefused(
        'NOT_EMPTY',
        `${dataDir} received registry data while the archive was read; nothing was restored`,
      );
    }
    await mkdir(join(staging, 'docker/registry/v2'), { recursive: true });
    const live = join(dataDir, 'docker');
    const old = join(dataDir, `.regctl-restore-old-${token}`);
    const moveAway = await exists(live);
    if (moveAway) await rename(live, old);
    await rename(join(staging, 'docker'), live);
    await fsyncDir(dataDir);
    result.replaced = hadData;
    if (moveAway) await rm(old, { recursive: true, force: true });
    return result;
  } finally {
    if (staging) await rm(staging, { recursive: true, force: true });
  }
}

/** An archive's first entry, which must be its manifest: read and parsed; DAMAGED when it is anything else. */
async function manifestOfFirstEntry(
  archive: string,
  entry: AsyncIterable<unknown> & { header: TarHeader },
): Promise<BackupManifest> {
  const { name, type, size } = entry.header;
  if (name !== MANIFEST_NAME || type !== 'file')
    throw damaged(archive, `its first entry is ${name}, not ${MANIFEST_NAME} (not a regctl backup?)`);
  if (size > MAX_MANIFEST_BYTES) throw damaged(archive, `${MANIFEST_NAME} is too large`);
  const chunks: Buffer[] = [];
  for await (const c of entry) chunks.push(c as Buffer);
  try {
    return parseBackupManifest(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    if (err instanceof BackupFormatError) throw damaged(archive, err.message);
    throw err;
  }
}

/** The manifest of an archive (its first entry), without reading the rest. */
export async function readArchiveManifest(archive: string): Promise<BackupManifest> {
  const source = await archiveSource(archive);
  const extractor = tarExtract();
  source.on('error', (err) => extractor.destroy(err));
  source.pipe(extractor);
  try {
    for await (const entry of extractor) return await manifestOfFirstEntry(archive, entry);
  } catch (err) {
    if (err instanceof RestoreRefused) throw err;
    throw damaged(archive, (err as Error).message || 'unreadable tar data');
  } finally {
    source.destroy();
    extractor.destroy();
  }
  throw damaged(archive, 'it is empty');
}
