import { Command } from 'commander';
import { wholeNumberArg } from '../arg-parsers.js';
import { resolve } from 'node:path';
import type { CliContext } from '../context.js';
import { defaultEngineFactory, type EngineFactory } from './stack-engine.js';

export function logsCommand(ctx: CliContext, engineFactory: EngineFactory = defaultEngineFactory): Command {
  return new Command('logs')
    .showHelpAfterError('(run `regctl logs --help` for usage)')
    .description("print a service's log (traefik, registry, ui), or all of them")
    .argument('[service]', 'service name')
    .option('--dir <dir>', 'stack directory (default: the current directory)')
    .option('-f, --follow', 'keep printing new lines')
    .option('-n, --tail <lines>', 'only the last N lines', wholeNumberArg('--tail', { min: 0, unit: 'lines' }))
    .option('-t, --timestamps', 'show timestamps')
    .action(
      async (
        service: string | undefined,
        opts: { dir?: string; follow?: boolean; tail?: number; timestamps?: boolean },
      ) => {
        const { logs } = await import('../../ops/logs.js');
        const controller = new AbortController();
        const stop = () => controller.abort();
        process.once('SIGINT', stop);
        try {
          await logs({
            dir: resolve(ctx.cwd, opts.dir ?? '.'),
            engine: engineFactory(ctx),
            ...(service ? { service } : {}),
            follow: opts.follow ?? false,
            timestamps: opts.timestamps ?? false,
            ...(opts.tail !== undefined ? { tail: opts.tail } : {}),
            write: (line) => ctx.out.line(line),
            signal: controller.signal,
          });
        } finally {
          process.off('SIGINT', stop);
        }
      },
    );
}
