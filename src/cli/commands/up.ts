import { Command } from 'commander';
import { join, resolve } from 'node:path';
import { exists } from '../../common/fs.js';
import { wholeNumberArg } from '../arg-parsers.js';
import type { CliContext } from '../context.js';
import { defaultEngineFactory, type EngineFactory } from './stack-engine.js';

export function upCommand(ctx: CliContext, engineFactory: EngineFactory = defaultEngineFactory): Command {
  return new Command('up')
    .showHelpAfterError('(run `regctl up --help` for usage)')
    .description('create or update the stack on the Docker engine and wait until it answers')
    .option('--dir <dir>', 'stack directory (default: the current directory)')
    .option('--prod', "HTTPS with an ACME certificate (compose.prod.yaml's stack)")
    .option('--keep-on-failure', 'leave what a failed run created, for inspection')
    .option(
      '--health-timeout <seconds>',
      'how long to wait for health checks, in seconds (default 180)',
      wholeNumberArg('--health-timeout', { min: 1, unit: 'seconds' }),
    )
    .action(async (opts: { dir?: string; prod?: boolean; keepOnFailure?: boolean; healthTimeout?: number }) => {
      const { up } = await import('../../ops/up.js');
      const { CONFIG_FILE } = await import('../../config/load.js');
      const { runInit } = await import('../../ops/init.js');
      const dir = resolve(ctx.cwd, opts.dir ?? '.');
      // A directory without a stack gets one with safe defaults first, so `regctl up` alone is enough.
      if (!(await exists(join(dir, CONFIG_FILE)))) {
        ctx.out.step(`No ${CONFIG_FILE} in ${dir}: creating a stack with safe defaults (regctl init --yes)`);
        await runInit(ctx, { dir, yes: true, ui: true });
        ctx.out.line();
      }
      await up({
        dir,
        prod: opts.prod ?? false,
        keepOnFailure: opts.keepOnFailure ?? false,
        ...(opts.healthTimeout !== undefined ? { healthTimeoutMs: opts.healthTimeout * 1000 } : {}),
        out: ctx.out,
        engine: engineFactory(ctx),
      });
    });
}
