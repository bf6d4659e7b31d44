/**
 * `regctl status`: each service's container state and health, the public URLs, the data volume's size and,
 * in prod, the certificate Traefik serves for the registry host.
 */
import type { DockerEngine, HealthState } from '../docker/engine.js';
import { DATA_DIR } from '../stack/build-model.js';
import { servedCertificate, isTraefikDefaultCertificate, type ServedCertificate } from './http-probe.js';
import { MODE_LABEL, loadStack, projectLabels } from './stack.js';
import { swarmStatus } from './swarm-ops.js';
import { isSwarmStack } from './swarm-stack.js';

export interface ServiceStatus {
  service: string;
  container: string;
  /** `missing` when there is no container for the service. */
  state: string;
  health?: HealthState;
  image?: string;
  startedAt?: string;
  /** Swarm stacks: running and desired tasks of the service. */
  replicas?: { running: number; desired: number };
}

export interface StackStatus {
  project: string;
  mode: 'dev' | 'prod';
  /** Every service running, and healthy where it has a health check. */
  healthy: boolean;
  services: ServiceStatus[];
  urls: { registry: string; ui?: string };
  volumes: { name: string; sizeBytes?: number }[];
  certificate?: ServedCertificate & { acme: boolean };
  certificateError?: string;
}

export async function status(opts: { dir: string; engine: DockerEngine }): Promise<StackStatus> {
  const { engine } = opts;
  await engine.ping();
  const configured = await loadStack(opts.dir);
  if (isSwarmStack(configured)) {
    const { healthy, services } = await swarmStatus(configured, engine);
    const { model } = configured;
    const volumes: StackStatus['volumes'] = [];
    for (const v of model.volumes) {
      const size = await engine.volumeSize(v.name);
      volumes.push({ name: v.name, ...(size !== undefined ? { sizeBytes: size } : {}) });
    }
    return { project: model.project, mode: model.mode, healthy, services, urls: model.urls, volumes };
  }
  const containers = await engine.listContainers(projectLabels(configured.model));
  // Report the mode the running containers were created for, whatever regctl.yaml says now.
  const runningMode = containers.map((c) => c.labels[MODE_LABEL]).find((m) => m === 'dev' || m === 'prod');
  const stack =
    runningMode && runningMode !== configured.model.mode
      ? await loadStack(opts.dir, { mode: runningMode })
      : configured;
  const { model, config } = stack;

  const services: ServiceStatus[] = model.services.map((svc) => {
    const c = containers.find((x) => x.name === svc.containerName);
    if (!c) return { service: svc.name, container: svc.containerName, state: 'missing' };
    return {
      service: svc.name,
      container: c.name,
      state: c.state,
      ...(c.health ? { health: c.health } : {}),
      image: c.image,
      ...(c.startedAt ? { startedAt: c.startedAt } : {}),
    };
  });
  const healthy = services.every((s) => s.state === 'running' && (s.health === undefined || s.health === 'healthy'));

  const dataVolumeKey = model.services
    .find((s) => s.name === 'registry')
    ?.mounts.find((m) => m.target === DATA_DIR)?.source;
  const volumes: StackStatus['volumes'] = [];
  for (const v of model.volumes) {
    const size = await engine.volumeSize(v.name);
    const entry = { name: v.name, ...(size !== undefined ? { sizeBytes: size } : {}) };
    if (v.key === dataVolumeKey) volumes.unshift(entry);
    else volumes.push(entry);
  }

  const result: StackStatus = {
    project: model.project,
    mode: model.mode,
    healthy,
    services,
    urls: model.urls,
    volumes,
  };
  if (model.mode === 'prod' && services.some((s) => s.service === 'traefik' && s.state === 'running')) {
    try {
      const cert = await servedCertificate({ port: config.ports.https, servername: model.hostnames.registry });
      result.certificate = { ...cert, acme: !isTraefikDefaultCertificate(cert) };
    } catch (err) {
      result.certificateError = err instanceof Error ? err.message : String(err);
    }
  }
  return result;
}
