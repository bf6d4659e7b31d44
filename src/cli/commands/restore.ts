import { resolve } from 'node:path';
import { Command } from 'commander';
import type { CliContext } from '../context.js';
import { RegctlError, isRegctlError } from '../../common/errors.js';
import type { RestoreEvent } from '../../ops/restore.js';
import { collect, outputFor, stackDir } from './day-two.js';
import { openStorageTarget } from './storage-target.js';
import { defaultEngineFactory, type EngineFactory } from './stack-engine.js';

interface Flags {
  dir?: string;
  data?: string;
  storage?: string;
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
  force?: boolean;
  base?: string[];
  json?: boolean;
  jsonLines?: boolean;
}

export function restoreCommand(ctx: CliContext, engineFactory: EngineFactory = defaultEngineFactory): Command {
  return new Command('restore')
    .argument('<file>', 'backup archive written by `regctl backup`')
    .description("restore a backup into the stopped stack's data volume (or a data directory with --data)")
    .option('--dir <dir>', 'stack directory (default: the current directory)')
    .option('--data <dir>', 'restore into this data directory instead of the stack volume (no Docker)')
    .option('--storage <url>', 'restore into this bucket instead, s3://BUCKET[/PREFIX], its registries stopped')
    .option('--s3-endpoint <url>', 'with --storage: S3-compatible endpoint (env REGCTL_S3_ENDPOINT)')
    .option('--s3-region <region>', 'with --storage: S3 region (env REGCTL_S3_REGION)')
    .option('--s3-path-style', 'with --storage: address the endpoint as endpoint/bucket/key')
    .option('--force', 'replace registry data that is already there')
    .option('--base <file>', 'previous backup an incremental archive builds on (repeatable)', collect)
    .option('--json', 'print one JSON document')
    .option('--json-lines', 'with --data: one JSON event per line (what the restore container prints)')
    .action(async (file: string, flags: Flags) => {
      const { progressLine } = await import('../../ops/backup.js');
      const { restoreDirectory, restoreStack, restoreStorage } = await import('../../ops/restore.js');
      const archive = resolve(ctx.cwd, file);
      const bases = (flags.base ?? []).map((b) => resolve(ctx.cwd, b));
      if (flags.storage !== undefined) {
        if (flags.data !== undefined)
          throw new RegctlError('USAGE', 'restore: give --data DIR or --storage s3://BUCKET, not both');
        const target = await openStorageTarget(ctx, flags);
        const out = outputFor(ctx.out, flags.json);
        const started = Date.now();
        try {
          const r = await restoreStorage({
            archive,
            driver: target.driver,
            where: target.where,
            force: flags.force ?? false,
            bases,
          });
          if (flags.json) out.json(r);
          else
            out.ok(
              `Restored backup ${r.id} (${r.files} files, ${progressLine(r.bytes, undefined, started)}) into ${target.where}`,
            );
        } finally {
          await target.driver.close?.();
        }
        return;
      }
      if (flags.data !== undefined) {
        const emit = (ev: RestoreEvent) => process.stdout.write(`${JSON.stringify(ev)}\n`);
        const out = outputFor(ctx.out, flags.json || flags.jsonLines);
        const started = Date.now();
        let last = 0;
        try {
          const r = await restoreDirectory({
            archive,
            dataDir: resolve(ctx.cwd, flags.data),
            force: flags.force ?? false,
            bases,
            onProgress: (p) => {
              const now = Date.now();
              if (now - last < 500 && p.phase !== 'move') return;
              last = now;
              if (flags.jsonLines) emit({ event: 'progress', progress: { ...p } });
              else
                out.progress(
                  `${p.phase} ${progressLine(p.bytes, p.totalBytes, started, now)}, ${p.files}/${p.totalFiles} files`,
                );
            },
          });
          if (flags.jsonLines) emit({ event: 'done', result: r });
          else if (flags.json) out.json(r);
          else
            out.ok(
              `Restored backup ${r.id} (${r.files} files, ${progressLine(r.bytes, undefined, started)}) into ${flags.data}`,
            );
        } catch (err) {
          if (flags.jsonLines) {
            const e = isRegctlError(err) ? err : new RegctlError('INTERNAL', (err as Error).message);
            emit({ event: 'error', code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) });
          }
          throw err;
        }
        return;
      }
      const out = outputFor(ctx.out, flags.json);
      const r = await restoreStack({
        dir: stackDir(ctx, flags.dir),
        archive,
        bases,
        force: flags.force ?? false,
        out,
        engine: engineFactory(ctx),
      });
      if (flags.json) out.json(r);
    });
}
