/**
 * config → the files of a stack directory:
 *
 * ```
 * regctl.yaml              the config (source of truth)
 * compose.yaml             dev stack (HTTP)            compose.prod.yaml     prod stack (HTTPS, ACME)
 * traefik/traefik.yml      Traefik static config, dev  traefik/traefik.prod.yml                  prod
 * traefik/tls.yml          dev: the local CA's leaf as Traefik's default certificate (certs/: see dev-tls.ts)
 * auth/access.yaml         who may pull/push/delete what
 * auth/registry.yaml       the registry's config file: the policies (only when regctl.yaml has policies:)
 * auth/htpasswd    0600    bcrypt hashes (secret; never re-rendered once it exists)
 * .env             0600    COMPOSE_PROJECT_NAME, REGCTL_PACKAGE_DIR, images, admin password (secret)
 * .gitignore               keeps .env, auth/htpasswd(.grace), robots, token keys, letsencrypt/ and *.bak out of git
 * ```
 * Rendering is pure; `writeStack` plans and writes (see write.ts).
 */
import { fileURLToPath } from 'node:url';
import { DEFAULT_REGISTRY_IMAGE, type StackConfig } from '../config/schema.js';
import { CONFIG_FILE } from '../config/load.js';
import { buildStackModel, TRAEFIK_CONFIG_FILES } from './build-model.js';
import { COMPOSE_FILES, renderCompose, toYamlText } from './compose.js';
import { renderEnv } from './env.js';
import { traefikStaticConfig } from './traefik.js';
import { applyPlan, planStack, type ApplyResult, type PlannedFile, type StackFile } from './write.js';
import type { StackMode } from './model.js';
import { buildSwarmModel, SWARM_COMPOSE_FILE, SWARM_TRAEFIK_FILE } from './swarm-model.js';
import { renderSwarmCompose } from './swarm-compose.js';
import { METADATA_PASSWORD_FILE, S3_CREDENTIALS_FILE, TOKEN_KEY_FILE } from './build-model.js';
import { REGISTRY_CONFIG_FILE, registryConfigText } from './registry-config.js';
import { CA_KEY_FILE, LEAF_DIR, TLS_DYNAMIC_FILE, TRAEFIK_TLS_PATH, tlsDynamicConfigText } from './dev-tls.js';

/** This package's root directory (the build context of the registry image). */
export const PACKAGE_DIR = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');

export interface StackSecrets {
  username: string;
  password: string;
  /** Full text of auth/htpasswd. */
  htpasswd: string;
  /** The PostgreSQL password (auth/metadata-password), when the config names a PostgreSQL metadata store. */
  metadataPassword?: string;
  /** Full text of auth/s3-credentials (AWS shared-credentials format), when the storage is S3. */
  s3Credentials?: string;
  /** Text of auth/htpasswd.grace when it exists (a swarm stack deploys it as a secret). */
  grace?: string;
  /** The token signing key (PEM), written once to auth/token-key.pem (0600) and kept after. */
  tokenKey?: string;
  /** auth/token-key.pem.previous while a key rotation's grace lasts (a swarm stack deploys it as a secret). */
  tokenKeyPrevious?: string;
}

export interface RenderOptions {
  /** Written to `.env` as REGCTL_PACKAGE_DIR. */
  packageDir?: string;
  /** Without secrets (committed examples), `.env.example` replaces `.env` and there is no htpasswd. */
  secrets?: StackSecrets;
  version?: string;
}

const MODES: StackMode[] = ['dev', 'prod'];

/** regctl.yaml as a person would write it: defaults that follow the package (the image tag) are left out. */
export function configDocument(config: StackConfig): Record<string, unknown> {
  const users = Object.fromEntries(
    Object.entries(config.users).map(([name, u]) => [name, u.admin ? { admin: true } : { rules: u.rules }]),
  );
  const images: Record<string, string> = Object.fromEntries(
    Object.entries(config.images).filter((e): e is [string, string] => e[1] !== undefined),
  );
  if (images.registry === DEFAULT_REGISTRY_IMAGE) delete images.registry;
  const acme: Record<string, string> = {};
  if (config.acme.email) acme.email = config.acme.email;
  acme.caServer = config.acme.caServer;
  if (config.acme.caCertificates) acme.caCertificates = config.acme.caCertificates;
  return {
    version: config.version,
    name: config.name,
    host: config.host,
    mode: config.mode,
    ports: config.ports,
    users,
    ...storageDocument(config.storage),
    ui: config.ui,
    acme,
    images,
    traefik: config.traefik,
    registry: config.registry,
    ...(config.deploy.mode !== 'compose' || config.deploy.replicas !== 1 ? { deploy: config.deploy } : {}),
    ...(config.metadata ? { metadata: config.metadata } : {}),
    ...(config.policies ? { policies: config.policies } : {}),
    ...(config.events ? { events: config.events } : {}),
    ...(config.anonymous ? { anonymous: config.anonymous } : {}),
    ...(config.trial ? { trial: config.trial } : {}),
  };
}

/** The storage section as written: only what was set (pathStyle only when true). */
function storageDocument(storage: StackConfig['storage']): { storage?: Record<string, unknown> } {
  const { pathStyle, ...rest } = storage;
  const doc: Record<string, unknown> = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
  if (pathStyle) doc.pathStyle = true;
  return Object.keys(doc).length > 0 ? { storage: doc } : {};
}

const CONFIG_HEADER = [
  ' regctl stack configuration: the single source of truth of this directory.',
  ' After editing, run `regctl init --force` to re-render the other files, then `regctl up`.',
  ' Passwords are not here: see .env (the admin) and auth/htpasswd (bcrypt hashes).',
].join('\n');

function accessDocument(config: StackConfig): Record<string, unknown> {
  return {
    users: Object.fromEntries(
      Object.entries(config.users).map(([name, u]) => [name, u.admin ? { admin: true } : { rules: u.rules }]),
    ),
    ...(config.anonymous?.pull.length ? { anonymous: { pull: config.anonymous.pull } } : {}),
  };
}

const ACCESS_HEADER = [
  ' Who may do what on this registry, read by the registry next to auth/htpasswd.',
  ' Rendered from the users of regctl.yaml. admin: every action everywhere; rules: actions (pull, push,',
  ' delete) on repositories matching a pattern (* within one path segment, ** across segments).',
  ' A user in htpasswd but not listed here gets nothing.',
].join('\n');

const gitignore = (config: StackConfig): string =>
  [
    '# Secrets and machine state of this regctl stack: never commit them.',
    '.env',
    'auth/htpasswd',
    'auth/htpasswd.grace',
    'auth/robots.yaml',
    `auth/${TOKEN_KEY_FILE}`,
    `auth/${TOKEN_KEY_FILE}.previous`,
    ...(config.metadata ? [`auth/${METADATA_PASSWORD_FILE}`] : []),
    ...(config.storage.url ? [`auth/${S3_CREDENTIALS_FILE}`] : []),
    CA_KEY_FILE,
    `${LEAF_DIR}/*.key`,
    'letsencrypt/',
    '*.bak',
    '',
  ].join('\n');

function traefikHeader(mode: StackMode, swarm = false): string {
  return [
    ` Traefik static configuration (${swarm ? `Swarm, ${mode}` : mode}), rendered by regctl from regctl.yaml.`,
    " readTimeout is raised on the entrypoints: Traefik's 60 s default would cut long `docker push` uploads.",
    swarm
      ? ' Only services of this stack with traefik.enable=true are routed, to their tasks over the stack network.'
      : ' Only containers of this compose project with traefik.enable=true are routed, over the stack network.',
  ].join('\n');
}

function traefikConfigText(config: StackConfig, mode: StackMode, provider: 'docker' | 'swarm'): string {
  const staticConfig = traefikStaticConfig({
    mode,
    project: config.name,
    network: `${config.name}_proxy`,
    dashboard: config.traefik.dashboard,
    readTimeout: config.traefik.readTimeout,
    writeTimeout: config.traefik.writeTimeout,
    idleTimeout: config.traefik.idleTimeout,
    accessLog: config.traefik.accessLog,
    logLevel: config.traefik.logLevel,
    acme: config.acme,
    provider,
    ...(mode === 'dev' && provider === 'docker' ? { devTlsFile: TRAEFIK_TLS_PATH } : {}),
  });
  return toYamlText(staticConfig, traefikHeader(mode, provider === 'swarm'));
}

/** The access file's text (auth/access.yaml), also the content of the swarm stack's `access` config. */
export function accessText(config: StackConfig): string {
  return toYamlText(accessDocument(config), ACCESS_HEADER);
}

/**
 * The swarm stack's files: its Traefik static config and compose.swarm.yaml, whose secret and config names carry
 * digests of the secret files' contents (which is why they need the secrets).
 */
function swarmFiles(config: StackConfig, secrets: StackSecrets, version: string | undefined): StackFile[] {
  const traefik = traefikConfigText(config, config.mode, 'swarm');
  const model = buildSwarmModel(
    config,
    config.mode,
    {
      htpasswd: secrets.htpasswd,
      access: accessText(config),
      traefik,
      ...(secrets.metadataPassword !== undefined ? { metadataPassword: `${secrets.metadataPassword}\n` } : {}),
      ...(secrets.s3Credentials !== undefined ? { s3Credentials: secrets.s3Credentials } : {}),
      ...(secrets.grace !== undefined ? { grace: secrets.grace } : {}),
      ...(secrets.tokenKey !== undefined ? { tokenKey: secrets.tokenKey } : {}),
      ...(secrets.tokenKeyPrevious !== undefined ? { tokenKeyPrevious: secrets.tokenKeyPrevious } : {}),
    },
    version ? { version } : {},
  );
  return [
    { path: SWARM_TRAEFIK_FILE, content: traefik, mode: 0o644, secret: false },
    { path: SWARM_COMPOSE_FILE, content: renderSwarmCompose(model), mode: 0o644, secret: false },
  ];
}

export function renderStack(config: StackConfig, opts: RenderOptions = {}): StackFile[] {
  const packageDir = opts.packageDir ?? PACKAGE_DIR;
  const files: StackFile[] = [
    { path: CONFIG_FILE, content: toYamlText(configDocument(config), CONFIG_HEADER), mode: 0o644, secret: false },
  ];
  for (const mode of MODES) {
    const model = buildStackModel(config, mode, opts.version ? { version: opts.version } : {});
    files.push({ path: COMPOSE_FILES[mode], content: renderCompose(model), mode: 0o644, secret: false });
  }
  for (const mode of MODES) {
    files.push({
      path: TRAEFIK_CONFIG_FILES[mode],
      content: traefikConfigText(config, mode, 'docker'),
      mode: 0o644,
      secret: false,
    });
  }
  files.push({ path: TLS_DYNAMIC_FILE, content: tlsDynamicConfigText(config.host), mode: 0o644, secret: false });
  files.push({ path: 'auth/access.yaml', content: accessText(config), mode: 0o644, secret: false });
  const registryConfig = registryConfigText(config);
  if (registryConfig) files.push({ path: REGISTRY_CONFIG_FILE, content: registryConfig, mode: 0o644, secret: false });
  if (config.deploy.mode === 'swarm' && opts.secrets) files.push(...swarmFiles(config, opts.secrets, opts.version));
  files.push({ path: '.gitignore', content: gitignore(config), mode: 0o644, secret: false });
  if (opts.secrets) {
    const { username, password } = opts.secrets;
    files.push({
      path: '.env',
      content: renderEnv(config, { packageDir, secrets: { username, password } }),
      mode: 0o600,
      secret: true,
    });
    files.push({
      path: 'auth/htpasswd',
      content: opts.secrets.htpasswd,
      mode: 0o600,
      secret: true,
      keepExisting: true,
    });
    if (opts.secrets.tokenKey !== undefined) {
      files.push({
        path: `auth/${TOKEN_KEY_FILE}`,
        content: opts.secrets.tokenKey,
        mode: 0o600,
        secret: true,
        keepExisting: true,
      });
    }
    if (opts.secrets.metadataPassword !== undefined) {
      files.push({
        path: `auth/${METADATA_PASSWORD_FILE}`,
        content: `${opts.secrets.metadataPassword}\n`,
        mode: 0o600,
        secret: true,
        keepExisting: true,
      });
    }
    if (opts.secrets.s3Credentials !== undefined) {
      files.push({
        path: `auth/${S3_CREDENTIALS_FILE}`,
        content: opts.secrets.s3Credentials,
        mode: 0o600,
        secret: true,
        keepExisting: true,
      });
    }
  } else {
    files.push({
      path: '.env.example',
      content: renderEnv(config, { packageDir, secrets: undefined }),
      mode: 0o644,
      secret: false,
    });
  }
  return files;
}

/** Plans and writes a rendered stack (see write.ts for statuses and what `force` does). */
export async function writeStack(
  dir: string,
  files: StackFile[],
  opts: { force?: boolean } = {},
): Promise<{ plan: PlannedFile[]; result: ApplyResult }> {
  const plan = await planStack(dir, files);
  const result = await applyPlan(dir, plan, opts);
  return { plan, result };
}
