/**
 * The storage an offline command (`regctl fsck`, `regctl restore --storage`) works on, from the flags and
 * environment `regctl serve` reads, resolved the same way, so that it is exactly what the registry serves.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { CliContext } from '../context.js';
import { RegctlError } from '../../common/errors.js';
import type { ServeSettings } from '../../registry/config.js';
import type { StorageDriver } from '../../registry/storage/driver.js';

/** The flags of the storage and its metadata (each optional; the environment fills in as for `regctl serve`). */
export interface StorageFlags {
  data?: string;
  storage?: string;
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
  stateDir?: string;
  metadata?: string;
  metadataPasswordFile?: string;
}

/** What fsck reads: the data directory, or a bucket; `where` names it in messages. */
export interface StorageTarget {
  driver: StorageDriver;
  where: string;
  settings: ServeSettings;
  /** The data directory (filesystem storage) or undefined (S3). */
  dataDir: string | undefined;
}

/**
 * The storage and metadata settings as `regctl serve` resolves them (flags > environment), so that fsck reads
 * exactly what the registry serves: `--data DIR`, or `--storage s3://BUCKET[/PREFIX]` with the S3 flags.
 */
export async function openStorageTarget(ctx: CliContext, flags: StorageFlags): Promise<StorageTarget> {
  const { resolveSettings, SettingsError } = await import('../../registry/config.js');
  let settings: ServeSettings;
  try {
    settings = resolveSettings(
      {
        data: flags.data,
        storage: flags.storage,
        s3Endpoint: flags.s3Endpoint,
        s3Region: flags.s3Region,
        s3PathStyle: flags.s3PathStyle,
        stateDir: flags.stateDir,
        metadata: flags.metadata,
        metadataPasswordFile: flags.metadataPasswordFile,
      },
      ctx.env,
      {},
    );
  } catch (err) {
    if (err instanceof SettingsError)
      throw new RegctlError('USAGE', err.message, { hint: 'see regctl fsck --help', cause: err });
    throw err;
  }
  if (settings.storage.kind === 's3') {
    const { openS3Driver } = await import('../../registry/server.js');
    const { isNotFound } = await import('../../registry/storage/driver.js');
    const s3 = settings.storage;
    const where = `s3://${s3.bucket}${s3.prefix ? `/${s3.prefix}` : ''}`;
    const driver = await openS3Driver(s3);
    try {
      // A missing bucket, refused credentials or a closed endpoint fail here, before anything is checked.
      await driver.list('').catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
    } catch (err) {
      throw new RegctlError('REGISTRY_ERROR', `cannot read ${where}: ${(err as Error).message}`, {
        hint: 'check --storage, --s3-endpoint, --s3-region and the AWS credentials',
        cause: err,
      });
    }
    return { driver, where, settings, dataDir: undefined };
  }
  const dir = resolve(ctx.cwd, settings.data);
  try {
    if (!(await stat(dir)).isDirectory()) throw new Error('not a directory');
  } catch {
    throw new RegctlError('NOT_FOUND', `data directory ${dir} does not exist`, {
      hint: 'pass the directory given to regctl serve --data',
    });
  }
  const { FsDriver } = await import('../../registry/storage/fs-driver.js');
  const driver = new FsDriver(dir);
  await driver.open();
  return { driver, where: dir, settings, dataDir: dir };
}
