import type { Command } from 'commander';
import type { CliContext } from '../context.js';

/** Every command of the program, in the order `--help` lists them. One file per command. */
export const commandFactories: ((ctx: CliContext) => Command)[] = [];
