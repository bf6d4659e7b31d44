/**
 * `regctl backup`: streams `GET /admin/v1/backup` of the running registry into a file, atomically (a temp file
 * next to the target, fsync, rename), with progress (bytes, rate, time). A name ending in `.gz` or `.tgz` is
 * gzipped. `--incremental-from PREV` sends the blobs PREV (and its own bases) hold, so only new blobs are copied;
 * restoring it then needs PREV too (`regctl restore NEW --base PREV`).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { createWriteStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { RegctlError } from '../common/errors.js';
import type { Output } from '../common/io.js';
import { readArchiveManifest, restoreArchive, RestoreRefused } from '../registry/backup/restore.js';
import { AdminClient, stackEndpoint } from './admin-client.js';
import { formatBytes, formatDuration } from '../common/units.js';

export interface BackupOptions {
  dir: string;
  /** Target file; default `regctl-backup-<project>-<UTC time>.tar` in `cwd`. */
  outFile?: string;
  incrementalFrom?: string;
  /** Read the finished archive back and check every file. */
  verify?: boolean;
  cwd: string;
  out: Output;
  env?: NodeJS.ProcessEnv;
}

/** The body of `POST /admin/v1/backup` for an incremental backup. */
interface BackupRequest {
  base: { id: string; createdAt: string };
  excludeBlobs: string[];
}

export interface BackupResult {
  file: string;
  id: string;
  /** Size of the archive file. */
  bytes: number;
  /** Bytes of the files inside (blobs and links). */
  contentBytes: number;
  gzip: boolean;
  fenceMs: number;
  seconds: number;
  bytesPerSecond: number;
  repositories: number;
  files: number;
  base: { id: string; createdAt: string; file: string } | null;
  missingBlobs: string[];
  verified: boolean;
}

export function progressLine(done: number, total: number | undefined, startedAt: number, now = Date.now()): string {
  const seconds = Math.max(0.001, (now - startedAt) / 1000);
  const rate = done / seconds;
  const pct = total ? ` of ${formatBytes(total)} (${Math.min(100, Math.floor((done / total) * 100))}%)` : '';
  return `${formatBytes(done)}${pct}, ${formatBytes(rate)}/s, ${formatDuration(seconds * 1000)}`;
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** What `--incremental-from PREV` asks of the registry: leave out every blob PREV (and its own bases) hold. */
async function incrementalRequest(
  prevFile: string,
): Promise<{ base: NonNullable<BackupResult['base']>; body: BackupRequest }> {
  let prev;
  try {
    prev = await readArchiveManifest(prevFile);
  } catch (err) {
    if (err instanceof RestoreRefused)
      throw new RegctlError('BACKUP_INVALID', err.message, {
        hint: '--incremental-from takes a previous backup archive of this registry',
      });
    throw err;
  }
  const blobs = [...prev.files, ...prev.baseBlobs]
    .map((f) => /^docker\/registry\/v2\/blobs\/([a-z0-9]+)\/[a-f0-9]{2}\/([a-f0-9]+)\/data$/.exec(f.path))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => `${m[1]}:${m[2]}`);
  return {
    base: { id: prev.id, createdAt: prev.createdAt, file: prevFile },
    body: { base: { id: prev.id, createdAt: prev.createdAt }, excludeBlobs: blobs },
  };
}

/**
 * Copies the backup stream into `tmp` (gzipped when asked) with progress, and fsyncs it; returns the bytes
 * received. A broken stream removes `tmp`.
 */
async function writeArchive(
  res: IncomingMessage,
  tmp: string,
  { gzip, total, started, out }: { gzip: boolean; total: number; started: number; out: Output },
): Promise<number> {
  let received = 0;
  let lastShown = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      received += chunk.length;
      const now = Date.now();
      if (now - lastShown >= 500) {
        lastShown = now;
        out.progress(progressLine(received, Number.isFinite(total) ? total : undefined, started, now));
      }
      cb(null, chunk);
    },
  });
  try {
    const sink = createWriteStream(tmp, { flags: 'wx', mode: 0o600 });
    if (gzip) await pipeline(res, counter, createGzip({ level: 6 }), sink);
    else await pipeline(res, counter, sink);
    if (!res.complete) throw new Error('the registry closed the stream early');
    await fsyncPath(tmp);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new RegctlError(
      'REGISTRY_ERROR',
      `the backup stream broke off after ${formatBytes(received)}: ${(err as Error).message}; no archive was written`,
      {
        hint: 'see `regctl logs registry` for the cause, then run the backup again',
        cause: err,
      },
    );
  }
  return received;
}

/** `--verify`: reads the written archive back and checks every file; a failing archive is removed. */
async function verifyArchive(tmp: string, dataDir: string, out: Output): Promise<void> {
  out.step('Verifying the archive');
  try {
    const vstart = Date.now();
    await restoreArchive({
      archive: tmp,
      dataDir,
      verifyOnly: true,
      onProgress: (p) => out.progress(`verified ${progressLine(p.bytes, p.totalBytes, vstart)}`),
    });
  } catch (err) {
    await rm(tmp, { force: true });
    throw new RegctlError('BACKUP_INVALID', `the archive failed verification: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

export async function backup(opts: BackupOptions): Promise<BackupResult> {
  const { out } = opts;
  const endpoint = await stackEndpoint(opts.dir, opts.env);
  const client = new AdminClient(endpoint);
  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const file = resolve(opts.cwd, opts.outFile ?? `regctl-backup-${basename(opts.dir)}-${stamp}.tar`);
  const gzip = /\.(?:t?gz|tar\.gz)$/i.test(file);

  const { base, body } = opts.incrementalFrom
    ? await incrementalRequest(resolve(opts.cwd, opts.incrementalFrom))
    : { base: null, body: undefined };

  out.step(`Backing up ${endpoint.description} to ${file}${base ? ` (incremental from ${base.file})` : ''}`);
  let res;
  try {
    res = await client.open(body ? 'POST' : 'GET', '/admin/v1/backup', body ? { body } : {});
  } catch (err) {
    throw client.unreachable(err);
  }
  if (res.statusCode !== 200) {
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    throw client.fail('backup', { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
  }
  const id = String(res.headers['x-regctl-backup-id'] ?? '');
  const total = Number(res.headers['x-regctl-backup-bytes'] ?? NaN);
  const fenceMs = Number(res.headers['x-regctl-backup-fence-ms'] ?? 0);
  out.ok(`Tags and manifests captured (writes held for ${fenceMs} ms); copying blobs while the registry serves`);

  const tmp = join(dirname(file), `.${basename(file)}.part-${randomBytes(4).toString('hex')}`);
  const started = Date.now();
  const received = await writeArchive(res, tmp, { gzip, total, started, out });

  let manifest;
  try {
    manifest = await readArchiveManifest(tmp);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new RegctlError(
      'REGISTRY_ERROR',
      `the registry sent an archive that cannot be read: ${(err as Error).message}`,
      { cause: err },
    );
  }
  let verified = false;
  if (opts.verify) {
    await verifyArchive(tmp, dirname(file), out);
    verified = true;
  }
  await rename(tmp, file);
  await fsyncPath(dirname(file)).catch(() => undefined);
  const seconds = (Date.now() - started) / 1000;
  const bytes = (await stat(file)).size;
  const result: BackupResult = {
    file,
    id: id || manifest.id,
    bytes,
    contentBytes: manifest.files.reduce((n, f) => n + f.size, 0),
    gzip,
    fenceMs,
    seconds,
    bytesPerSecond: received / Math.max(seconds, 0.001),
    repositories: manifest.repositories.length,
    files: manifest.files.length,
    base,
    missingBlobs: manifest.missingBlobs,
    verified,
  };
  out.ok(
    `Backup ${result.id} written: ${formatBytes(bytes)} in ${formatDuration(seconds * 1000)} (${formatBytes(result.bytesPerSecond)}/s), ${result.repositories} repositor${result.repositories === 1 ? 'y' : 'ies'}, ${result.files} files${verified ? ', verified' : ''}`,
  );
  if (manifest.missingBlobs.length > 0)
    out.warn(
      `${manifest.missingBlobs.length} blob(s) named by links were missing from storage (listed in the archive's manifest); \`GET /admin/v1/fsck\` explains`,
    );
  return result;
}
