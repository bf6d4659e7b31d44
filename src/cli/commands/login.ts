import { Command } from 'commander';
import { resolve } from 'node:path';
import type { CliContext } from '../context.js';
import { RegctlError } from '../../common/errors.js';
import { readStdinSecret } from '../../common/stdin.js';

export function loginCommand(ctx: CliContext): Command {
  return new Command('login')
    .description(
      "log the local docker client in to the stack's registry (the password goes on stdin, never on a command line)",
    )
    .option('--dir <dir>', 'stack directory (default: the current directory)')
    .option('--prod', 'the prod (HTTPS) address')
    .option('--direct', 'use the dev direct port (localhost:<ports.registry>) instead of Traefik')
    .option('--user <name>', 'log in as another user than the admin in .env')
    .option('--password-stdin', "read that user's password from standard input")
    .option('--trust', "dev: put the stack's local CA into the engine's certs.d (no restart), then log in over HTTPS")
    .option('--insecure', "dev: add the registry to the engine's insecure-registries instead (needs an engine restart)")
    .option(
      '--mirror',
      "make the local engines pull through this registry's cache: dockerd's registry-mirrors (shows the change, asks, reloads dockerd) and containerd's hosts.toml",
    )
    .option('-y, --yes', 'with --insecure or --mirror: do not ask')
    .action(
      async (opts: {
        dir?: string;
        prod?: boolean;
        direct?: boolean;
        user?: string;
        passwordStdin?: boolean;
        trust?: boolean;
        mirror?: boolean;
        insecure?: boolean;
        yes?: boolean;
      }) => {
        const { applyTrust, clientAddress, DAEMON_JSON, login, planTrust } = await import('../../ops/login.js');
        const { out } = ctx;
        const dir = resolve(ctx.cwd, opts.dir ?? '.');
        if (opts.passwordStdin && !opts.user)
          throw new RegctlError('USAGE', '--password-stdin needs --user', {
            hint: 'name the user whose password you pipe in',
          });
        if (opts.trust && (opts.insecure || opts.direct || opts.prod))
          throw new RegctlError('USAGE', '--trust goes with neither --insecure, --direct nor --prod', {
            hint: '--trust is for the dev stack through Traefik over HTTPS',
          });
        if (opts.mirror) {
          const { loginMirror } = await import('./login-mirror.js');
          return loginMirror(ctx, await clientAddress(dir, opts), opts.yes === true);
        }
        if (opts.trust) {
          const { browserTrustSteps, DOCKER_CERTS_DIR, trustStack } = await import('../../ops/trust.js');
          const trusted = await trustStack(dir, ctx.env.REGCTL_DOCKER_CERTS_DIR ?? DOCKER_CERTS_DIR);
          for (const f of trusted.files) out.line(`  ${f.status.padEnd(10)} ${f.path}`);
          out.ok(
            `the engine trusts the stack's CA for ${trusted.addresses.join(', ')} (read per connection: no restart)`,
          );
          out.line('To trust it in a browser or the OS as well:');
          for (const step of browserTrustSteps(trusted.caPath, trusted.name)) out.line(`  ${step}`);
        }
        const where = await clientAddress(dir, { ...opts, tls: Boolean(opts.trust) });
        if (opts.insecure) {
          if (!where.http)
            throw new RegctlError('USAGE', '--insecure is for the dev (HTTP) stack', {
              hint: 'the prod stack serves HTTPS with a public certificate: no engine change is needed',
            });
          const path = ctx.env.REGCTL_DAEMON_JSON ?? DAEMON_JSON;
          const plan = await planTrust(where.address, path);
          if (plan.unchanged) {
            out.ok(`${path} already lists ${where.address} in insecure-registries`);
          } else {
            out.line(plan.diff.trimEnd());
            const agreed = opts.yes || (await ctx.prompts.confirm(`Write this change to ${path}?`, { default: false }));
            if (!agreed) throw new RegctlError('CANCELLED', `${path} left unchanged`);
            await applyTrust(plan);
            out.ok(`${path} updated`);
            out.warn(
              'the engine reads daemon.json only when it starts: restart it when convenient (sudo systemctl restart docker); regctl never restarts it for you',
            );
            return;
          }
        }
        const password = opts.passwordStdin ? await readStdinSecret(ctx.stdin) : undefined;
        const r = await login({
          dir,
          ...(opts.prod ? { prod: true } : {}),
          ...(opts.direct ? { direct: true } : {}),
          ...(opts.trust ? { tls: true } : {}),
          ...(opts.user ? { user: opts.user } : {}),
          ...(password !== undefined ? { password } : {}),
          env: ctx.env,
        });
        out.ok(`docker is logged in to ${r.address} as ${r.user}`);
      },
    );
}
