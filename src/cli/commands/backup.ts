import { Command } from 'commander';
import type { CliContext } from '../context.js';
import { outputFor, stackDir } from './day-two.js';

export function backupCommand(ctx: CliContext): Command {
  return new Command('backup')
    .description('write a consistent backup of the running registry (writes pause only while tags are read)')
    .option('--dir <dir>', 'stack directory (default: the current directory)')
    .option('--out <file>', 'archive to write; .gz/.tgz compresses (default: regctl-backup-<stack>-<time>.tar)')
    .option('--incremental-from <file>', 'copy only blobs the given previous backup does not hold')
    .option('--verify', 'read the finished archive back and check every file before keeping it')
    .option('--json', 'print one JSON document')
    .action(
      async (flags: { dir?: string; out?: string; incrementalFrom?: string; verify?: boolean; json?: boolean }) => {
        const { backup } = await import('../../ops/backup.js');
        const out = outputFor(ctx.out, flags.json);
        const r = await backup({
          dir: stackDir(ctx, flags.dir),
          ...(flags.out ? { outFile: flags.out } : {}),
          ...(flags.incrementalFrom ? { incrementalFrom: flags.incrementalFrom } : {}),
          verify: flags.verify ?? false,
          cwd: ctx.cwd,
          out,
          env: ctx.env,
        });
        if (flags.json) out.json(r);
      },
    );
}
