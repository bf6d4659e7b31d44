import { Command } from 'commander';
import type { CliContext } from '../context.js';
import { durationArg } from '../arg-parsers.js';
import { outputFor, stackDir } from './day-two.js';
import { readStdinSecret } from '../../common/stdin.js';
import { defaultEngineFactory, type EngineFactory } from './stack-engine.js';

interface Flags {
  dir?: string;
  user?: string;
  passwordStdin?: boolean;
  grace: number;
  json?: boolean;
}

export function rotateCredentialsCommand(
  ctx: CliContext,
  engineFactory: EngineFactory = defaultEngineFactory,
): Command {
  return new Command('rotate-credentials')
    .description('give a user (the .env admin by default) a new password; the running registry takes it at once')
    .option('--dir <dir>', 'stack directory (default: the current directory)')
    .option('--user <name>', 'whose password to rotate (default: REGISTRY_USERNAME of .env)')
    .option('--password-stdin', 'read the new password from stdin instead of generating one')
    .option(
      '--grace <duration>',
      'how long the old password keeps working, e.g. 10m (default: not at all)',
      durationArg('--grace'),
      0,
    )
    .option('--json', 'print one JSON document (includes a generated password)')
    .action(async (flags: Flags) => {
      const { rotateCredentials } = await import('../../ops/rotate.js');
      const { formatDuration } = await import('../../common/units.js');
      const out = outputFor(ctx.out, flags.json);
      const password = flags.passwordStdin ? await readStdinSecret(ctx.stdin) : undefined;
      const r = await rotateCredentials({
        dir: stackDir(ctx, flags.dir),
        ...(flags.user ? { user: flags.user } : {}),
        ...(password !== undefined ? { password } : {}),
        graceMs: flags.grace,
        out,
        env: ctx.env,
        canShowSecret: Boolean(flags.json) || ctx.out.isTTY,
        engine: engineFactory(ctx),
      });
      if (flags.json) {
        out.json(r);
        return;
      }
      out.ok(`New password for ${r.user} written to auth/htpasswd${r.envUpdated ? ' and .env' : ''}`);
      if (r.generated && ctx.out.isTTY) {
        out.line(`  Password (shown once${r.envUpdated ? '; also in .env' : ''}): ${r.password ?? ''}`);
      }
      out.line(
        r.graceUntil
          ? `  The old password works until ${r.graceUntil} (${formatDuration(flags.grace)}), then is refused`
          : '  The old password is refused from now on',
      );
      if (r.reloaded)
        out.ok(`The registry reloaded its credentials${r.verified ? '; the new password is accepted' : ''}`);
      out.line(`  Web UI sessions of ${r.user} end at their next page once the old password is refused.`);
      out.line(`  Log in: ${r.loginCommand}`);
    });
}
