import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Command } from 'commander';
import type { CliContext } from '../context.js';
import { RegctlError } from '../../common/errors.js';

interface FsckFlags {
  data?: string;
  repair?: boolean;
  json?: boolean;
  rebuildMetadata?: boolean;
  metadata?: string;
  metadataPasswordFile?: string;
}

/**
 * `regctl fsck --data DIR [--repair] [--json]`: the registry's own fsck (`runFsck`) run offline over a data
 * directory. Exit 0 when nothing is left to fix, REGISTRY_ERROR (10) when problems remain.
 * The registry must not be writing to DIR meanwhile: `--repair` deletes what it finds.
 *
 * `regctl fsck --rebuild-metadata [--metadata STORE]` instead rebuilds the registry's metadata store (the SQLite
 * file under DIR by default, or the PostgreSQL database named like `regctl serve --metadata`) from storage.
 */
export function fsckCommand(ctx: CliContext): Command {
  return new Command('fsck')
    .description('verify a registry data directory offline: blob digests, links, tags, temporary leftovers')
    .option('--data <dir>', 'data directory of the registry (env REGCTL_DATA, default ./data)')
    .option('--repair', 'delete what cannot be trusted: corrupt blobs, dangling links and tags, temporary files')
    .option('--json', 'print the report as JSON')
    .option('--rebuild-metadata', "rebuild the registry's metadata store (repositories, tags, manifests) from storage")
    .option('--metadata <store>', 'the store to rebuild, as for regctl serve (env REGCTL_METADATA, default sqlite)')
    .option('--metadata-password-file <file>', 'file holding the PostgreSQL password (or REGCTL_METADATA_PASSWORD)')
    .action(async (flags: FsckFlags) => {
      const dir = resolve(ctx.cwd, flags.data ?? ctx.env.REGCTL_DATA ?? './data');
      try {
        if (!(await stat(dir)).isDirectory()) throw new Error('not a directory');
      } catch {
        throw new RegctlError('NOT_FOUND', `data directory ${dir} does not exist`, {
          hint: 'pass the directory given to regctl serve --data',
        });
      }
      if (flags.rebuildMetadata) return rebuildMetadata(ctx, dir, flags);
      const { FsDriver } = await import('../../registry/storage/fs-driver.js');
      const { RegistryStore } = await import('../../registry/storage/store.js');
      const { runFsck } = await import('../../registry/storage/fsck.js');
      const driver = new FsDriver(dir);
      await driver.open();
      const store = new RegistryStore(driver);
      const report = await runFsck(store, { repair: flags.repair === true });
      const repaired = new Set(report.repaired.map((p) => p.path));
      const remaining = report.problems.filter((p) => !repaired.has(p.path));
      if (flags.json) {
        ctx.out.json({
          dataDir: dir,
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
    });
}

async function rebuildMetadata(ctx: CliContext, dir: string, flags: FsckFlags): Promise<void> {
  const { MetadataSettingError, openMetadataStore, parseMetadataSetting } =
    await import('../../registry/metadata/settings.js');
  const hint = 'check --metadata, and REGCTL_METADATA_PASSWORD or --metadata-password-file for PostgreSQL';
  let index;
  try {
    const setting = parseMetadataSetting(flags.metadata ?? ctx.env.REGCTL_METADATA ?? 'sqlite');
    if (setting.kind === 'memory')
      throw new MetadataSettingError('metadata: memory is rebuilt at every start; there is nothing to rebuild');
    index = await openMetadataStore(setting, {
      dataDir: dir,
      password: ctx.env.REGCTL_METADATA_PASSWORD || undefined,
      passwordFile: flags.metadataPasswordFile ?? (ctx.env.REGCTL_METADATA_PASSWORD_FILE || undefined),
    });
  } catch (err) {
    if (err instanceof MetadataSettingError) throw new RegctlError('CONFIG_INVALID', err.message, { hint });
    throw err;
  }
  try {
    const { FsDriver } = await import('../../registry/storage/fs-driver.js');
    const { RegistryStore } = await import('../../registry/storage/store.js');
    const { importStorage } = await import('../../registry/metadata/startup.js');
    const store = new RegistryStore(new FsDriver(dir), index);
    const started = Date.now();
    await importStorage(store);
    const result = { dataDir: dir, store: index.kind, repositories: index.repositoryCount(), ms: Date.now() - started };
    if (flags.json) ctx.out.json(result);
    else ctx.out.ok(`${dir}: metadata (${index.kind}) rebuilt from storage, ${result.repositories} repositories`);
  } finally {
    await index.close();
  }
}
