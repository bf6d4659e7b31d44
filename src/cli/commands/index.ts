import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { initCommand } from './init.js';
import { upCommand } from './up.js';
import { downCommand } from './down.js';
import { statusCommand } from './status.js';
import { logsCommand } from './logs.js';
import { uiCommand } from './ui.js';
import { serveCommand } from './serve.js';

/** Every command of the program, in the order `--help` lists them. One file per command. */
export const commandFactories: ((ctx: CliContext) => Command)[] = [
  (ctx) => initCommand(ctx),
  (ctx) => upCommand(ctx),
  (ctx) => downCommand(ctx),
  (ctx) => statusCommand(ctx),
  (ctx) => logsCommand(ctx),
  (ctx) => uiCommand(ctx),
  (ctx) => serveCommand(ctx),
];
