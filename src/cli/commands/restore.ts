import { resolve } from 'node:path';
import { Command } from 'commander';
import type { CliContext } from '../context.js';
import { RegctlError, isRegctlError } from '../../common/errors.js';
import type { RestoreEvent } from '../../ops/restore.js';
import type { RestoreProgress } from '../../registry/backup/restore.js';
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

/** One event of `--json-lines` (what the restore container prints, read by `restoreStack`). */
const emit = (ev: RestoreEvent) => process.stdout.write(`${JSON.stringify(ev)}\n`);

/** At most one progress report per half second, and every report of the final move. */
function throttled(report: (p: RestoreProgress, now: number) => void): (p: RestoreProgress) => void {
  let last = 0;
  return (p) => {
    const now = Date.now();
    if (now - last < 500 && p.phase !== 'move') return;
    last = now;
    report(p, now);
  };
}

const throttledEmit = () => throttled((p) => emit({ event: 'progress', progress: { ...p } }));

/** With `--json-lines`, a failure is also printed as an `error` event before the CLI reports it. */
async function jsonLinesErrors(jsonLines: boolean | undefined, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (err) {
    if (jsonLines) {
      const e = isRegctlError(err) ? err : new RegctlError('INTERNAL', (err as Error).message);
      emit({ event: 'error', code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) });
    }
    throw err;
  }
}

export function restoreCommand(ctx: CliContext, engineFactory: EngineFactory = defaultEngineFactory): Command {
  return new Command('restore')
    .argument('<file>', 'backup archive written by `regctl backup`')
    .description(
      "restore a backup into the stopped stack's storage (or a data directory or bucket with --data/--storage)",
    )
    .option('--dir <dir>', 'stack directory (default: the current directory)')
    .option('--data <dir>', 'restore into this data directory instead of the stack volume (no Docker)')
    .option('--storage <url>', 'restore into this bucket instead, s3://BUCKET[/PREFIX], its registries stopped')
    .option('--s3-endpoint <url>', 'with --storage: S3-compatible endpoint (env REGCTL_S3_ENDPOINT)')
    .option('--s3-region <region>', 'with --storage: S3 region (env REGCTL_S3_REGION)')
    .option('--s3-path-style', 'with --storage: address the endpoint as endpoint/bucket/key')
    .option('--force', 'replace registry data that is already there')
    .option('--base <file>', 'previous backup an incremental archive builds on (repeatable)', collect)
    .option('--json', 'print one JSON document')
    .option('--json-lines', 'with --data or --storage: one JSON event per line (what the restore container prints)')
    .action(async (file: string, flags: Flags) => {
      const { progressLine } = await import('../../ops/backup.js');
      const { restoreDirectory, restoreStack, restoreStorage } = await import('../../ops/restore.js');
      const archive = resolve(ctx.cwd, file);
      const bases = (flags.base ?? []).map((b) => resolve(ctx.cwd, b));
      if (flags.storage !== undefined) {
        if (flags.data !== undefined)
          throw new RegctlError('USAGE', 'restore: give --data DIR or --storage s3://BUCKET, not both');
        const out = outputFor(ctx.out, flags.json || flags.jsonLines);
        const started = Date.now();
        await jsonLinesErrors(flags.jsonLines, async () => {
          const target = await openStorageTarget(ctx, flags);
          try {
            const r = await restoreStorage({
              archive,
              driver: target.driver,
              where: target.where,
              force: flags.force ?? false,
              bases,
              ...(flags.jsonLines ? { onProgress: throttledEmit() } : {}),
            });
            if (flags.jsonLines) emit({ event: 'done', result: r });
            else if (flags.json) out.json(r);
            else
              out.ok(
                `Restored backup ${r.id} (${r.files} files, ${progressLine(r.bytes, undefined, started)}) into ${target.where}`,
              );
          } finally {
            await target.driver.close?.();
          }
        });
        return;
      }
      if (flags.data !== undefined) {
        const out = outputFor(ctx.out, flags.json || flags.jsonLines);
        const started = Date.now();
        const dataDir = flags.data;
        await jsonLinesErrors(flags.jsonLines, async () => {
          const r = await restoreDirectory({
            archive,
            dataDir: resolve(ctx.cwd, dataDir),
            force: flags.force ?? false,
            bases,
            onProgress: flags.jsonLines
              ? throttledEmit()
              : throttled((p, now) =>
                  out.progress(
                    `${p.phase} ${progressLine(p.bytes, p.totalBytes, started, now)}, ${p.files}/${p.totalFiles} files`,
                  ),
                ),
          });
          if (flags.jsonLines) emit({ event: 'done', result: r });
          else if (flags.json) out.json(r);
          else
            out.ok(
              `Restored backup ${r.id} (${r.files} files, ${progressLine(r.bytes, undefined, started)}) into ${dataDir}`,
            );
        });
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
