/**
 * The Swarm rendering of the StackModel: the same services, commands, environment, health checks and Traefik
 * labels (all taken from `buildStackModel`, their one owner), turned into Swarm services. Both
 * `compose.swarm.yaml` (for `docker stack deploy`) and `regctl up` on a swarm stack (the Engine API) read it.
 *
 * What changes from the compose stack, and why:
 * - files become Swarm objects, never bind mounts (a task may run on any node): `auth/htpasswd` and
 *   `auth/metadata-password` are secrets, `auth/access.yaml` and the Traefik static config are configs, mounted
 *   at the paths the commands already name. Swarm objects are immutable, so each name carries a digest of its
 *   content (`<project>_htpasswd_v<digest>`): a change is a new object and a rolling update, never an edit;
 * - no IPVS on this kind of host: the ingress routing mesh and VIPs do not answer. So every service uses
 *   `endpoint_mode: dnsrr` (its name resolves to its tasks' addresses, which Traefik's Swarm provider routes
 *   to directly) and Traefik publishes its ports in `host` mode on the node it runs on;
 * - Traefik runs on a manager (its Swarm provider reads the manager's API through the socket); with the
 *   filesystem driver (or S3 with the embedded metadata store) the registry stays on a manager too, where its
 *   volume is (one node: a trial); on S3 with PostgreSQL its tasks may run on any node;
 * - the S3 keys (auth/s3-credentials) are a secret too, read by the SDK through AWS_SHARED_CREDENTIALS_FILE;
 * - updates start the new task before stopping the old one (`order: start-first`) and roll back on failure;
 *   Traefik alone is replaced stop-first, as its host-mode ports cannot be bound twice on one node.
 */
import { createHash } from 'node:crypto';
import type { StackConfig } from '../config/schema.js';
import {
  AUTH_DIR,
  buildStackModel,
  METADATA_PASSWORD_FILE,
  S3_CREDENTIALS_FILE,
  TOKEN_KEY_FILE,
} from './build-model.js';
import { REGISTRY_CONFIG_FILE, registryConfigText } from './registry-config.js';
import type {
  HealthcheckModel,
  ImageBuildModel,
  MountModel,
  NetworkModel,
  StackMode,
  StackModel,
  VolumeModel,
} from './model.js';
import { LABELS } from './model.js';
import { STATIC_CONFIG_PATH } from './traefik.js';
import { trialServiceDrafts, type TrialServiceDraft } from './swarm-trial.js';

export const SWARM_COMPOSE_FILE = 'compose.swarm.yaml';
export const SWARM_TRAEFIK_FILE = 'traefik/traefik.swarm.yml';
/** The label `docker stack deploy` puts on everything of a stack; `regctl up` sets it too. */
export const STACK_NAMESPACE = 'com.docker.stack.namespace';
/** The service label `docker stack deploy` records the image reference in. */
export const STACK_IMAGE = 'com.docker.stack.image';
export const MANAGER_ONLY = 'node.role == manager';

/** A secret or config: its key in the compose file, its versioned engine name, and the stack file it holds. */
export interface SwarmObjectModel {
  key: string;
  name: string;
  /** Path relative to the stack directory. */
  file: string;
  labels: Record<string, string>;
}

export interface SwarmFileRef {
  /** Key of a SwarmObjectModel. */
  source: string;
  /** Absolute path in the container. */
  target: string;
}

export interface SwarmUpdateModel {
  parallelism: number;
  delayMs: number;
  order: 'start-first' | 'stop-first';
  failureAction: 'rollback' | 'pause' | 'continue';
  monitorMs: number;
}

export interface SwarmServiceModel {
  /** Key in the compose file and network alias: `traefik`, `registry`, `ui`. */
  key: string;
  /** Engine service name: `<project>_<key>`, as `docker stack deploy` names it. */
  name: string;
  image: string;
  /** Replaces the image's entry point (the trial S3 service's; swarm-trial.ts). */
  entrypoint?: string[];
  command?: string[];
  environment: Record<string, string>;
  /** Service labels (compose `deploy.labels`): Traefik's and regctl's. */
  labels: Record<string, string>;
  /** Volume and socket mounts only: files come as secrets and configs. */
  mounts: MountModel[];
  secrets: SwarmFileRef[];
  configs: SwarmFileRef[];
  /** Published in host mode on the node the task runs on. */
  ports: { published: number; target: number }[];
  healthcheck?: HealthcheckModel;
  replicas: number;
  endpointMode: 'dnsrr';
  constraints: string[];
  update: SwarmUpdateModel;
  /** A trial service (PostgreSQL, S3): `regctl up` has it healthy before it starts the others. */
  trial?: boolean;
}

export interface SwarmModel {
  project: string;
  mode: StackMode;
  network: NetworkModel;
  volumes: VolumeModel[];
  builds: ImageBuildModel[];
  secrets: SwarmObjectModel[];
  configs: SwarmObjectModel[];
  services: SwarmServiceModel[];
  urls: StackModel['urls'];
  hostnames: StackModel['hostnames'];
}

/** The contents of the stack files that become Swarm objects, for their versioned names. */
export interface SwarmContents {
  htpasswd: string;
  access: string;
  traefik: string;
  /** Present when the config names a PostgreSQL metadata store. */
  metadataPassword?: string;
  /** Present when the storage is S3: auth/s3-credentials. */
  s3Credentials?: string;
  /** With `registry.auth: token`: the signing key, and during a key rotation's grace the previous one. */
  tokenKey?: string;
  tokenKeyPrevious?: string;
  /** auth/htpasswd.grace, when `rotate-credentials --grace` left old secrets that still work for a while. */
  grace?: string;
}

/** The grace file beside htpasswd (the registry reads `<htpasswd>.grace`). */
export const GRACE_FILE = 'auth/htpasswd.grace';

export const UPDATE_POLICY: SwarmUpdateModel = {
  parallelism: 1,
  delayMs: 2_000,
  order: 'start-first',
  failureAction: 'rollback',
  monitorMs: 15_000,
};

/** `<project>_<key>_v<12 hex of the content's SHA-256>`: a new name for new content. */
export function versionedName(project: string, key: string, content: string): string {
  return `${project}_${key}_v${createHash('sha256').update(content).digest('hex').slice(0, 12)}`;
}

function withoutCompose(labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).filter(([k]) => !k.startsWith('com.docker.compose.')));
}

export function buildSwarmModel(
  config: StackConfig,
  mode: StackMode,
  contents: SwarmContents,
  opts: { version?: string } = {},
): SwarmModel {
  const base = buildStackModel(config, mode, { ...opts, provider: 'swarm' });
  const project = base.project;
  const ns = { [STACK_NAMESPACE]: project };
  const object = (key: string, file: string, content: string): SwarmObjectModel => ({
    key,
    name: versionedName(project, key, content),
    file,
    labels: { ...ns, [LABELS.managedBy]: 'regctl' },
  });
  const secrets = [object('htpasswd', 'auth/htpasswd', contents.htpasswd)];
  if (config.metadata) {
    if (contents.metadataPassword === undefined)
      throw new Error(`metadata names PostgreSQL but auth/${METADATA_PASSWORD_FILE} was not given`);
    secrets.push(object('metadata-password', `auth/${METADATA_PASSWORD_FILE}`, contents.metadataPassword));
  }
  if (config.storage.url) {
    if (contents.s3Credentials === undefined)
      throw new Error(`storage is S3 but auth/${S3_CREDENTIALS_FILE} was not given`);
    secrets.push(object('s3-credentials', `auth/${S3_CREDENTIALS_FILE}`, contents.s3Credentials));
  }
  const token = config.registry.auth === 'token';
  if (token) {
    if (contents.tokenKey === undefined) throw new Error(`token auth but auth/${TOKEN_KEY_FILE} was not given`);
    secrets.push(object('token-key', `auth/${TOKEN_KEY_FILE}`, contents.tokenKey));
    if (contents.tokenKeyPrevious !== undefined)
      secrets.push(object('token-key-previous', `auth/${TOKEN_KEY_FILE}.previous`, contents.tokenKeyPrevious));
  }
  if (contents.grace !== undefined) secrets.push(object('htpasswd-grace', GRACE_FILE, contents.grace));
  const configs = [
    object('access', 'auth/access.yaml', contents.access),
    object('traefik', SWARM_TRAEFIK_FILE, contents.traefik),
  ];
  const registryConfig = registryConfigText(config);
  if (registryConfig) configs.push(object('registry-config', REGISTRY_CONFIG_FILE, registryConfig));

  const services = base.services.map((svc): SwarmServiceModel => {
    const mounts: MountModel[] = [];
    const secretRefs: SwarmFileRef[] = [];
    const configRefs: SwarmFileRef[] = [];
    for (const m of svc.mounts) {
      if (m.type === 'bind' && m.source === './auth') {
        secretRefs.push({ source: 'htpasswd', target: `${AUTH_DIR}/htpasswd` });
        if (contents.grace !== undefined)
          secretRefs.push({ source: 'htpasswd-grace', target: `${AUTH_DIR}/htpasswd.grace` });
        if (config.metadata)
          secretRefs.push({ source: 'metadata-password', target: `${AUTH_DIR}/${METADATA_PASSWORD_FILE}` });
        if (config.storage.url)
          secretRefs.push({ source: 's3-credentials', target: `${AUTH_DIR}/${S3_CREDENTIALS_FILE}` });
        if (token && svc.name === 'registry') {
          secretRefs.push({ source: 'token-key', target: `${AUTH_DIR}/${TOKEN_KEY_FILE}` });
          if (contents.tokenKeyPrevious !== undefined)
            secretRefs.push({ source: 'token-key-previous', target: `${AUTH_DIR}/${TOKEN_KEY_FILE}.previous` });
        }
        configRefs.push({ source: 'access', target: `${AUTH_DIR}/access.yaml` });
        if (registryConfig) configRefs.push({ source: 'registry-config', target: `${AUTH_DIR}/registry.yaml` });
      } else if (m.type === 'bind' && m.target === STATIC_CONFIG_PATH) {
        configRefs.push({ source: 'traefik', target: STATIC_CONFIG_PATH });
      } else {
        mounts.push(m);
      }
    }
    // The registry's volume holds what a task on another node would not see (the repository on the filesystem,
    // or the embedded metadata store beside S3): then it stays on a manager. S3 with PostgreSQL runs anywhere.
    const sharedState = config.storage.url !== undefined && config.metadata !== undefined;
    const onManager =
      svc.name === 'traefik' || (svc.name === 'registry' && !sharedState && mounts.some((m) => m.type === 'volume'));
    return {
      key: svc.name,
      name: `${project}_${svc.name}`,
      image: svc.image,
      ...(svc.command ? { command: svc.command } : {}),
      environment: svc.environment,
      labels: { ...withoutCompose(svc.labels), ...ns },
      mounts,
      secrets: secretRefs,
      configs: configRefs,
      // Host-mode ports bind every address of the node: the loopback-only dashboard port and the registry's
      // direct dev port (one per task, which replicas would fight over) are left out.
      ports: svc.ports
        .filter((p) => !p.hostIp && svc.name === 'traefik')
        .map((p) => ({ published: p.host, target: p.container })),
      ...(svc.healthcheck ? { healthcheck: svc.healthcheck } : {}),
      replicas: svc.name === 'registry' ? config.deploy.replicas : 1,
      endpointMode: 'dnsrr',
      constraints: onManager ? [MANAGER_ONLY] : [],
      // Traefik's new task could not bind the host ports its old task holds: it is replaced stop-first (a
      // moment without a proxy, only when Traefik's own definition changes).
      update: svc.name === 'traefik' ? { ...UPDATE_POLICY, order: 'stop-first' } : UPDATE_POLICY,
    };
  });

  const trial = trialServiceDrafts(config, project);
  const volumeLabels = { [LABELS.managedBy]: 'regctl', ...ns };
  return {
    project,
    mode,
    network: { name: base.network.name, labels: { ...withoutCompose(base.network.labels), ...ns } },
    volumes: [
      ...base.volumes.map((v) => ({ ...v, labels: { ...withoutCompose(v.labels), ...ns } })),
      ...trial.map((d) => ({ ...d.volume, labels: volumeLabels })),
    ],
    builds: base.builds,
    secrets,
    configs,
    services: [...trial.map((d) => trialService(d, project)), ...services],
    urls: base.urls,
    hostnames: base.hostnames,
  };
}

/**
 * A trial service (swarm-trial.ts): one task on a manager, where its volume is; replaced stop-first, since two
 * servers must never share one data directory; no published port and no Traefik labels.
 */
function trialService(d: TrialServiceDraft, project: string): SwarmServiceModel {
  return {
    key: d.key,
    name: `${project}_${d.key}`,
    image: d.image,
    ...(d.entrypoint ? { entrypoint: d.entrypoint } : {}),
    environment: d.environment,
    labels: { [LABELS.managedBy]: 'regctl', [STACK_NAMESPACE]: project },
    mounts: d.mounts,
    secrets: d.secrets,
    configs: [],
    ports: [],
    healthcheck: d.healthcheck,
    replicas: 1,
    endpointMode: 'dnsrr',
    constraints: [MANAGER_ONLY],
    update: { ...UPDATE_POLICY, order: 'stop-first' },
    trial: true,
  };
}
