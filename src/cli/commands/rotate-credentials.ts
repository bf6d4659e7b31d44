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
  tokenKey?: boolean;
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
    .option(
      '--token-key',
      'rotate the token signing key (auth/token-key.pem) instead of a password; --grace keeps the old key accepted',
    )
    .action(async (flags: Flags) => {
      if (flags.tokenKey) return rotateKey(ctx, flags, engineFactory);
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

/** `--token-key`: a new signing key; the registry picks it up within ten seconds. */
async function rotateKey(ctx: CliContext, flags: Flags, engineFactory: EngineFactory): Promise<void> {
  const { rotateTokenKey } = await import('../../ops/rotate-token-key.js');
  const { formatDuration } = await import('../../common/units.js');
  const out = outputFor(ctx.out, flags.json);
  const r = await rotateTokenKey(stackDir(ctx, flags.dir), flags.grace, { out, engine: engineFactory(ctx) });
  if (flags.json) {
    out.json(r);
    return;
  }
  out.ok(`New token signing key written to auth/token-key.pem (kid ${r.kid}); the registry uses it within 10 s`);
  out.line(
    r.previousUntil
      ? `  Tokens of the old key are accepted until ${r.previousUntil} (${formatDuration(flags.grace)})`
      : '  Tokens of the old key are refused once the registry has read the new one; clients log in again',
  );
}
