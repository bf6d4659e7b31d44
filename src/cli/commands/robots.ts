import { Command } from 'commander';
import type { CliContext } from '../context.js';
import type { RobotInfo } from '../../ops/robots.js';
import { collect, outputFor, patternOptions, stackDir } from './day-two.js';

function patterns(r: RobotInfo): string {
  const parts = (['pull', 'push', 'delete'] as const)
    .filter((a) => r[a].length > 0)
    .map((a) => `${a} ${r[a].join(',')}`);
  return parts.join('; ');
}

function binding(r: RobotInfo): string {
  if (!r.oidc) return '';
  const claims = Object.entries(r.oidc.claims).map(([k, v]) => `${k}=${v}`);
  return `; OIDC ${r.oidc.issuer} aud ${r.oidc.audience} ${claims.join(' ')}`;
}

function state(r: RobotInfo, now: number): string {
  if (r.revoked) return `revoked ${r.revoked}`;
  if (r.expires !== null && Date.parse(r.expires) <= now) return `expired ${r.expires}`;
  return r.expires === null ? 'never expires' : `expires ${r.expires}`;
}

/** `regctl robots add|list|remove`: token-only robot accounts (ops/robots.ts). */
export function robotsCommand(ctx: CliContext): Command {
  const robots = new Command('robots').description(
    'token-only robot accounts for CI and automation: scoped by repository pattern, expiring, revocable',
  );

  robots.addCommand(
    patternOptions(
      new Command('add')
        .argument('<name>', 'robot name (signs in as robot$NAME)')
        .description('add a robot; its generated secret is printed once')
        .option('--dir <dir>', 'stack directory (default: the current directory)'),
    )
      .option('--expires <duration>', 'lifetime, e.g. 90d, or never', '90d')
      .option('--oidc-issuer <url>', 'no secret: sign in with an ID token of this OIDC issuer (https) as the password')
      .option('--oidc-audience <aud>', 'the audience the ID token must be for')
      .option('--oidc-claim <name=value>', 'a claim the ID token must carry (repeatable; * globs)', collect)
      .option('--json', 'print one JSON document')
      .action(
        async (
          name: string,
          flags: {
            dir?: string;
            pull?: string[];
            push?: string[];
            delete?: string[];
            expires: string;
            oidcIssuer?: string;
            oidcAudience?: string;
            oidcClaim?: string[];
            json?: boolean;
          },
        ) => {
          const { addRobot } = await import('../../ops/robots.js');
          const out = outputFor(ctx.out, flags.json);
          const r = await addRobot({
            dir: stackDir(ctx, flags.dir),
            name,
            patterns: { pull: flags.pull ?? [], push: flags.push ?? [], delete: flags.delete ?? [] },
            expires: flags.expires,
            oidc:
              flags.oidcIssuer === undefined && flags.oidcAudience === undefined && flags.oidcClaim === undefined
                ? undefined
                : { issuer: flags.oidcIssuer ?? '', audience: flags.oidcAudience, claims: flags.oidcClaim ?? [] },
            out,
            env: ctx.env,
          });
          if (flags.json) {
            out.json({ ...r.robot, secret: r.secret, reloaded: r.reloaded });
            return;
          }
          out.ok(`Robot ${r.robot.user} added: ${patterns(r.robot)}${binding(r.robot)}; ${state(r.robot, Date.now())}`);
          if (r.secret !== undefined) out.line(`  Secret (shown once, only its hash is stored): ${r.secret}`);
          const stdin = r.secret === undefined ? 'echo "$OIDC_ID_TOKEN" | ' : '';
          out.line(`  Sign in: ${stdin}docker login -u '${r.robot.user}' --password-stdin <registry>`);
          if (r.reloaded) out.ok('The registry applied the change');
        },
      ),
  );

  robots.addCommand(
    new Command('list')
      .description('list robots: patterns, created, expiry, last use, revoked')
      .option('--dir <dir>', 'stack directory (default: the current directory)')
      .option('--json', 'print one JSON document')
      .action(async (flags: { dir?: string; json?: boolean }) => {
        const { listRobots } = await import('../../ops/robots.js');
        const out = outputFor(ctx.out, flags.json);
        const list = await listRobots({ dir: stackDir(ctx, flags.dir), out, env: ctx.env });
        if (flags.json) {
          out.json(list);
          return;
        }
        if (list.length === 0) out.line('No robots: add one with regctl robots add NAME --push PATTERN');
        const now = Date.now();
        for (const r of list) {
          const used =
            r.lastUse === undefined ? 'last use unknown' : r.lastUse ? `last used ${r.lastUse}` : 'never used';
          out.line(`${r.user}  ${patterns(r)}${binding(r)}  created ${r.created}, ${state(r, now)}, ${used}`);
        }
      }),
  );

  robots.addCommand(
    new Command('remove')
      .argument('<name>', 'robot name')
      .description('revoke a robot at once (kept in the list as revoked)')
      .option('--dir <dir>', 'stack directory (default: the current directory)')
      .option('--json', 'print one JSON document')
      .action(async (name: string, flags: { dir?: string; json?: boolean }) => {
        const { removeRobot } = await import('../../ops/robots.js');
        const out = outputFor(ctx.out, flags.json);
        const r = await removeRobot({ dir: stackDir(ctx, flags.dir), name, out, env: ctx.env });
        if (flags.json) {
          out.json({ name, revoked: true, reloaded: r.reloaded });
          return;
        }
        out.ok(`Robot robot$${name} revoked`);
        if (r.reloaded) out.ok('The registry applied the change');
      }),
  );
  return robots;
}
