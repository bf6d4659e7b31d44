import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Command } from 'commander';
import type { CliContext } from '../context.js';
import { RegctlError } from '../../common/errors.js';
import type { ServeSettings } from '../../registry/config.js';
import type { StorageDriver } from '../../registry/storage/driver.js';

interface FsckFlags {
  data?: string;
  repair?: boolean;
  json?: boolean;
  rebuildMetadata?: boolean;
  metadata?: string;
  metadataPasswordFile?: string;
  storage?: string;
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
  stateDir?: string;
}

/** What fsck reads: the data directory, or a bucket; `where` names it in messages. */
interface Target {
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
async function openTarget(ctx: CliContext, flags: FsckFlags): Promise<Target> {
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
    const { createS3Driver } = await import('../../registry/server.js');
    const { isNotFound } = await import('../../registry/storage/driver.js');
    const s3 = settings.storage;
    const where = `s3://${s3.bucket}${s3.prefix ? `/${s3.prefix}` : ''}`;
    const driver = createS3Driver(s3);
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

/**
 * `regctl fsck --data DIR [--repair] [--json]`: the registry's own fsck (`runFsck`) run offline over a data
 * directory, or over a bucket with `--storage s3://BUCKET[/PREFIX]` (and `--s3-endpoint`, `--s3-region`,
 * `--s3-path-style` as for `regctl serve`). Exit 0 when nothing is left to fix, REGISTRY_ERROR (10) when problems
 * remain. The registry must not be writing meanwhile: `--repair` deletes what it finds.
 *
 * `regctl fsck --rebuild-metadata [--metadata STORE]` instead rebuilds the registry's metadata store (the SQLite
 * file the registry would open by default: under DIR, or with S3 in `--state-dir`; or the PostgreSQL database
 * named like `regctl serve --metadata`) from storage.
 */
export function fsckCommand(ctx: CliContext): Command {
  return new Command('fsck')
    .description('verify a registry data directory or bucket offline: blob digests, links, tags, temporary leftovers')
    .option('--data <dir>', 'data directory of the registry (env REGCTL_DATA, default ./data)')
    .option('--storage <url>', 'the bucket instead: s3://BUCKET[/PREFIX] as for regctl serve (env REGCTL_STORAGE)')
    .option('--s3-endpoint <url>', 'S3-compatible endpoint (env REGCTL_S3_ENDPOINT)')
    .option('--s3-region <region>', 'S3 region (env REGCTL_S3_REGION)')
    .option('--s3-path-style', 'address the endpoint as endpoint/bucket/key (env REGCTL_S3_PATH_STYLE=1)')
    .option('--state-dir <dir>', 'with --storage s3://: where the default metadata store lives (env REGCTL_STATE_DIR)')
    .option('--repair', 'delete what cannot be trusted: corrupt blobs, dangling links and tags, temporary files')
    .option('--json', 'print the report as JSON')
    .option('--rebuild-metadata', "rebuild the registry's metadata store (repositories, tags, manifests) from storage")
    .option('--metadata <store>', 'the store to rebuild, as for regctl serve (env REGCTL_METADATA, default sqlite)')
    .option('--metadata-password-file <file>', 'file holding the PostgreSQL password (or REGCTL_METADATA_PASSWORD)')
    .action(async (flags: FsckFlags) => {
      const target = await openTarget(ctx, flags);
      try {
        if (flags.rebuildMetadata) return await rebuildMetadata(ctx, target, flags.json === true);
        await check(ctx, target, flags);
      } finally {
        await target.driver.close?.();
      }
    });
}

async function check(ctx: CliContext, target: Target, flags: FsckFlags): Promise<void> {
  const { RegistryStore } = await import('../../registry/storage/store.js');
  const { runFsck } = await import('../../registry/storage/fsck.js');
  const { where: dir } = target;
  const store = new RegistryStore(target.driver);
  const report = await runFsck(store, { repair: flags.repair === true });
  const repaired = new Set(report.repaired.map((p) => p.path));
  const remaining = report.problems.filter((p) => !repaired.has(p.path));
  if (flags.json) {
    ctx.out.json({
      ...(target.dataDir !== undefined ? { dataDir: dir } : { storage: dir }),
      blobsChecked: report.blobsChecked,
      problems: report.problems,
      repaired: report.repaired,
      remaining: remaining.length,
    });
  } else {
    for (const p of report.problems) {
      const line = `${p.kind}: ${p.path} (${p.detail})`;
      if (repaired.has(p.path)) ctx.out.ok(`repaired ${line}`);
      else ctx.out.warn(line);
    }
    if (report.problems.length === 0) ctx.out.ok(`${dir}: ${report.blobsChecked} blobs checked, no problems`);
  }
  if (remaining.length > 0) {
    throw new RegctlError('REGISTRY_ERROR', `${remaining.length} problem(s) found in ${dir}`, {
      hint: flags.repair
        ? 'these could not be repaired; see the list above'
        : 'run regctl fsck --repair with the registry stopped',
    });
  }
  if (!flags.json && report.repaired.length > 0)
    ctx.out.ok(`${report.repaired.length} problem(s) repaired, ${report.blobsChecked} blobs checked`);
}

async function rebuildMetadata(ctx: CliContext, target: Target, json: boolean): Promise<void> {
  const { MetadataSettingError, openMetadataStore, s3SqliteFile } = await import('../../registry/metadata/settings.js');
  const hint = 'check --metadata, and REGCTL_METADATA_PASSWORD or --metadata-password-file for PostgreSQL';
  const { settings, where: dir } = target;
  let index;
  try {
    if (settings.metadata.kind === 'memory')
      throw new MetadataSettingError('metadata: memory is rebuilt at every start; there is nothing to rebuild');
    index = await openMetadataStore(settings.metadata, {
      dataDir: target.dataDir,
      sqliteFile:
        settings.storage.kind === 's3' && settings.stateDir !== undefined
          ? s3SqliteFile(resolve(ctx.cwd, settings.stateDir), settings.storage)
          : undefined,
      password: settings.metadataPassword,
      passwordFile: settings.metadataPasswordFile,
    });
  } catch (err) {
    if (err instanceof MetadataSettingError) throw new RegctlError('CONFIG_INVALID', err.message, { hint });
    throw err;
  }
  try {
    const { RegistryStore } = await import('../../registry/storage/store.js');
    const { importStorage } = await import('../../registry/metadata/startup.js');
    const store = new RegistryStore(target.driver, index);
    const started = Date.now();
    await importStorage(store);
    const result = {
      ...(target.dataDir !== undefined ? { dataDir: dir } : { storage: dir }),
      store: index.kind,
      repositories: index.repositoryCount(),
      ms: Date.now() - started,
    };
    if (json) ctx.out.json(result);
    else ctx.out.ok(`${dir}: metadata (${index.kind}) rebuilt from storage, ${result.repositories} repositories`);
  } finally {
    await index.close();
  }
}
