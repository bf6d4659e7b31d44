import { Command } from 'commander';
import { resolve } from 'node:path';
import type { CliContext } from '../context.js';
import { up } from '../../ops/up.js';
import { defaultEngineFactory, type EngineFactory } from './stack-engine.js';

export function upCommand(ctx: CliContext, engineFactory: EngineFactory = defaultEngineFactory): Command {
  return new Command('up')
    .showHelpAfterError('(run `regctl up --help` for usage)')
    .description('create or update the stack on the Docker engine and wait until it answers')
    .option('--dir <dir>', 'stack directory (default: the current directory)')
    .option('--prod', 'HTTPS with an ACME certificate (compose.prod.yaml\'s stack)')
    .option('--keep-on-failure', 'leave what a failed run created, for inspection')
    .option('--health-timeout <seconds>', 'how long to wait for health checks', '180')
    .action(async (opts: { dir?: string; prod?: boolean; keepOnFailure?: boolean; healthTimeout: string }) => {
      const healthTimeoutMs = Number(opts.healthTimeout) * 1000;
      await up({
        dir: resolve(ctx.cwd, opts.dir ?? '.'),
        prod: opts.prod ?? false,
        keepOnFailure: opts.keepOnFailure ?? false,
        ...(Number.isFinite(healthTimeoutMs) && healthTimeoutMs > 0 ? { healthTimeoutMs } : {}),
        out: ctx.out,
        engine: engineFactory(ctx),
      });
    });
}
