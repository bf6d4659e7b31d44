import { CommanderError } from 'commander';
import { createOutput } from './output.js';
import { createPrompts } from './prompts.js';
import { createProgram } from './program.js';
import { isRegctlError } from '../common/errors.js';
import { exitCodeOf } from './errors.js';
import type { CliContext } from './context.js';

/** Runs the CLI and returns its exit code. The only place that maps errors to output and exit codes. */
export async function main(argv: string[], overrides: Partial<CliContext> = {}): Promise<number> {
  const ctx: CliContext = {
    out: overrides.out ?? createOutput(),
    prompts: overrides.prompts ?? createPrompts(),
    cwd: overrides.cwd ?? process.cwd(),
    env: overrides.env ?? process.env,
    stdin: overrides.stdin ?? process.stdin,
  };
  const program = createProgram(ctx);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has already printed its own one-line message (unknown option, missing argument, ...).
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help')
        return 0;
      return err.exitCode === 0 ? 0 : 2;
    }
    if (isRegctlError(err)) {
      ctx.out.error(err.message);
      for (const line of err.details) process.stderr.write(`  ${line}\n`);
      if (err.hint) process.stderr.write(`  ${ctx.out.color.dim('hint:')} ${err.hint}\n`);
      return exitCodeOf(err);
    }
    if (err && typeof err === 'object' && (err as { name?: string }).name === 'ExitPromptError') {
      ctx.out.error('cancelled');
      return 130;
    }
    ctx.out.error(`unexpected error: ${err instanceof Error ? err.message : String(err)}`);
    if (ctx.env.REGCTL_DEBUG && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
    return 1;
  }
}
