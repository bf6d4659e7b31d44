import { Command, CommanderError } from 'commander';
import { VERSION } from '../common/version.js';
import { commandFactories } from './commands/index.js';
import type { CliContext } from './context.js';

/** Builds a fresh program, so that each test gets its own. */
export function createProgram(ctx: CliContext): Command {
  const program = new Command('regctl')
    .description('A private Docker/OCI registry behind Traefik, in one command.')
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => process.stderr.write(s),
    });
  for (const factory of commandFactories) {
    program.addCommand(factory(ctx).exitOverride());
  }
  return program;
}

export { CommanderError };
