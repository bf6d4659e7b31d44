/**
 * The backup archive format. A backup is a tar stream (optionally gzipped by whoever stores it):
 *
 * ```
 * regctl-backup.json                                 this manifest, always the first entry
 * docker/registry/v2/repositories/<name>/_manifests/…  tags, revisions, referrers (link files)
 * docker/registry/v2/repositories/<name>/_layers/…     blob links
 * docker/registry/v2/blobs/<alg>/<xx>/<hex>/data       every blob and manifest those links name
 * ```
 * Paths are the data directory's own (distribution's layout), so restoring is extracting. The manifest
 * lists every file that follows with its size and sha256; a blob's file must also match its digest.
 * An incremental backup leaves out blobs a previous backup already holds and lists them in `baseBlobs`.
 */
import { z } from 'zod';

export const MANIFEST_NAME = 'regctl-backup.json';
export const FORMAT = 'regctl-backup';
export const FORMAT_VERSION = 1;

const SHA256_HEX = /^[a-f0-9]{64}$/;
const BLOB_PATH = /^docker\/registry\/v2\/blobs\/([a-z0-9]+)\/([a-f0-9]{2})\/([a-f0-9]+)\/data$/;
const REPO_PATH = /^docker\/registry\/v2\/repositories\/.+\/(?:_manifests|_layers)\/.+$/;

const fileSchema = z.strictObject({
  path: z.string().min(1),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(SHA256_HEX, 'sha256 must be 64 lower-case hex digits'),
});

export const backupManifestSchema = z.strictObject({
  format: z.literal(FORMAT),
  formatVersion: z.literal(FORMAT_VERSION),
  id: z.string().min(1),
  regctlVersion: z.string().min(1),
  createdAt: z.string().min(1),
  /** How long writes were held behind the fence while tags and manifests were read. */
  fenceMs: z.number().nonnegative(),
  base: z.strictObject({ id: z.string().min(1), createdAt: z.string().min(1) }).nullable(),
  repositories: z.array(
    z.strictObject({
      name: z.string().min(1),
      tags: z.number().int().nonnegative(),
      manifests: z.number().int().nonnegative(),
    }),
  ),
  files: z.array(fileSchema),
  baseBlobs: z.array(fileSchema),
  /** Blobs a link named but storage did not hold when the backup ran (reported, not fatal). */
  missingBlobs: z.array(z.string()),
});

export type BackupManifest = z.output<typeof backupManifestSchema>;
export type BackupFile = z.output<typeof fileSchema>;

export class BackupFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupFormatError';
  }
}

/** The digest a blob path stands for (`sha256:<hex>`), or undefined for a non-blob path. */
export function blobDigestOfPath(path: string): { algorithm: string; hex: string } | undefined {
  const m = BLOB_PATH.exec(path);
  if (!m || !(m[3] as string).startsWith(m[2] as string)) return undefined;
  return { algorithm: m[1] as string, hex: m[3] as string };
}

export function blobPath(algorithm: string, hex: string): string {
  return `docker/registry/v2/blobs/${algorithm}/${hex.slice(0, 2)}/${hex}/data`;
}

/** Whether a path may appear in an archive: a blob or a repository link file, relative, without `.`/`..`. */
export function isArchivePath(path: string): boolean {
  if (path.startsWith('/') || path.includes('\\') || path.includes('\0')) return false;
  if (path.split('/').some((s) => s === '' || s === '.' || s === '..')) return false;
  return blobDigestOfPath(path) !== undefined || REPO_PATH.test(path);
}

/** Parses and checks a manifest's text: schema, allowed paths, no duplicates, blob digests. */
export function parseBackupManifest(text: string): BackupManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new BackupFormatError(`${MANIFEST_NAME} is not valid JSON`);
  }
  const result = backupManifestSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new BackupFormatError(
      `${MANIFEST_NAME} is invalid at ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  const manifest = result.data;
  const seen = new Set<string>();
  for (const f of [...manifest.files, ...manifest.baseBlobs]) {
    if (!isArchivePath(f.path))
      throw new BackupFormatError(`${MANIFEST_NAME} lists a path outside the registry layout: ${f.path}`);
    if (seen.has(f.path)) throw new BackupFormatError(`${MANIFEST_NAME} lists ${f.path} twice`);
    seen.add(f.path);
    const blob = blobDigestOfPath(f.path);
    if (blob?.algorithm === 'sha256' && blob.hex !== f.sha256) {
      throw new BackupFormatError(`${MANIFEST_NAME}: ${f.path} is listed with a sha256 that is not its digest`);
    }
  }
  for (const f of manifest.baseBlobs) {
    if (!blobDigestOfPath(f.path))
      throw new BackupFormatError(`${MANIFEST_NAME}: baseBlobs may only hold blobs, not ${f.path}`);
  }
  if (manifest.base === null && manifest.baseBlobs.length > 0) {
    throw new BackupFormatError(`${MANIFEST_NAME} lists blobs of a base backup but names no base`);
  }
  return manifest;
}

/** Total bytes of the files an archive carries. */
export function contentBytes(manifest: BackupManifest): number {
  return manifest.files.reduce((n, f) => n + f.size, 0);
}
