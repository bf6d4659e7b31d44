import { Command } from 'commander';
import type { CliContext } from '../context.js';
import { wholeNumberArg } from '../arg-parsers.js';
import { outputFor, stackDir } from './day-two.js';

interface EventsFlags {
  dir?: string;
  limit?: number;
  json?: boolean;
}

/** `regctl events`: the event endpoints (events: of regctl.yaml), what waits for each, and the delivery log. */
export function eventsCommand(ctx: CliContext): Command {
  return new Command('events')
    .description('show the event endpoints (webhooks), what waits for each, and their last delivery attempts')
    .option('--dir <dir>', 'stack directory (default: the current directory)')
    .option(
      '--limit <n>',
      'attempts shown per endpoint (up to 50, default 20)',
      wholeNumberArg('--limit', { min: 1, unit: 'attempts' }),
    )
    .option('--json', 'print one JSON document')
    .action(async (flags: EventsFlags) => {
      const { eventsStatus, printEvents } = await import('../../ops/events.js');
      const out = outputFor(ctx.out, flags.json);
      const s = await eventsStatus({
        dir: stackDir(ctx, flags.dir),
        ...(flags.limit !== undefined ? { limit: flags.limit } : {}),
        out,
        env: ctx.env,
      });
      if (flags.json) out.json(s);
      else printEvents(s, out);
    });
}
