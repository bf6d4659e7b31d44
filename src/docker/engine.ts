/**
 * The narrow slice of the Docker Engine API that regctl uses. `src/ops` talks only to this interface:
 * `createDockerEngine()` (dockerode) in real use, `FakeEngine` in unit tests.
 *
 * Names are engine names (container, network, volume names; image references). Methods that look
 * something up return `undefined` for "not there" instead of throwing; methods that remove return
 * whether anything was removed. Everything else throws `EngineError` (or `RegctlError` DOCKER_UNREACHABLE
 * when no engine answers).
 */
import type { Readable } from 'node:stream';

export interface PortBinding {
  hostIp?: string;
  hostPort: number;
  containerPort: number;
}

export interface ContainerMount {
  type: 'volume' | 'bind';
  /** Volume name, or an absolute host path for binds. */
  source: string;
  target: string;
  readOnly: boolean;
}

export interface ContainerHealthcheck {
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
}

/** Everything needed to create one container attached to one network. */
export interface ContainerSpec {
  name: string;
  image: string;
  command?: string[];
  env: Record<string, string>;
  labels: Record<string, string>;
  ports: PortBinding[];
  mounts: ContainerMount[];
  healthcheck?: ContainerHealthcheck;
  restart: 'unless-stopped' | 'no';
  network: string;
  aliases: string[];
}

export type ContainerState = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';
export type HealthState = 'starting' | 'healthy' | 'unhealthy';

export interface ContainerInfo {
  id: string;
  name: string;
  image: string;
  /** Image ID (sha256:…) the container was created from. */
  imageId: string;
  labels: Record<string, string>;
  state: ContainerState;
  /** Absent when the container has no health check. */
  health?: HealthState;
  exitCode?: number;
  startedAt?: string;
  ports: PortBinding[];
}

export interface ImageInfo {
  id: string;
  labels: Record<string, string>;
}

export interface BuildRequest {
  /** A tar stream of the build context. */
  context: Readable;
  /** Path of the Dockerfile inside the context. */
  dockerfile: string;
  tag: string;
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
}

export interface LogOptions {
  tail?: number;
  follow?: boolean;
  timestamps?: boolean;
  signal?: AbortSignal;
}

export interface DockerEngine {
  /** Throws RegctlError DOCKER_UNREACHABLE when no engine answers. */
  ping(): Promise<void>;

  /** Creates the network if missing; true when this call created it. */
  ensureNetwork(name: string, labels: Record<string, string>): Promise<boolean>;
  removeNetwork(name: string): Promise<boolean>;
  networkExists(name: string): Promise<boolean>;

  /** Creates the volume if missing; true when this call created it. */
  ensureVolume(name: string, labels: Record<string, string>): Promise<boolean>;
  removeVolume(name: string): Promise<boolean>;
  listVolumes(labels: Record<string, string>): Promise<string[]>;
  /** Bytes used by the volume, when the engine reports it. */
  volumeSize(name: string): Promise<number | undefined>;

  inspectImage(ref: string): Promise<ImageInfo | undefined>;
  /** Builds and tags an image; each line of builder output goes to `onProgress`. */
  buildImage(request: BuildRequest, onProgress: (line: string) => void): Promise<ImageInfo>;
  pullImage(ref: string, onProgress: (line: string) => void): Promise<void>;
  /** Removes an image by ID unless a container (running or not) still uses it; false when kept or absent. */
  removeImageIfUnused(id: string): Promise<boolean>;

  createContainer(spec: ContainerSpec): Promise<string>;
  startContainer(name: string): Promise<void>;
  stopContainer(name: string, timeoutSeconds?: number): Promise<void>;
  /** Removes (forcibly, with anonymous volumes) the container; false when it did not exist. */
  removeContainer(name: string): Promise<boolean>;
  inspectContainer(name: string): Promise<ContainerInfo | undefined>;
  /** All containers (running or not) carrying every given label. */
  listContainers(labels: Record<string, string>): Promise<ContainerInfo[]>;
  /** The container's log, stdout and stderr merged, as text lines. */
  logs(name: string, options?: LogOptions): Promise<Readable>;

  /** What the engine says of itself: which registries it reaches over plain HTTP, its clock. */
  engineInfo(): Promise<EngineInfo>;
  /** Host path of a local volume's data, when the engine reports one. */
  volumeMountpoint(name: string): Promise<string | undefined>;

  /** The Swarm API of this engine (services, tasks, secrets, configs), for swarm stacks. */
  swarm(): Promise<SwarmEngine>;
}

export interface EngineInfo {
  /** CIDRs whose registries the engine reaches over HTTP (loopback by default). */
  insecureCidrs: string[];
  /** Registries (`host[:port]`) listed in the engine's `insecure-registries`. */
  insecureRegistries: string[];
  /** The engine's clock, when it reports one (ISO time). */
  systemTime?: string;
  serverVersion?: string;
}

// The Swarm API (`DockerEngine.swarm()`): services, their tasks and logs, secrets, configs and overlay networks.
// `DockerodeSwarm` implements it on dockerode, `FakeSwarm` in memory. Secrets and configs are named by their
// engine names; a service spec names them too, and the implementation resolves the names to IDs.

export interface SwarmState {
  nodeId: string;
  /** This engine can manage the swarm (create services, secrets). */
  manager: boolean;
  /** Nodes in the swarm. */
  nodes: number;
}

export interface SwarmObjectInfo {
  id: string;
  name: string;
  labels: Record<string, string>;
}

export interface SwarmUpdatePolicy {
  parallelism: number;
  delayMs: number;
  order: 'start-first' | 'stop-first';
  failureAction: 'rollback' | 'pause' | 'continue';
  monitorMs: number;
}

/** Everything needed to create (or update to) one replicated service on one network. */
export interface SwarmServiceSpec {
  name: string;
  image: string;
  /** The container's entry point (Swarm's ContainerSpec.Command); the image's when absent. */
  entrypoint?: string[];
  command?: string[];
  env: Record<string, string>;
  /** Service labels (what Traefik's Swarm provider reads). */
  labels: Record<string, string>;
  /** Labels of the service's containers. */
  containerLabels: Record<string, string>;
  mounts: ContainerMount[];
  secrets: { name: string; target: string }[];
  configs: { name: string; target: string }[];
  /** Published in host mode. */
  ports: { published: number; target: number }[];
  healthcheck?: ContainerHealthcheck;
  replicas: number;
  endpointMode: 'dnsrr' | 'vip';
  constraints: string[];
  update: SwarmUpdatePolicy;
  network: string;
  aliases: string[];
}

export type UpdateState =
  'updating' | 'paused' | 'completed' | 'rollback_started' | 'rollback_paused' | 'rollback_completed';

export interface SwarmServiceInfo {
  id: string;
  name: string;
  /** The object version an update must name. */
  version: number;
  labels: Record<string, string>;
  image: string;
  replicas: number;
  /** State of the last update, absent when the service was never updated. */
  updateState?: UpdateState;
  updateMessage?: string;
}

export interface SwarmTaskInfo {
  id: string;
  serviceName: string;
  slot?: number;
  nodeId: string;
  /** new, pending, assigned, accepted, preparing, starting, running, complete, failed, shutdown, rejected… */
  state: string;
  desiredState: string;
  containerId?: string;
  /** Labels of the task's container (from the service spec the task was made from). */
  containerLabels: Record<string, string>;
  /** The task's error or status message, when it has one. */
  message?: string;
  /** When the task entered its current state (ISO time). */
  timestamp?: string;
}

export interface SwarmEngine {
  /** The swarm this engine is part of, or undefined when it is in none. */
  state(): Promise<SwarmState | undefined>;

  /** Creates an attachable overlay network if missing; true when this call created it. */
  ensureOverlayNetwork(name: string, labels: Record<string, string>): Promise<boolean>;

  listSecrets(labels: Record<string, string>): Promise<SwarmObjectInfo[]>;
  createSecret(name: string, data: Buffer, labels: Record<string, string>): Promise<void>;
  removeSecret(name: string): Promise<boolean>;
  listConfigs(labels: Record<string, string>): Promise<SwarmObjectInfo[]>;
  createConfig(name: string, data: Buffer, labels: Record<string, string>): Promise<void>;
  removeConfig(name: string): Promise<boolean>;

  listServices(labels: Record<string, string>): Promise<SwarmServiceInfo[]>;
  inspectService(name: string): Promise<SwarmServiceInfo | undefined>;
  createService(spec: SwarmServiceSpec): Promise<void>;
  /** Replaces the service's spec (the engine rolls it out with the spec's update policy). */
  updateService(name: string, version: number, spec: SwarmServiceSpec): Promise<void>;
  /** Changes only the replica count of a running service. */
  scaleService(name: string, replicas: number): Promise<void>;
  removeService(name: string): Promise<boolean>;
  listTasks(serviceName: string): Promise<SwarmTaskInfo[]>;
  /** Every task's log, each line prefixed with `<service>.<slot> | `. */
  serviceLogs(name: string, options?: LogOptions): Promise<Readable>;
}

/** An Engine API call failed for a reason other than "not found" or "engine unreachable". */
export class EngineError extends Error {
  readonly statusCode: number | undefined;
  constructor(message: string, statusCode?: number, cause?: unknown) {
    super(message, { cause });
    this.name = 'EngineError';
    this.statusCode = statusCode;
  }
}
