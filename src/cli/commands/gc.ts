import { Command } from 'commander';
import { GC_DEFAULTS } from '../../common/gc-defaults.js';
import type { CliContext } from '../context.js';
import { durationArg } from '../arg-parsers.js';
import { outputFor, stackDir } from './day-two.js';

export function gcCommand(ctx: CliContext): Command {
  return new Command('gc')
    .description('garbage-collect unreferenced blobs while the registry keeps serving')
    .option('--dir <dir>', 'stack directory (default: the current directory)')
    .option('--dry-run', 'only report what would go and why the rest stays')
    .option(
      '--delete-untagged',
      'also remove manifests no tag reaches (index children and referrers of tagged ones stay)',
    )
    .option(
      '--grace <duration>',
      "never sweep blobs younger than this, e.g. 1h (default: the registry's, 1h)",
      durationArg('--grace'),
    )
    .option('--verbose', 'list every kept blob, not only on a dry run')
    .option('--json', 'print one JSON document')
    .action(
      async (flags: {
        dir?: string;
        dryRun?: boolean;
        deleteUntagged?: boolean;
        grace?: number;
        verbose?: boolean;
        json?: boolean;
      }) => {
        const { gc, printGcSummary } = await import('../../ops/gc.js');
        const out = outputFor(ctx.out, flags.json);
        const s = await gc({
          dir: stackDir(ctx, flags.dir),
          dryRun: flags.dryRun ?? false,
          deleteUntagged: flags.deleteUntagged ?? GC_DEFAULTS.deleteUntagged,
          ...(flags.grace !== undefined ? { graceMs: flags.grace } : {}),
          out,
          env: ctx.env,
        });
        if (flags.json) out.json(s);
        else printGcSummary(s, out, { verbose: flags.verbose ?? false });
      },
    );
}
