/**
 * The containers step of `regctl up`: plan each service's container against the engine (a container whose applied
 * hash label and image match is left alone, one that differs is recreated, a stopped one is started, one the model
 * no longer has is removed), then apply the plan in dependency order.
 */
import type { Output } from '../common/io.js';
import type { ContainerInfo, ContainerSpec, DockerEngine, ImageInfo } from '../docker/engine.js';
import { LABELS, type ServiceModel } from '../stack/model.js';
import { portHolder, portInUse } from './ports.js';
import { errorText } from './up-images.js';
import {
  APPLIED_HASH_LABEL,
  appliedHash,
  containerSpec,
  projectLabels,
  startOrder,
  type LoadedStack,
} from './stack.js';

export type ContainerAction = 'created' | 'recreated' | 'started' | 'unchanged' | 'removed';

/** Where the step records what it did (the `up` result). */
export interface ContainerRecord {
  containers: { service: string; container: string; action: ContainerAction }[];
}

/** Containers this run created, removed again if a later step fails. */
export interface ContainerUndo {
  containers: string[];
}

/** Runs one named sub-step, so that a failure names it (and the container it concerns). */
export type Runner = <T>(name: string, fn: () => Promise<T>, container?: string) => Promise<T>;

interface PlannedContainer {
  service: ServiceModel;
  spec: ContainerSpec;
  existing?: ContainerInfo;
  action: ContainerAction;
}

export interface Plan {
  containers: PlannedContainer[];
  /** Containers of this project the model no longer has. */
  orphans: ContainerInfo[];
}

export async function planContainers(
  stack: LoadedStack,
  engine: DockerEngine,
  images: Map<string, ImageInfo>,
): Promise<Plan> {
  const existing = await engine.listContainers(projectLabels(stack.model));
  const byName = new Map(existing.map((c) => [c.name, c]));
  const containers: PlannedContainer[] = [];
  for (const service of startOrder(stack.model.services)) {
    const image = images.get(service.image);
    if (!image) throw new Error(`image ${service.image} was not prepared`);
    const base = containerSpec(stack, service);
    const hash = await appliedHash(base, image.id);
    const spec: ContainerSpec = { ...base, labels: { ...base.labels, [APPLIED_HASH_LABEL]: hash } };
    const current = byName.get(service.containerName) ?? (await engine.inspectContainer(service.containerName));
    let action: ContainerAction;
    if (!current) action = 'created';
    else if (current.labels[APPLIED_HASH_LABEL] !== hash || current.imageId !== image.id) action = 'recreated';
    else if (current.state !== 'running') action = 'started';
    else action = 'unchanged';
    containers.push({ service, spec, action, ...(current ? { existing: current } : {}) });
  }
  const wanted = new Set(stack.model.services.map((s) => s.containerName));
  const orphans = existing.filter((c) => !wanted.has(c.name));
  return { containers, orphans };
}

export async function applyPlan(
  plan: Plan,
  engine: DockerEngine,
  out: Output,
  undo: ContainerUndo,
  result: ContainerRecord,
  run: Runner,
): Promise<void> {
  out.step('Containers');
  for (const orphan of plan.orphans) {
    await run(`remove ${orphan.name}`, () => engine.removeContainer(orphan.name), orphan.name);
    result.containers.push({
      service: orphan.labels[LABELS.service] ?? orphan.name,
      container: orphan.name,
      action: 'removed',
    });
    out.ok(`${orphan.name} removed (no longer in the stack)`);
  }
  for (const c of plan.containers) {
    const name = c.spec.name;
    if (c.action === 'recreated') {
      await run(`stop ${name}`, () => engine.stopContainer(name, 10), name);
      await run(`remove ${name}`, () => engine.removeContainer(name), name);
    }
    if (c.action === 'created' || c.action === 'recreated') {
      await run(`create ${name}`, () => engine.createContainer(c.spec), name);
      undo.containers.push(name);
    }
    if (c.action !== 'unchanged') {
      await run(`start ${name}`, () => startContainer(engine, c.spec), name);
    }
    result.containers.push({ service: c.service.name, container: name, action: c.action });
    out.ok(`${name} ${c.action}`);
  }
}

async function startContainer(engine: DockerEngine, spec: ContainerSpec): Promise<void> {
  try {
    await engine.startContainer(spec.name);
  } catch (err) {
    const message = errorText(err);
    const m = /(?:0\.0\.0\.0|[\d.]+|\[::\]):(\d+)|port (\d+)/.exec(message);
    if (/address already in use|port is already allocated/i.test(message)) {
      const port = Number(m?.[1] ?? m?.[2] ?? spec.ports[0]?.hostPort ?? 0);
      throw portInUse(port, await portHolder(port, engine));
    }
    throw err;
  }
}
