import { resolve } from 'node:path';
import { Command } from 'commander';
import type { CliContext } from '../context.js';
import { RegctlError } from '../../common/errors.js';
import { openStorageTarget, type StorageFlags, type StorageTarget } from './storage-target.js';

interface FsckFlags extends StorageFlags {
  repair?: boolean;
  json?: boolean;
  rebuildMetadata?: boolean;
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
      const target = await openStorageTarget(ctx, flags);
      try {
        if (flags.rebuildMetadata) return await rebuildMetadata(ctx, target, flags.json === true);
        await check(ctx, target, flags);
      } finally {
        await target.driver.close?.();
      }
    });
}

async function check(ctx: CliContext, target: StorageTarget, flags: FsckFlags): Promise<void> {
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

async function rebuildMetadata(ctx: CliContext, target: StorageTarget, json: boolean): Promise<void> {
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
