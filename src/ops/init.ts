/**
 * `regctl init`: the config from flags, prompts and an existing regctl.yaml, the secrets kept or made, and the
 * stack rendered and written as a plan that never replaces secrets or hand edits silently.
 */
import { createServer } from 'node:net';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { RegctlError } from '../common/errors.js';
import { exists, readIfExists } from '../common/fs.js';
import type { Output, Prompts } from '../common/io.js';
import { readStdinSecret } from '../common/stdin.js';
import { CONFIG_FILE, loadStackConfig } from '../config/load.js';
import { hostNameProblem, parseStackConfig, primaryAdmin, USER_NAME, type StackConfig } from '../config/schema.js';
import { z } from 'zod';
import { newTokenKeyPem } from '../registry/auth/token-keys.js';
import { hostnamesOf, TOKEN_KEY_FILE } from '../stack/build-model.js';
import { initMetadataPassword, initS3Credentials } from './init-secrets.js';
import { applyTrialOptions, trialNotice, type TrialOptions } from './init-trial.js';
import { ensureDevCertificates, type DevCertResult } from './dev-ca.js';
import { ENV_KEYS, envValueProblem, parseEnv } from '../stack/env.js';
import { DEFAULT_BCRYPT_COST, parseHtpasswd, setHtpasswdUser } from '../stack/htpasswd.js';
import { configDocument, renderStack } from '../stack/render.js';
import { generatePassword } from '../stack/secrets.js';
import { GRACE_FILE } from '../stack/swarm-model.js';
import { applyPlan, conflicts, planStack, type PlannedFile } from '../stack/write.js';

/** With the trial flags (`--with-postgres`, `--with-s3`, their images; ops/init-trial.ts). */
export interface InitOptions extends TrialOptions {
  dir?: string;
  yes?: boolean;
  host?: string;
  name?: string;
  user?: string;
  passwordStdin?: boolean;
  email?: string;
  acmeCaServer?: string;
  acmeCaCertificates?: string;
  traefikImage?: string;
  baseImage?: string;
  ui: boolean;
  httpPort?: number;
  httpsPort?: number;
  registryPort?: number;
  /** compose (default) or swarm: how `regctl up` runs the stack. */
  mode?: string;
  replicas?: number;
  /** postgres://USER@HOST[:PORT]/DB; the password from $REGCTL_METADATA_PASSWORD. */
  metadata?: string;
  /** s3://BUCKET[/PREFIX]; the keys from $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY. */
  storage?: string;
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
  force?: boolean;
  json?: boolean;
}

/** What init talks to: a person (out, prompts, stdin for --password-stdin), where it runs, and the environment's image overrides. */
export interface InitIo {
  out: Output;
  prompts: Prompts;
  cwd: string;
  env: Readonly<Record<string, string | undefined>>;
  stdin: NodeJS.ReadableStream;
}

export const MIN_USER_PASSWORD = 8;

/** Which flag sets which field, so validation errors name what the person typed. */
const FLAG_OF: Record<string, string> = {
  host: '--host',
  name: '--name',
  'acme.email': '--email',
  'acme.caServer': '--acme-ca-server',
  'acme.caCertificates': '--acme-ca-certificates',
  'images.traefik': '--traefik-image',
  'images.base': '--base-image',
  'ports.http': '--http-port',
  'ports.https': '--https-port',
  'ports.registry': '--registry-port',
  'deploy.mode': '--mode',
  'deploy.replicas': '--replicas',
  metadata: '--metadata',
  'storage.url': '--storage',
  'storage.endpoint': '--s3-endpoint',
  'storage.region': '--s3-region',
  trial: '--with-postgres/--with-s3',
};

const hostValidate = (value: string): true | string => {
  const problem = hostNameProblem(value);
  return problem ? `host name ${problem}` : true;
};
const emailValidate = (value: string): true | string =>
  value === '' || z.email().safeParse(value).success ? true : 'not an email address';

/** Resolves when `port` can be bound on all addresses; PORT_IN_USE otherwise. */
export async function ensurePortFree(port: number, flag: string): Promise<void> {
  await new Promise<void>((resolvePromise, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') {
        reject(
          new RegctlError('PORT_IN_USE', `port ${port} is already in use on this machine`, {
            hint: `stop what listens on ${port}, or choose another port with ${flag}`,
          }),
        );
      } else {
        // Without the right to bind (a low port as non-root), nothing can be concluded here; `up` will tell.
        resolvePromise();
      }
    });
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => server.close(() => resolvePromise()));
  });
}

/** The CA file as regctl.yaml stores it: relative to the stack directory when inside it, absolute otherwise. */
async function caCertificatesPath(cwd: string, dir: string, given: string): Promise<string> {
  const path = resolve(cwd, given);
  if (!(await exists(path))) {
    throw new RegctlError('USAGE', `--acme-ca-certificates: no file at ${path}`, {
      hint: "give the PEM file of the ACME server's root certificate",
    });
  }
  const rel = relative(dir, path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

/** The config `input` describes, or a CONFIG_INVALID error naming the flag (or field) of its first problem. */
export function validated(input: Record<string, unknown>): StackConfig {
  const result = parseStackConfig(input);
  if (result.config) return result.config;
  const first = result.problems[0]!;
  const flag = FLAG_OF[first.path];
  const where = flag ? `${flag}` : first.path || CONFIG_FILE;
  throw new RegctlError('CONFIG_INVALID', `${where}: ${first.message}`, { hint: first.hint });
}

function statusWord(status: PlannedFile['status']): string {
  switch (status) {
    case 'create':
      return 'create';
    case 'unchanged':
      return 'unchanged';
    case 'change':
      return 'change';
    case 'edited':
      return 'edited by hand, would be replaced';
    case 'keep':
      return 'keep (secret)';
  }
}

/** The config document the flags, the prompts (when `ask`) and the existing regctl.yaml describe, not yet validated. */
async function configInput(
  ctx: InitIo,
  opts: InitOptions,
  dir: string,
  existing: StackConfig | undefined,
  ask: boolean,
): Promise<Record<string, unknown>> {
  const input: Record<string, unknown> = existing ? structuredClone(configDocument(existing)) : { version: 1 };
  const section = (key: string): Record<string, unknown> => {
    const current = input[key];
    if (current && typeof current === 'object' && !Array.isArray(current)) return current as Record<string, unknown>;
    const fresh: Record<string, unknown> = {};
    input[key] = fresh;
    return fresh;
  };

  let host = opts.host;
  if (host === undefined && ask) {
    host = await ctx.prompts.input('Domain the registry is served under (registry.<domain>)', {
      default: 'localhost',
      validate: hostValidate,
    });
  }
  if (host !== undefined) input.host = host;
  if (opts.name !== undefined) input.name = opts.name;

  let user = opts.user;
  if (!existing) {
    if (user === undefined && ask) {
      user = await ctx.prompts.input('Admin user name', {
        default: 'admin',
        validate: (v) => (USER_NAME.test(v) ? true : 'letters, digits, ".", "_" or "-"'),
      });
    }
    user ??= 'admin';
    if (!USER_NAME.test(user)) {
      throw new RegctlError('USAGE', `--user: "${user}" is not a valid user name`, {
        hint: 'use letters, digits, ".", "_" or "-" (no ":")',
      });
    }
    input.users = { [user]: { admin: true } };
  } else if (opts.user !== undefined && !(opts.user in existing.users)) {
    ctx.out.warn(`--user ${opts.user} ignored: users of an existing stack come from ${CONFIG_FILE}`);
  }

  let email = opts.email;
  if (email === undefined && ask) {
    email = await ctx.prompts.input("Email for Let's Encrypt (HTTPS in prod; empty to skip)", {
      default: '',
      validate: emailValidate,
    });
  }
  if (email) section('acme').email = email;
  if (opts.acmeCaServer !== undefined) section('acme').caServer = opts.acmeCaServer;
  if (opts.acmeCaCertificates !== undefined)
    section('acme').caCertificates = await caCertificatesPath(ctx.cwd, dir, opts.acmeCaCertificates);

  const images = section('images');
  const traefikImage = opts.traefikImage ?? (existing ? undefined : ctx.env.REGCTL_TRAEFIK_IMAGE || undefined);
  const baseImage = opts.baseImage ?? (existing ? undefined : ctx.env.REGCTL_BASE_IMAGE || undefined);
  if (traefikImage !== undefined) images.traefik = traefikImage;
  if (baseImage !== undefined) images.base = baseImage;

  let uiEnabled: boolean | undefined = opts.ui === false ? false : undefined;
  if (uiEnabled === undefined && ask)
    uiEnabled = await ctx.prompts.confirm('Serve the web UI at registry-ui.<domain>?', { default: true });
  if (uiEnabled !== undefined) section('ui').enabled = uiEnabled;

  const ports = section('ports');
  if (opts.httpPort !== undefined) ports.http = opts.httpPort;
  if (opts.httpsPort !== undefined) ports.https = opts.httpsPort;
  if (opts.registryPort !== undefined) ports.registry = opts.registryPort;
  if (opts.mode !== undefined) section('deploy').mode = opts.mode;
  if (opts.replicas !== undefined) section('deploy').replicas = opts.replicas;
  if (opts.metadata !== undefined) input.metadata = opts.metadata;
  if (opts.storage !== undefined) section('storage').url = opts.storage;
  if (opts.s3Endpoint !== undefined) section('storage').endpoint = opts.s3Endpoint;
  if (opts.s3Region !== undefined) section('storage').region = opts.s3Region;
  if (opts.s3PathStyle) section('storage').pathStyle = true;
  applyTrialOptions(input, section, opts, ctx.env, existing);
  return input;
}

interface InitCredentials {
  username: string;
  password: string;
  /** Set when generated here: shown once. */
  shownPassword: string | undefined;
  existingHtpasswd: string | undefined;
}

/** Secrets: an existing stack keeps its password and htpasswd; a new one gets a given, typed or generated password. */
async function initCredentials(
  ctx: InitIo,
  opts: InitOptions,
  dir: string,
  config: StackConfig,
  ask: boolean,
): Promise<InitCredentials> {
  const envPath = join(dir, '.env');
  const htpasswdPath = join(dir, 'auth', 'htpasswd');
  const existingEnv = parseEnv((await readIfExists(envPath)) ?? '');
  const existingHtpasswd = await readIfExists(htpasswdPath);
  let password = existingEnv[ENV_KEYS.password] || undefined;
  const username = existingEnv[ENV_KEYS.username] || primaryAdmin(config);
  let shownPassword: string | undefined;
  if (opts.passwordStdin) {
    const given = await readStdinSecret(ctx.stdin);
    if (password !== undefined || existingHtpasswd !== undefined) {
      ctx.out.warn('--password-stdin ignored: this stack already has credentials (they are never replaced by init)');
    } else {
      if (given.length < MIN_USER_PASSWORD) {
        throw new RegctlError(
          'USAGE',
          `the password read from stdin is ${given.length ? 'shorter than' : 'empty, need at least'} ${MIN_USER_PASSWORD} characters`,
          {
            hint: 'pipe a longer password, or leave out --password-stdin to get a generated one',
          },
        );
      }
      if (/[\r\n]/.test(given))
        throw new RegctlError('USAGE', 'the password read from stdin spans several lines', { hint: 'pipe one line' });
      password = given;
    }
  } else if (password === undefined && existingHtpasswd === undefined && ask) {
    const typed = await ctx.prompts.password(`Password for ${username} (empty to generate a strong one)`, {
      validate: (v) => (v === '' || v.length >= MIN_USER_PASSWORD ? true : `at least ${MIN_USER_PASSWORD} characters`),
    });
    if (typed) password = typed;
  }
  if (password === undefined) {
    if (existingHtpasswd !== undefined) {
      throw new RegctlError('CONFIG_INVALID', `${envPath} has no ${ENV_KEYS.password} but auth/htpasswd exists`, {
        hint: 'restore .env from a backup, or set new credentials with `regctl rotate-credentials`',
      });
    }
    password = generatePassword();
    shownPassword = password;
  }
  const passwordProblem = envValueProblem(password, { secret: true });
  if (passwordProblem) {
    throw new RegctlError('USAGE', `the password goes into .env, and it ${passwordProblem}`, {
      hint: 'choose another password, or leave out --password-stdin to get a generated one',
    });
  }
  return { username, password, shownPassword, existingHtpasswd };
}

interface InitOutcome {
  dir: string;
  existing: boolean;
  config: StackConfig;
  plan: PlannedFile[];
  result: { written: string[]; backups: string[] };
  username: string;
  shownPassword: string | undefined;
  certs: DevCertResult;
}

/** What init did, for a person. */
function printResult(ctx: InitIo, o: InitOutcome): void {
  const { dir, config, plan, result, username, shownPassword } = o;
  const hostnames = hostnamesOf(config);
  ctx.out.step(`${o.existing ? 'Re-rendered' : 'Created'} the stack in ${dir}`);
  for (const f of plan) {
    const written = result.written.includes(f.path);
    const word = written ? (f.status === 'create' ? 'created' : 'updated') : f.status === 'keep' ? 'kept' : 'unchanged';
    ctx.out.line(`  ${word.padEnd(10)} ${f.path}${f.secret ? ' (0600)' : ''}`);
  }
  for (const b of result.backups) ctx.out.line(`  saved      ${b} (your edits)`);
  for (const f of o.certs.files) ctx.out.line(`  ${f.status.padEnd(10)} ${f.path}${f.secret ? ' (0600)' : ''}`);
  if (o.certs.caReplaced) {
    ctx.out.warn(`a new local CA replaced the old one (${o.certs.caReplaced}): run \`regctl login --trust\` again`);
  }
  if (shownPassword) {
    ctx.out.line();
    ctx.out.ok(`Registry user ${username}, password (shown once; also in .env, mode 0600):`);
    ctx.out.line(`  ${shownPassword}`);
  }
  ctx.out.line();
  ctx.out.line(`Next: regctl up --dir ${dir}${config.mode === 'prod' ? ' --prod' : ''}`);
  if (config.host === 'localhost' || config.host.endsWith('.localhost')) {
    ctx.out.line(
      `If ${hostnames.registry} does not resolve here, add to /etc/hosts: 127.0.0.1 ${Object.values(hostnames).join(' ')}`,
    );
  }
}

export async function runInit(ctx: InitIo, opts: InitOptions): Promise<void> {
  const dir = resolve(ctx.cwd, opts.dir ?? '.');
  const configPath = join(dir, CONFIG_FILE);
  const existing = (await exists(configPath)) ? await loadStackConfig(dir) : undefined;
  const ask = ctx.prompts.interactive && !opts.yes && !existing;
  const config = validated(await configInput(ctx, opts, dir, existing, ask));
  const { username, password, shownPassword, existingHtpasswd } = await initCredentials(ctx, opts, dir, config, ask);

  if (!existing) {
    const checks: [number, string][] = [
      [config.ports.http, '--http-port'],
      // The dev stack also serves HTTPS with the local CA's certificate.
      [config.ports.https, '--https-port'],
    ];
    if (config.ports.registry !== 0) checks.push([config.ports.registry, '--registry-port']);
    for (const [port, flag] of checks) await ensurePortFree(port, flag);
  }

  const cost = Number(ctx.env.REGCTL_BCRYPT_COST) || DEFAULT_BCRYPT_COST;
  const htpasswd = existingHtpasswd ?? setHtpasswdUser('', username, password, cost);
  if (existingHtpasswd !== undefined && !parseHtpasswd(existingHtpasswd).some((e) => e.user === username)) {
    ctx.out.warn(`auth/htpasswd has no entry for ${username}; it is kept as it is`);
  }
  const metadataPassword = await initMetadataPassword(ctx.out, ctx.env, dir, config);
  const s3Credentials = await initS3Credentials(ctx.out, ctx.env, dir, config);
  const grace = await readIfExists(join(dir, GRACE_FILE));
  const previousKey = await readIfExists(join(dir, 'auth', `${TOKEN_KEY_FILE}.previous`));
  const files = renderStack(config, {
    secrets: {
      username,
      password,
      htpasswd,
      ...(metadataPassword !== undefined ? { metadataPassword } : {}),
      ...(s3Credentials !== undefined ? { s3Credentials } : {}),
      ...(grace !== undefined ? { grace } : {}),
      // Made at every init and written only when absent, so a stack switched to `registry.auth: token` has its key.
      tokenKey: (await readIfExists(join(dir, 'auth', TOKEN_KEY_FILE))) ?? newTokenKeyPem(),
      ...(previousKey !== undefined ? { tokenKeyPrevious: previousKey } : {}),
    },
  });
  if (config.deploy.mode === 'swarm' && !config.storage.url && !opts.json) {
    ctx.out.warn(
      'swarm: the registry keeps its data on a local volume of the manager it runs on, which is for one node only; ' +
        'several nodes need S3 storage: --storage s3://BUCKET (see docs/swarm.md)',
    );
  }
  const notice = trialNotice(config);
  if (notice && !opts.json) ctx.out.warn(notice);
  if (existing && isDeepStrictEqual(config, existing)) {
    // Nothing asked to change the config: the person's own regctl.yaml (comments, layout) stays as it is.
    const file = files.find((f) => f.path === CONFIG_FILE);
    if (file) file.keepExisting = true;
  }
  const plan = await planStack(dir, files);
  const blocking = conflicts(plan);
  if (blocking.length > 0 && !opts.force) {
    if (!opts.json) {
      for (const f of blocking) ctx.out.line(`  ${statusWord(f.status).padEnd(12)} ${f.path}`);
    }
    throw new RegctlError(
      'FILE_EXISTS',
      `${blocking.length} file${blocking.length > 1 ? 's' : ''} in ${dir} would change: ${blocking.map((f) => f.path).join(', ')}`,
      {
        hint: 'run again with --force to re-render them (files edited by hand are saved as <file>.bak; passwords are kept)',
      },
    );
  }
  const result = await applyPlan(dir, plan, { force: Boolean(opts.force) });
  const certs = await ensureDevCertificates(dir, config.host, Object.values(hostnamesOf(config)));

  if (opts.json) {
    ctx.out.json({
      dir,
      files: plan.map((f) => ({ path: f.path, status: f.status, written: result.written.includes(f.path) })),
      backups: result.backups,
      certificates: certs.files,
      ...(certs.caReplaced ? { caReplaced: certs.caReplaced } : {}),
      username,
      ...(shownPassword ? { password: shownPassword } : {}),
      hostnames: hostnamesOf(config),
    });
    return;
  }
  printResult(ctx, { dir, existing: existing !== undefined, config, plan, result, username, shownPassword, certs });
}
