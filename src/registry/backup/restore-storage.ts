/**
 * Restoring a backup archive into storage that is not a directory (an S3 bucket): `regctl restore --storage
 * s3://…`, with the registries on the bucket stopped.
 *
 * Object storage has no rename, so nothing can be staged and swapped in: instead the whole archive (and its bases)
 * is read and checked first, writing nothing, exactly as for a directory; only an archive that passed is read a
 * second time and written, file by file, through the storage driver. A damaged archive leaves the bucket as it
 * was. With `force`, the existing tree (`docker/`, our metadata marker with it) is deleted before the writes; a
 * failure during the writes (the endpoint going away) leaves a partial tree, which a second `--force` run replaces.
 * Either way the marker is gone afterwards, so a metadata store that described the bucket imports it again.
 */
import type { StorageDriver } from '../storage/driver.js';
import { isNotFound } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';
import { readWhole, RestoreRefused, type RestoreOptions, type RestoreResult } from './restore.js';

export interface StorageRestoreOptions extends Omit<RestoreOptions, 'dataDir'> {
  driver: StorageDriver;
  /** How messages name the storage (`s3://bucket/prefix`). */
  where: string;
}

const LAYOUT_DIRS = ['docker/registry/v2/repositories', 'docker/registry/v2/blobs'];

/** True when the storage holds no repository and no blob. */
export async function storageIsEmpty(driver: StorageDriver): Promise<boolean> {
  for (const d of LAYOUT_DIRS) {
    try {
      if ((await driver.list(d)).length > 0) return false;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  return true;
}

export async function restoreIntoStorage(opts: StorageRestoreOptions): Promise<RestoreResult> {
  const { driver, where } = opts;
  const verifyOnly = opts.verifyOnly ?? false;
  const hadData = verifyOnly ? false : !(await storageIsEmpty(driver));
  if (hadData && !opts.force)
    throw new RestoreRefused('NOT_EMPTY', `${where} already holds registry data; nothing was restored`);
  // First pass: everything checked, nothing written.
  const checked = await readWhole(opts, undefined);
  const result: RestoreResult = {
    id: checked.manifest.id,
    createdAt: checked.manifest.createdAt,
    regctlVersion: checked.manifest.regctlVersion,
    repositories: checked.manifest.repositories,
    files: checked.progress.files,
    bytes: checked.progress.bytes,
    replaced: false,
    verifyOnly,
  };
  if (verifyOnly) return result;
  if (!(await storageIsEmpty(driver)) && !opts.force)
    throw new RestoreRefused(
      'NOT_EMPTY',
      `${where} received registry data while the archive was read; nothing was restored`,
    );
  if (hadData) await driver.delete('docker');
  else await driver.delete(pathFor({ kind: 'metadataMarker' })).catch(() => undefined);
  const written = await readWhole(
    { ...opts, onProgress: opts.onProgress ? (p) => opts.onProgress?.({ ...p, phase: 'move' }) : undefined },
    (path) => driver.writer(path, { append: false }),
  );
  return { ...result, files: written.progress.files, bytes: written.progress.bytes, replaced: hadData };
}
