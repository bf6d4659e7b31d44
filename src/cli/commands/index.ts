import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { initCommand } from './init.js';
import { upCommand } from './up.js';
import { downCommand } from './down.js';
import { statusCommand } from './status.js';
import { logsCommand } from './logs.js';
import { scaleCommand } from './scale.js';
import { uiCommand } from './ui.js';
import { serveCommand } from './serve.js';
import { rotateCredentialsCommand } from './rotate-credentials.js';
import { usersCommand } from './users.js';
import { robotsCommand } from './robots.js';
import { backupCommand } from './backup.js';
import { restoreCommand } from './restore.js';
import { gcCommand } from './gc.js';
import { retentionCommand } from './retention.js';
import { eventsCommand } from './events.js';
import { maintenanceCommand, repoCommand } from './repo.js';
import { fsckCommand } from './fsck.js';
import { doctorCommand } from './doctor.js';
import { loginCommand } from './login.js';
import { ciCommand } from './ci.js';
import { adoptCommand } from './adopt.js';

/** Every command of the program, in the order `--help` lists them. One file per command. */
export const commandFactories: ((ctx: CliContext) => Command)[] = [
  (ctx) => initCommand(ctx),
  (ctx) => upCommand(ctx),
  (ctx) => downCommand(ctx),
  (ctx) => statusCommand(ctx),
  (ctx) => logsCommand(ctx),
  (ctx) => scaleCommand(ctx),
  (ctx) => uiCommand(ctx),
  (ctx) => serveCommand(ctx),
  (ctx) => rotateCredentialsCommand(ctx),
  (ctx) => usersCommand(ctx),
  (ctx) => robotsCommand(ctx),
  (ctx) => backupCommand(ctx),
  (ctx) => restoreCommand(ctx),
  (ctx) => gcCommand(ctx),
  (ctx) => retentionCommand(ctx),
  (ctx) => eventsCommand(ctx),
  (ctx) => repoCommand(ctx),
  (ctx) => maintenanceCommand(ctx),
  (ctx) => fsckCommand(ctx),
  (ctx) => doctorCommand(ctx),
  (ctx) => loginCommand(ctx),
  (ctx) => ciCommand(ctx),
  (ctx) => adoptCommand(ctx),
];
