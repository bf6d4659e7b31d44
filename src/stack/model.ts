/**
 * The StackModel: everything a running stack is made of, computed purely from the validated config.
 * Both renderers read it: `compose.ts` writes compose files from it, and `src/docker` creates the same
 * networks, volumes, images and containers through the Engine API. A test holds the two equal.
 *
 * Paths in `mounts` of type `bind` are relative to the stack directory (as compose files write them);
 * the Engine API applier resolves them against the directory. Secrets never appear here: the htpasswd
 * and access files are bind-mounted from the stack's `auth/` directory (a directory, so that an atomic
 * replace of a file inside it is seen by the container).
 */
export type StackMode = 'dev' | 'prod';

export interface StackModel {
  /** Compose project name; prefixes container, network and volume names. */
  project: string;
  mode: StackMode;
  /** The one network Traefik and the services share; Traefik's Docker provider watches only it. */
  network: NetworkModel;
  volumes: VolumeModel[];
  /** Images built from this package (the registry and the UI share one image, run with different commands). */
  builds: ImageBuildModel[];
  services: ServiceModel[];
  /** Public URLs, for summaries and probes. */
  urls: { registry: string; ui?: string };
  /** Host names Traefik routes, for /etc/hosts advice and probes. */
  hostnames: { registry: string; ui?: string };
}

export interface NetworkModel {
  name: string;
  labels: Record<string, string>;
}

export interface VolumeModel {
  /** Full engine name (project-prefixed), also the compose `name:` of the volume. */
  name: string;
  /** Key used in compose files' top-level `volumes:`. */
  key: string;
  labels: Record<string, string>;
}

export interface ImageBuildModel {
  /** Tag given to the built image, e.g. `regctl:0.1.0`. */
  tag: string;
  /** Dockerfile path inside the package's templates directory. */
  dockerfile: string;
  /** Build arguments; BASE_IMAGE names the Node image to build on. */
  args: Record<string, string>;
  labels: Record<string, string>;
}

export interface MountModel {
  type: 'volume' | 'bind';
  /** Volume key (type volume) or a path relative to the stack directory (type bind). */
  source: string;
  target: string;
  readOnly?: boolean;
}

export interface PortModel {
  /** Host address to bind; omitted means all addresses. */
  hostIp?: string;
  host: number;
  container: number;
  protocol?: 'tcp';
}

export interface HealthcheckModel {
  /** Exec form, as Docker's `Healthcheck.Test` (first element `CMD`). */
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
}

export interface ServiceModel {
  /** Compose service name: `traefik`, `registry`, `ui`. */
  name: string;
  /** Engine container name: `<project>-<name>`. */
  containerName: string;
  image: string;
  /** Index into `StackModel.builds` when the image is built from this package. */
  build?: number;
  command?: string[];
  /** Non-secret environment only. */
  environment: Record<string, string>;
  ports: PortModel[];
  mounts: MountModel[];
  /** Traefik labels and regctl's own bookkeeping labels. */
  labels: Record<string, string>;
  healthcheck?: HealthcheckModel;
  dependsOn: string[];
  restart: 'unless-stopped' | 'no';
  /** Extra network aliases on the stack network. */
  aliases?: string[];
}

/** Label keys regctl puts on everything it creates, so `status`/`down` find them. */
export const LABELS = {
  project: 'com.docker.compose.project',
  service: 'com.docker.compose.service',
  managedBy: 'dev.regctl.managed-by',
  configHash: 'dev.regctl.config-hash',
} as const;
