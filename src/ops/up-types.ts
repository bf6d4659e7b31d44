/** What `regctl up` takes and answers, for a compose stack (up.ts) and a swarm stack (up-swarm.ts) alike. */
import type { Output } from '../common/io.js';
import type { DockerEngine } from '../docker/engine.js';
import type { ServedCertificate } from './http-probe.js';
import type { ContainerAction } from './up-containers.js';

export interface UpOptions {
  dir: string;
  prod?: boolean;
  out: Output;
  engine: DockerEngine;
  keepOnFailure?: boolean;
  /** How long to wait for Docker health checks (default 180 s). */
  healthTimeoutMs?: number;
  /** How long to wait for Traefik to route (default 60 s) and, in prod, for the ACME certificate. */
  probeTimeoutMs?: number;
  /** Skip the HTTP probes (unit tests without a network). */
  skipProbes?: boolean;
  /** Package directory used as the build context (default: this package). */
  packageDir?: string;
}

export interface UpResult {
  project: string;
  mode: 'dev' | 'prod';
  networkCreated: boolean;
  volumesCreated: string[];
  imagesBuilt: string[];
  imagesPulled: string[];
  /** Previous images of rebuilt tags, removed once nothing used them. */
  imagesRemoved: string[];
  containers: { service: string; container: string; action: ContainerAction }[];
  urls: { registry: string; ui?: string };
  certificate?: ServedCertificate;
  /** True when this run changed nothing at all. */
  unchanged: boolean;
}

/** A result of `up` before it does anything: nothing created or changed yet. */
export function emptyUpResult(model: { project: string; mode: UpResult['mode']; urls: UpResult['urls'] }): UpResult {
  return {
    project: model.project,
    mode: model.mode,
    networkCreated: false,
    volumesCreated: [],
    imagesBuilt: [],
    imagesPulled: [],
    imagesRemoved: [],
    containers: [],
    urls: model.urls,
    unchanged: true,
  };
}
