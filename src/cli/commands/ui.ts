import { Command } from 'commander';
import type { CliContext } from '../context.js';
import { RegctlError } from '../../common/errors.js';
import { untilStopSignal } from '../signals.js';
import { startTrustedProxies, TrustedProxies, TrustedProxyError } from '../../common/client-address.js';

export interface UiCommandOptions {
  listen?: string;
  registry?: string;
  publicRegistry?: string;
  secureCookies?: boolean;
  trustedProxy?: string;
}

export interface ResolvedUiOptions {
  host: string;
  port: number;
  registry: string;
  publicRegistry: string | undefined;
  secureCookies: boolean;
  /** Proxies whose X-Forwarded-For names the client (addresses, CIDR blocks, host names); none by default. */
  trustedProxies: string[];
}

const TRUE_VALUES = new Set(['1', 'true', 'yes', 'on']);

/** Flags beat environment variables, which beat defaults. Throws a USAGE RegctlError on bad values. */
export function resolveUiOptions(flags: UiCommandOptions, env: NodeJS.ProcessEnv): ResolvedUiOptions {
  const listen = flags.listen ?? env.REGCTL_UI_LISTEN ?? '127.0.0.1:8080';
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new RegctlError('USAGE', `--listen must be HOST:PORT, got "${listen}"`, {
      hint: 'for example --listen 0.0.0.0:8080',
    });
  }
  const host = m[1] ?? (m[2] || '0.0.0.0');
  const registry = flags.registry ?? env.REGCTL_UI_REGISTRY ?? 'http://127.0.0.1:5000';
  let registryUrl: URL;
  try {
    registryUrl = new URL(registry);
  } catch {
    throw new RegctlError('USAGE', `--registry must be a URL, got "${registry}"`, {
      hint: 'for example --registry http://registry:5000',
    });
  }
  if (registryUrl.protocol !== 'http:' && registryUrl.protocol !== 'https:') {
    throw new RegctlError('USAGE', `--registry must be an http or https URL, got "${registry}"`);
  }
  const secureEnv = env.REGCTL_UI_SECURE_COOKIES;
  let trustedProxies: string[];
  try {
    trustedProxies = TrustedProxies.parseList(flags.trustedProxy ?? env.REGCTL_TRUSTED_PROXIES ?? '');
    new TrustedProxies(trustedProxies);
  } catch (err) {
    if (!(err instanceof TrustedProxyError)) throw err;
    throw new RegctlError('USAGE', `--trusted-proxy: ${err.message}`, {
      hint: 'addresses, CIDR blocks or host names, comma-separated: --trusted-proxy 10.0.0.0/8,traefik',
    });
  }
  return {
    host,
    port,
    registry: registryUrl.toString().replace(/\/$/, ''),
    publicRegistry: flags.publicRegistry ?? env.REGCTL_UI_PUBLIC_REGISTRY ?? undefined,
    secureCookies: flags.secureCookies ?? (secureEnv !== undefined && TRUE_VALUES.has(secureEnv.toLowerCase())),
    trustedProxies,
  };
}

export function uiCommand(ctx: CliContext): Command {
  return new Command('ui')
    .description('run the web UI: browse, inspect and delete images of a registry')
    .option('--listen <host:port>', 'address to listen on (env REGCTL_UI_LISTEN)', undefined)
    .option('--registry <url>', 'the registry as this server reaches it (env REGCTL_UI_REGISTRY)')
    .option('--public-registry <host>', 'registry host shown in pull commands (env REGCTL_UI_PUBLIC_REGISTRY)')
    .option('--secure-cookies', 'mark the session cookie Secure, for HTTPS (env REGCTL_UI_SECURE_COOKIES)')
    .option(
      '--trusted-proxy <list>',
      'proxies whose X-Forwarded-For names the client, for the sign-in throttle: addresses, CIDR blocks, host names (env REGCTL_TRUSTED_PROXIES; default none)',
    )
    .action(async (flags: UiCommandOptions) => {
      const opts = resolveUiOptions(flags, ctx.env);
      const { createUiServer } = await import('../../ui/server.js');
      const trustedProxies = await startTrustedProxies(opts.trustedProxies);
      const server = createUiServer({
        ...(trustedProxies ? { trustedProxies } : {}),
        host: opts.host,
        port: opts.port,
        registry: opts.registry,
        ...(opts.publicRegistry ? { publicRegistry: opts.publicRegistry } : {}),
        secureCookies: opts.secureCookies,
        onError: (err) => ctx.out.warn(`ui: ${err instanceof Error ? err.message : String(err)}`),
      });
      let address: { url: string };
      try {
        address = await server.listen();
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE') {
          throw new RegctlError('PORT_IN_USE', `${opts.host}:${opts.port} is already in use`, {
            hint: 'choose another with --listen HOST:PORT',
          });
        }
        throw new RegctlError('INTERNAL', `cannot listen on ${opts.host}:${opts.port}: ${(err as Error).message}`, {
          cause: err,
        });
      }
      ctx.out.ok(`web UI on ${address.url} (registry ${opts.registry})`);
      await untilStopSignal();
      await server.close();
    });
}
