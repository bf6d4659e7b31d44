import { Command } from 'commander';
import type { CliContext } from '../context.js';
import { outputFor, stackDir } from './day-two.js';

interface RetentionFlags {
  dir?: string;
  dryRun?: boolean;
  repository?: string;
  json?: boolean;
  gc?: boolean;
}

async function runRetention(ctx: CliContext, flags: RetentionFlags, dryRun: boolean): Promise<void> {
  const { retention, printRetention } = await import('../../ops/retention.js');
  const out = outputFor(ctx.out, flags.json);
  const s = await retention({
    dir: stackDir(ctx, flags.dir),
    dryRun,
    ...(flags.repository !== undefined ? { repository: flags.repository } : {}),
    gc: flags.gc ?? false,
    out,
    env: ctx.env,
  });
  if (flags.json) out.json(s);
  else printRetention(s, out);
}

const common = (c: Command): Command =>
  c
    .option('--dir <dir>', 'stack directory (default: the current directory)')
    .option('--repository <name>', 'only this repository')
    .option('--json', 'print one JSON document: every tag and manifest with its decision and reason');

/**
 * `regctl retention --dry-run` explains what the rules (policies.retention) would keep and remove, and why;
 * `regctl retention run` removes it (blobs then go with `regctl gc`, or `--gc`).
 */
export function retentionCommand(ctx: CliContext): Command {
  const run = common(new Command('run'))
    .description('apply the retention rules now: remove the tags and manifests they do not keep')
    .option('--gc', 'then run the garbage collection to free the blobs they used')
    .action((flags: RetentionFlags) => runRetention(ctx, flags, false));
  return common(new Command('retention'))
    .description('apply the retention rules (policies.retention of regctl.yaml); see `retention run`')
    .option('--dry-run', 'explain every keep and removal without removing anything (the default here)')
    .action((flags: RetentionFlags) => runRetention(ctx, flags, true))
    .addCommand(run);
}
