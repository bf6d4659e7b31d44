/**
 * config → StackModel, purely. The compose renderer and the Engine API applier both start from here.
 *
 * Conventions the applier follows to match what compose creates: each container also answers to its
 * service name on the stack network (compose does that by itself), bind sources are relative to the stack
 * directory unless absolute, and the one build uses this package's directory as its context.
 */
import { createHash } from 'node:crypto';
import { VERSION } from '../common/version.js';
import type { StackConfig } from '../config/schema.js';
import {
  ACME_CA_PATH,
  ACME_STORAGE_DIR,
  STATIC_CONFIG_PATH,
  TRAEFIK_PORTS,
  routeLabels,
  type RouteContext,
} from './traefik.js';
import {
  LABELS,
  type HealthcheckModel,
  type MountModel,
  type PortModel,
  type ServiceModel,
  type StackMode,
  type StackModel,
  type VolumeModel,
} from './model.js';
import { REGISTRY_PROCESS_ENV, registryNodeFlags } from '../registry/process-env.js';
import { LEAF_DIR, TLS_DYNAMIC_FILE, TRAEFIK_CERTS_PATH, TRAEFIK_TLS_PATH } from './dev-tls.js';

export const REGISTRY_PORT = 5000;
/** Traefik's service name, which resolves to its container (compose) or tasks (Swarm) on the stack network. */
export const TRAEFIK_SERVICE = 'traefik';
export const UI_PORT = 8080;
export const DATA_DIR = '/var/lib/registry';
export const AUTH_DIR = '/auth';
export const REGCTL_SCRIPT = '/opt/regctl/bin/regctl.js';
export const REGCTL_BIN = ['node', REGCTL_SCRIPT];
export const DOCKERFILE = 'templates/Dockerfile';
export const DOCKER_SOCKET = '/var/run/docker.sock';
export const MANAGED_BY = 'regctl';
export const VERSION_LABEL = 'dev.regctl.version';
/** The PostgreSQL password file, beside htpasswd in the stack's auth/ directory (0600). */
export const METADATA_PASSWORD_FILE = 'metadata-password';
/**
 * The S3 keys of a stack on S3, beside htpasswd (0600), in the AWS shared-credentials format: the registry's SDK
 * reads it through AWS_SHARED_CREDENTIALS_FILE, so the keys never appear in an environment or a compose file.
 */
export const S3_CREDENTIALS_FILE = 's3-credentials';
/** The registry's token signing key under auth/ (0600); during a rotation's grace the old one is `<file>.previous`. */
export const TOKEN_KEY_FILE = 'token-key.pem';
export const TRAEFIK_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/';
/** Traefik static config files, relative to the stack directory. */
export const TRAEFIK_CONFIG_FILES: Record<StackMode, string> = {
  dev: 'traefik/traefik.yml',
  prod: 'traefik/traefik.prod.yml',
};

export function hostnamesOf(config: StackConfig): { registry: string; ui?: string } {
  return {
    registry: `registry.${config.host}`,
    ...(config.ui.enabled ? { ui: `registry-ui.${config.host}` } : {}),
  };
}

/** Public origin (`scheme://host[:port]`) of a host name in a mode. */
export function originOf(config: StackConfig, mode: StackMode, hostname: string): string {
  if (mode === 'dev') return `http://${hostname}${config.ports.http === 80 ? '' : `:${config.ports.http}`}`;
  return `https://${hostname}${config.ports.https === 443 ? '' : `:${config.ports.https}`}`;
}

/** `node -e` health probe of a local HTTP endpoint, exec form (no shell in the image is needed). */
export function httpHealthcheck(port: number): HealthcheckModel {
  const script = `fetch('http://127.0.0.1:${port}/healthz').then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))`;
  return {
    test: ['CMD', 'node', '-e', script],
    intervalMs: 10_000,
    timeoutMs: 5_000,
    retries: 3,
    startPeriodMs: 20_000,
  };
}

/** `serve`'s S3 flags for a stack whose storage is a bucket (none for the volume). */
export function s3Arguments(storage: StackConfig['storage']): string[] {
  if (!storage.url) return [];
  return [
    '--storage',
    storage.url,
    ...(storage.endpoint ? ['--s3-endpoint', storage.endpoint] : []),
    ...(storage.region ? ['--s3-region', storage.region] : []),
    ...(storage.pathStyle ? ['--s3-path-style'] : []),
  ];
}

export interface BuildOptions {
  version?: string;
  /** Which Traefik provider reads the labels: the Docker one (containers) or the Swarm one (services). */
  provider?: 'docker' | 'swarm';
}

export function buildStackModel(config: StackConfig, mode: StackMode, opts: BuildOptions = {}): StackModel {
  const project = config.name;
  const version = opts.version ?? VERSION;
  const network = `${project}_proxy`;
  const hostnames = hostnamesOf(config);
  const urls = {
    registry: originOf(config, mode, hostnames.registry),
    ...(hostnames.ui ? { ui: originOf(config, mode, hostnames.ui) } : {}),
  };
  const common = { [LABELS.project]: project, [LABELS.managedBy]: MANAGED_BY };

  const dataVolume: VolumeModel = {
    key: 'registry-data',
    name: config.storage.volume ?? `${project}_registry-data`,
    labels: { ...common },
  };
  const volumes: VolumeModel[] = [dataVolume];
  if (mode === 'prod') volumes.push({ key: 'letsencrypt', name: `${project}_letsencrypt`, labels: { ...common } });

  const provider = opts.provider ?? 'docker';
  // The local CA's HTTPS: compose dev stacks (a swarm stack's Traefik has no stack directory to read the leaf from).
  const devTls = mode === 'dev' && provider === 'docker';
  const routeCtx: RouteContext = { mode, network, httpsPort: config.ports.https, provider, devTls };
  const authMount: MountModel = { type: 'bind', source: './auth', target: AUTH_DIR, readOnly: true };

  const services: ServiceModel[] = [traefikService(config, mode, project, devTls)];

  services.push({
    name: 'registry',
    containerName: `${project}-registry`,
    image: config.images.registry,
    build: 0,
    command: registryCommand(config),
    environment: {
      ...REGISTRY_PROCESS_ENV,
      ...(config.storage.url ? { AWS_SHARED_CREDENTIALS_FILE: `${AUTH_DIR}/${S3_CREDENTIALS_FILE}` } : {}),
    },
    ports:
      mode === 'dev' && config.ports.registry !== 0
        ? [{ hostIp: config.ports.registryBind, host: config.ports.registry, container: REGISTRY_PORT }]
        : [],
    mounts: [{ type: 'volume', source: dataVolume.key, target: DATA_DIR }, authMount],
    labels: routeLabels(routeCtx, {
      router: 'registry',
      hostname: hostnames.registry,
      port: REGISTRY_PORT,
      corsOrigins: hostnames.ui
        ? [originOf(config, mode, hostnames.ui), ...(devTls ? [originOf(config, 'prod', hostnames.ui)] : [])]
        : [],
    }),
    healthcheck: httpHealthcheck(REGISTRY_PORT),
    dependsOn: [],
    restart: 'unless-stopped',
  });

  if (hostnames.ui) {
    const publicRegistry = urls.registry.replace(/^https?:\/\//, '');
    services.push({
      name: 'ui',
      containerName: `${project}-ui`,
      image: config.images.registry,
      build: 0,
      command: [
        ...REGCTL_BIN,
        'ui',
        '--listen',
        `0.0.0.0:${UI_PORT}`,
        '--registry',
        `http://registry:${REGISTRY_PORT}`,
        '--public-registry',
        publicRegistry,
        // Traefik by name, as for the registry: its X-Forwarded-For names the client for the sign-in throttle.
        '--trusted-proxy',
        TRAEFIK_SERVICE,
        ...(mode === 'prod' ? ['--secure-cookies'] : []),
      ],
      environment: {},
      ports: [],
      mounts: [],
      labels: routeLabels(routeCtx, { router: 'registry-ui', hostname: hostnames.ui, port: UI_PORT, corsOrigins: [] }),
      healthcheck: httpHealthcheck(UI_PORT),
      dependsOn: ['registry'],
      restart: 'unless-stopped',
    });
  }

  for (const svc of services) {
    const own = { ...common, [LABELS.service]: svc.name, [VERSION_LABEL]: version };
    const hash = configHash({ ...svc, labels: { ...svc.labels, ...own } });
    svc.labels = { ...svc.labels, ...own, [LABELS.configHash]: hash };
  }

  return {
    project,
    mode,
    network: { name: network, labels: { ...common } },
    volumes,
    builds: [
      {
        tag: config.images.registry,
        dockerfile: DOCKERFILE,
        args: { BASE_IMAGE: config.images.base },
        labels: { [LABELS.managedBy]: MANAGED_BY, [VERSION_LABEL]: version },
      },
    ],
    services,
    urls,
    hostnames,
  };
}

/** The registry container's command: `regctl serve` with the stack's files and settings. */
function registryCommand(config: StackConfig): string[] {
  return [
    'node',
    ...registryNodeFlags(Boolean(config.storage.url)),
    REGCTL_SCRIPT,
    'serve',
    '--listen',
    `0.0.0.0:${REGISTRY_PORT}`,
    '--data',
    DATA_DIR,
    '--htpasswd',
    `${AUTH_DIR}/htpasswd`,
    '--access',
    `${AUTH_DIR}/access.yaml`,
    '--log-level',
    config.registry.logLevel,
    '--upload-purge-age',
    config.registry.uploadPurgeAge,
    '--min-free',
    config.registry.minFreeDisk,
    // Traefik by its service name, not the network's subnet: the subnet also holds the Docker gateway, the source
    // of requests on the published direct port, whose X-Forwarded-For must not be believed.
    '--trusted-proxy',
    TRAEFIK_SERVICE,
    ...(config.registry.auth === 'token' ? ['--auth', 'token', '--token-key', `${AUTH_DIR}/${TOKEN_KEY_FILE}`] : []),
    ...(config.metadata
      ? ['--metadata', config.metadata, '--metadata-password-file', `${AUTH_DIR}/${METADATA_PASSWORD_FILE}`]
      : []),
    ...(config.policies || config.events ? ['--config', `${AUTH_DIR}/registry.yaml`] : []),
    ...s3Arguments(config.storage),
  ];
}

/** Traefik: the one public entry, configured by its static file and the other services' labels. */
function traefikService(config: StackConfig, mode: StackMode, project: string, devTls: boolean): ServiceModel {
  const traefikPorts: PortModel[] = [{ host: config.ports.http, container: TRAEFIK_PORTS.http }];
  if (mode === 'prod' || devTls) traefikPorts.push({ host: config.ports.https, container: TRAEFIK_PORTS.https });
  if (config.traefik.dashboard)
    traefikPorts.push({ hostIp: '127.0.0.1', host: config.ports.dashboard, container: TRAEFIK_PORTS.dashboard });
  const traefikMounts: MountModel[] = [
    { type: 'bind', source: `./${TRAEFIK_CONFIG_FILES[mode]}`, target: STATIC_CONFIG_PATH, readOnly: true },
    { type: 'bind', source: DOCKER_SOCKET, target: DOCKER_SOCKET, readOnly: true },
  ];
  if (devTls) {
    traefikMounts.push(
      { type: 'bind', source: `./${TLS_DYNAMIC_FILE}`, target: TRAEFIK_TLS_PATH, readOnly: true },
      { type: 'bind', source: `./${LEAF_DIR}`, target: TRAEFIK_CERTS_PATH, readOnly: true },
    );
  }
  // The health check runs `traefik` by name: the official image has it in /usr/local/bin, scratch-style
  // images (a bare binary imported as /traefik) at the root, so the root is appended to the usual PATH.
  const traefikEnv: Record<string, string> = { PATH: TRAEFIK_PATH };
  if (mode === 'prod') {
    traefikMounts.push({ type: 'volume', source: 'letsencrypt', target: ACME_STORAGE_DIR });
    if (config.acme.caCertificates) {
      traefikMounts.push({
        type: 'bind',
        source: bindSource(config.acme.caCertificates),
        target: ACME_CA_PATH,
        readOnly: true,
      });
      traefikEnv.LEGO_CA_CERTIFICATES = ACME_CA_PATH;
    }
  }

  return {
    name: TRAEFIK_SERVICE,
    containerName: `${project}-traefik`,
    image: config.images.traefik,
    // Flags only: the image's entrypoint runs traefik (the official image's script prepends `traefik` to flags).
    command: [`--configfile=${STATIC_CONFIG_PATH}`],
    environment: traefikEnv,
    ports: traefikPorts,
    mounts: traefikMounts,
    labels: {},
    healthcheck: {
      test: ['CMD', 'traefik', 'healthcheck', '--ping', `--configfile=${STATIC_CONFIG_PATH}`],
      intervalMs: 10_000,
      timeoutMs: 5_000,
      retries: 3,
      startPeriodMs: 10_000,
    },
    dependsOn: [],
    restart: 'unless-stopped',
  };
}

/** Bind sources are written as compose writes them: absolute, or `./`-relative to the stack directory. */
function bindSource(path: string): string {
  if (path.startsWith('/') || path.startsWith('./') || path.startsWith('../')) return path;
  return `./${path}`;
}

/** A stable digest of a service's definition: the applier recreates a container when it changes. */
export function configHash(svc: ServiceModel): string {
  const stable = JSON.stringify(svc, (_key, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(
          Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : value,
  );
  return createHash('sha256').update(stable).digest('hex').slice(0, 16);
}
