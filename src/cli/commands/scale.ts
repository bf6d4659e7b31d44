import { Command } from 'commander';
import { resolve } from 'node:path';
import { wholeNumberArg } from '../arg-parsers.js';
import type { CliContext } from '../context.js';
import { outputFor } from './day-two.js';
import { defaultEngineFactory, type EngineFactory } from './stack-engine.js';

export function scaleCommand(ctx: CliContext, engineFactory: EngineFactory = defaultEngineFactory): Command {
  return new Command('scale')
    .showHelpAfterError('(run `regctl scale --help` for usage)')
    .description("change a swarm stack's replica count online (the registry unless a service is named)")
    .argument('[service]', 'registry (default) or ui')
    .requiredOption('--replicas <n>', 'tasks to run', wholeNumberArg('--replicas', { min: 1, unit: 'replicas' }))
    .option('--dir <dir>', 'stack directory (default: the current directory)')
    .option('--json', 'print the result as JSON')
    .action(async (service: string | undefined, opts: { dir?: string; replicas: number; json?: boolean }) => {
      const { loadStack } = await import('../../ops/stack.js');
      const { scale } = await import('../../ops/swarm-ops.js');
      const stack = await loadStack(resolve(ctx.cwd, opts.dir ?? '.'));
      const out = outputFor(ctx.out, opts.json);
      const result = await scale(stack, engineFactory(ctx), out, opts.replicas, service ? { service } : {});
      if (opts.json) out.json(result);
      else ctx.out.ok(`${result.service}: ${result.from} → ${result.to} replicas, all running and healthy`);
    });
}
