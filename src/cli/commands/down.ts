import { Command } from 'commander';
import { resolve } from 'node:path';
import type { CliContext } from '../context.js';
import { defaultEngineFactory, type EngineFactory } from './stack-engine.js';

export function downCommand(ctx: CliContext, engineFactory: EngineFactory = defaultEngineFactory): Command {
  return new Command('down')
    .showHelpAfterError('(run `regctl down --help` for usage)')
    .description('stop and remove the stack (data volumes are kept unless --volumes)')
    .option('--dir <dir>', 'stack directory (default: the current directory)')
    .option('--volumes', 'also delete the data volumes (asks first)')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (opts: { dir?: string; volumes?: boolean; yes?: boolean }) => {
      const { down } = await import('../../ops/down.js');
      await down({
        dir: resolve(ctx.cwd, opts.dir ?? '.'),
        volumes: opts.volumes ?? false,
        yes: opts.yes ?? false,
        out: ctx.out,
        prompts: ctx.prompts,
        engine: engineFactory(ctx),
      });
    });
}
