import { Command, Option } from 'commander';
import type { CliContext } from '../context.js';
import { RegctlError } from '../../common/errors.js';
import { untilStopSignal } from '../signals.js';
import type { RawSettings, ServeSettings } from '../../registry/config.js';
import type { RegistryServerOptions } from '../../registry/server.js';

interface ServeFlags {
  listen?: string;
  data?: string;
  storage?: string;
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
  s3Redirect?: boolean;
  htpasswd?: string;
  access?: string;
  /** false from --no-auth, the mode from --auth MODE. */
  auth?: boolean | string;
  tokenKey?: string;
  config?: string;
  ui?: boolean;
  logLevel?: string;
  uploadPurgeAge?: string;
  minFree?: string;
  realm?: string;
  corsOrigin?: string;
  credentialCache?: boolean;
  metadata?: string;
  metadataPasswordFile?: string;
  stateDir?: string;
  proxy?: string[];
  trustedProxy?: string;
}

/** Resolves the settings (flags > env > config file > defaults); bad values become USAGE / CONFIG_INVALID errors. */
export async function resolveServeSettings(flags: ServeFlags, env: NodeJS.ProcessEnv): Promise<ServeSettings> {
  const { loadConfigFile, resolveSettings, SettingsError } = await import('../../registry/config.js');
  const raw: RawSettings = {
    listen: flags.listen,
    data: flags.data,
    storage: flags.storage,
    s3Endpoint: flags.s3Endpoint,
    s3Region: flags.s3Region,
    s3PathStyle: flags.s3PathStyle,
    s3Redirect: flags.s3Redirect,
    htpasswd: flags.htpasswd,
    access: flags.access,
    noAuth: flags.auth === false ? true : undefined,
    ui: flags.ui,
    logLevel: flags.logLevel,
    uploadPurgeAge: flags.uploadPurgeAge,
    minFree: flags.minFree,
    realm: flags.realm,
    corsOrigins: flags.corsOrigin,
    credentialCache: flags.credentialCache === false ? false : undefined,
    metadata: flags.metadata,
    metadataPasswordFile: flags.metadataPasswordFile,
    stateDir: flags.stateDir,
    proxies: flags.proxy,
    trustedProxies: flags.trustedProxy,
    auth: typeof flags.auth === 'string' ? flags.auth : undefined,
    tokenKey: flags.tokenKey,
  };
  try {
    const configPath = flags.config ?? env.REGCTL_CONFIG;
    const file = configPath ? await loadConfigFile(configPath) : {};
    return resolveSettings(raw, env, file);
  } catch (err) {
    if (err instanceof SettingsError) {
      throw new RegctlError(err.setting === 'config' ? 'CONFIG_INVALID' : 'USAGE', err.message, {
        hint: 'see regctl serve --help',
      });
    }
    throw err;
  }
}

/**
 * A start refused for its configuration: the metadata store's setting, or a config file whose policies have
 * mistakes (the first as the message, the others as details, one line each).
 */
function startConfigError(err: Error): RegctlError | undefined {
  if (err.name === 'MetadataSettingError')
    return new RegctlError('CONFIG_INVALID', err.message, {
      hint: 'check --metadata, and REGCTL_METADATA_PASSWORD or --metadata-password-file for PostgreSQL',
    });
  if (err.name !== 'PolicyFileError') return undefined;
  const [first = '', ...rest] = (err as Error & { lines: string[] }).lines;
  return new RegctlError('CONFIG_INVALID', first, { details: rest, hint: 'fix policies: in the config file' });
}

/** Waits for SIGINT or SIGTERM; meanwhile SIGHUP re-reads the policies (as POST /admin/v1/reload does). */
async function untilStopReloading(reload: () => Promise<void> | undefined): Promise<void> {
  // A bad file keeps the policies in force; the registry logs each mistake.
  const onHup = (): void => void reload()?.catch(() => undefined);
  process.on('SIGHUP', onHup);
  await untilStopSignal();
  process.off('SIGHUP', onHup);
}

export function serveCommand(ctx: CliContext): Command {
  return serveBase(ctx).addOption(
    new Option(
      '--proxy <prefix=url>',
      'pull-through cache: serve PREFIX/<name> from the upstream registry URL, cached here; repeatable; ttl and credentials in the config file or REGCTL_PROXY_<PREFIX>_CREDENTIALS (env REGCTL_PROXIES)',
    ).argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]),
  );
}

function serveBase(ctx: CliContext): Command {
  return trustOptions(new Command('serve'))
    .description('run the OCI registry in the foreground (the registry container runs this)')
    .option('--listen <host:port>', 'address to listen on (env REGCTL_LISTEN, default 127.0.0.1:5000)')
    .option('--data <dir>', 'data directory, distribution layout (env REGCTL_DATA, default ./data)')
    .option(
      '--storage <url>',
      'store in S3 instead of --data: s3://BUCKET[/PREFIX], distribution layout; credentials from the AWS SDK chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE) (env REGCTL_STORAGE)',
    )
    .option('--s3-endpoint <url>', 'S3-compatible endpoint, e.g. http://127.0.0.1:7070 (env REGCTL_S3_ENDPOINT)')
    .option('--s3-region <region>', 'S3 region (env REGCTL_S3_REGION, default AWS_REGION or us-east-1)')
    .option(
      '--s3-path-style',
      'path-style S3 addressing, as most S3-compatible servers need (env REGCTL_S3_PATH_STYLE=1)',
    )
    .option(
      '--s3-redirect',
      'answer blob downloads with redirects to presigned S3 URLs; clients must reach the S3 endpoint (env REGCTL_S3_REDIRECT=1)',
    )
    .option('--htpasswd <file>', 'bcrypt htpasswd file (env REGCTL_HTPASSWD)')
    .option('--access <file>', 'per-user permissions, YAML (env REGCTL_ACCESS)')
    .option('--config <file>', 'YAML config file (env REGCTL_CONFIG)')
    .option('--ui', 'also serve the web UI at /ui/ (env REGCTL_UI=1)')
    .option('--log-level <level>', 'debug, info, warn, error or silent (env REGCTL_LOG_LEVEL)')
    .option(
      '--upload-purge-age <duration>',
      'purge unfinished uploads older than this; a unit is required: 90m, 24h, 7d (env REGCTL_UPLOAD_PURGE_AGE, default 24h)',
    )
    .option(
      '--min-free <size>',
      'refuse pushes when free space falls below this: 2GiB, 512MiB (powers of 1024), 5GB (powers of 1000) or bytes (env REGCTL_MIN_FREE, default 0: off)',
    )
    .option('--realm <text>', 'Basic auth realm (env REGCTL_REALM, default regctl)')
    .option('--cors-origin <origins>', 'comma-separated origins allowed by CORS (env REGCTL_CORS_ORIGIN)')
    .option(
      '--no-credential-cache',
      'run bcrypt on every request instead of caching verified credentials (env REGCTL_CREDENTIAL_CACHE=false)',
    )
    .option(
      '--metadata <store>',
      'where repositories and tags are kept: sqlite (default, under --data or with S3 --state-dir), sqlite:FILE, postgres://USER@HOST[:PORT]/DB or memory (env REGCTL_METADATA)',
    )
    .option(
      '--metadata-password-file <file>',
      'file holding the PostgreSQL password (env REGCTL_METADATA_PASSWORD_FILE; or the password in REGCTL_METADATA_PASSWORD)',
    )
    .option(
      '--state-dir <dir>',
      'with --storage s3://: local directory for the embedded metadata store, one file per bucket (env REGCTL_STATE_DIR, default the --data directory)',
    )
    .action(async (flags: ServeFlags) => {
      const settings = await resolveServeSettings(flags, ctx.env);
      const { createRegistryServer, openS3Driver, RegistryConfigError } = await import('../../registry/server.js');
      const { createLogger } = await import('../../registry/logger.js');
      const { UploadHeapGrowth } = await import('../../registry/upload-heap.js');
      let url = '';
      const uiHandler = settings.ui ? await mountedUi(settings, () => url) : undefined;
      const log = createLogger(settings.logLevel);
      let server;
      try {
        server = createRegistryServer({
          host: settings.host,
          port: settings.port,
          dataDir: settings.data,
          s3: settings.storage.kind === 's3' ? settings.storage : undefined,
          driver: settings.storage.kind === 's3' ? await openS3Driver(settings.storage, log) : undefined,
          htpasswd: settings.htpasswd,
          access: settings.access,
          noAuth: settings.noAuth,
          realm: settings.realm,
          corsOrigins: settings.corsOrigins,
          uploadPurgeAgeMs: settings.uploadPurgeAgeMs,
          minFreeBytes: settings.minFreeBytes,
          credentialCache: settings.credentialCache,
          metadata: settings.metadata,
          metadataPassword: settings.metadataPassword,
          metadataPasswordFile: settings.metadataPasswordFile,
          stateDir: settings.stateDir,
          ...{ proxies: settings.proxies, env: ctx.env },
          policiesFile: flags.config ?? (ctx.env.REGCTL_CONFIG || undefined),
          ...trustServerOptions(settings),
          log,
          uiHandler,
          heapGrowth: UploadHeapGrowth.forThisProcess(),
        });
      } catch (err) {
        if (err instanceof RegistryConfigError)
          throw new RegctlError('USAGE', err.message, {
            hint: 'regctl serve --htpasswd auth/htpasswd, or --no-auth for an open registry',
          });
        throw err;
      }
      try {
        url = (await server.listen()).url;
      } catch (err) {
        await server.close().catch(() => undefined);
        const code = (err as NodeJS.ErrnoException).code;
        const configError = startConfigError(err as Error);
        if (configError) throw configError;
        if (code === 'EADDRINUSE')
          throw new RegctlError('PORT_IN_USE', `${settings.host}:${settings.port} is already in use`, {
            hint: 'choose another with --listen HOST:PORT',
          });
        const s3 = settings.storage.kind === 's3';
        throw new RegctlError('CONFIG_INVALID', `registry cannot start: ${(err as Error).message}`, {
          hint: s3
            ? 'check --storage, --s3-endpoint, --s3-region and the AWS credentials'
            : 'check --data, --htpasswd and --access',
          cause: err,
        });
      }
      ctx.out.ok(
        `registry listening on ${url}${settings.noAuth ? ' (no authentication)' : ''}${settings.ui ? `, web UI on ${url}/ui/` : ''}`,
      );
      await untilStopReloading(() => server.app.opts.policies?.reload());
      await server.close();
    });
}

function trustServerOptions(s: ServeSettings): Pick<ServeSettings, 'trustedProxies' | 'authMode' | 'tokenKey'> {
  return { trustedProxies: s.trustedProxies, authMode: s.authMode, tokenKey: s.tokenKey };
}

/** Who is trusted and how clients authenticate: token auth and the proxies whose X-Forwarded-For is believed. */
function trustOptions(cmd: Command): Command {
  return cmd
    .option(
      '--auth <mode>',
      'basic (a password on every request) or token (Bearer tokens from the registry at /auth/token, Basic still accepted) (env REGCTL_AUTH, default basic)',
    )
    .option(
      '--token-key <file>',
      'with --auth token: the ES256 signing key, PEM, created 0600 when missing (env REGCTL_TOKEN_KEY)',
    )
    .option('--no-auth', 'run without authentication (env REGCTL_NO_AUTH=1)')
    .option(
      '--trusted-proxy <list>',
      'comma-separated addresses, CIDR blocks or host names of proxies whose X-Forwarded-For names the client; the right-most address not in the list is throttled (env REGCTL_TRUSTED_PROXIES, default none: the TCP peer is the client)',
    );
}

/** The web UI served at /ui/ on the registry's own listener (`--ui`), with the registry's trusted proxies. */
async function mountedUi(settings: ServeSettings, registry: () => string): Promise<RegistryServerOptions['uiHandler']> {
  const { createUiHandler } = await import('../../ui/server.js');
  const { startTrustedProxies } = await import('../../common/client-address.js');
  const trustedProxies = await startTrustedProxies(settings.trustedProxies);
  return createUiHandler({ registry, basePath: '/ui', ...(trustedProxies ? { trustedProxies } : {}) });
}
