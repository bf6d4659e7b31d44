import { Command } from 'commander';
import type { CliContext } from '../context.js';
import { durationArg } from '../arg-parsers.js';
import { outputFor, stackDir } from './day-two.js';

/** `regctl repo delete NAME`: a whole repository, after a preview (admin only). */
export function repoCommand(ctx: CliContext): Command {
  const del = new Command('delete')
    .description('delete a whole repository (tags, manifests, blob links) after showing what goes')
    .argument('<name>', 'repository name, e.g. apps/web')
    .option('--dir <dir>', 'stack directory (default: the current directory)')
    .option('--dry-run', 'only show what would go')
    .option('--yes', 'delete without asking')
    .option('--override-immutable', 'also when it holds tags an immutable-tag rule protects')
    .option('--json', 'print one JSON document')
    .action(
      async (
        name: string,
        flags: { dir?: string; dryRun?: boolean; yes?: boolean; overrideImmutable?: boolean; json?: boolean },
      ) => {
        const { repoDelete } = await import('../../ops/repo-admin.js');
        const out = outputFor(ctx.out, flags.json);
        const r = await repoDelete({
          dir: stackDir(ctx, flags.dir),
          name,
          dryRun: flags.dryRun ?? false,
          yes: flags.yes ?? false,
          overrideImmutable: flags.overrideImmutable ?? false,
          out,
          prompts: ctx.prompts,
          env: ctx.env,
        });
        if (flags.json) out.json(r);
      },
    );
  return new Command('repo').description('operate on whole repositories').addCommand(del);
}

/** `regctl maintenance on|off|status`: read-only mode through the registry's fence, online. */
export function maintenanceCommand(ctx: CliContext): Command {
  return new Command('maintenance')
    .description('read-only maintenance mode: on (pushes and deletes refused with 503, pulls served), off, status')
    .argument('<action>', 'on, off or status')
    .option('--dir <dir>', 'stack directory (default: the current directory)')
    .option('--for <duration>', 'with on: lift by itself after this (default and most: 24h)', durationArg('--for'))
    .option('--json', 'print one JSON document')
    .action(async (action: string, flags: { dir?: string; for?: number; json?: boolean }) => {
      const { RegctlError } = await import('../../common/errors.js');
      if (action !== 'on' && action !== 'off' && action !== 'status')
        throw new RegctlError('USAGE', `maintenance ${action}: the action is on, off or status`, {
          hint: 'regctl maintenance on --for 2h',
        });
      const { maintenance } = await import('../../ops/repo-admin.js');
      const out = outputFor(ctx.out, flags.json);
      const s = await maintenance({
        dir: stackDir(ctx, flags.dir),
        action,
        ...(flags.for !== undefined ? { forMs: flags.for } : {}),
        out,
        env: ctx.env,
      });
      if (flags.json) out.json(s);
    });
}
