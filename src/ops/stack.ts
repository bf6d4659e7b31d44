/**
 * Shared by the stack commands: load a stack directory into a StackModel, turn a service of the model into
 * an Engine API container spec, and find the admin credentials in the stack's `.env`.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { RegctlError } from '../common/errors.js';
import type { StackConfig } from '../config/schema.js';
import { loadStackConfig } from '../config/load.js';
import { buildStackModel } from '../stack/build-model.js';
import { readEnvFile } from '../stack/env.js';
import { LABELS, type ServiceModel, type StackMode, type StackModel } from '../stack/model.js';
import type { ContainerSpec } from '../docker/engine.js';

/** Label carrying the hash of everything a container was created from (spec, image ID, bound files). */
export const APPLIED_HASH_LABEL = 'dev.regctl.applied-hash';
/** Label recording the mode (`dev`/`prod`) a container was created for. */
export const MODE_LABEL = 'dev.regctl.mode';

export interface LoadedStack {
  dir: string;
  config: StackConfig;
  model: StackModel;
}

export async function loadStack(dir: string, opts: { prod?: boolean; mode?: StackMode } = {}): Promise<LoadedStack> {
  const abs = resolve(dir);
  const config = await loadStackConfig(abs);
  const mode: StackMode = opts.mode ?? (opts.prod ? 'prod' : config.mode);
  return { dir: abs, config, model: buildStackModel(config, mode) };
}

export function projectLabels(model: StackModel): Record<string, string> {
  return { [LABELS.project]: model.project };
}

/** Services ordered so that each comes after what it depends on (model order otherwise). */
export function startOrder(services: ServiceModel[]): ServiceModel[] {
  const byName = new Map(services.map((s) => [s.name, s]));
  const done = new Set<string>();
  const order: ServiceModel[] = [];
  const visit = (s: ServiceModel, path: string[]) => {
    if (done.has(s.name)) return;
    if (path.includes(s.name))
      throw new RegctlError(
        'CONFIG_INVALID',
        `services depend on each other in a cycle: ${[...path, s.name].join(' → ')}`,
      );
    for (const dep of s.dependsOn) {
      const d = byName.get(dep);
      if (d) visit(d, [...path, s.name]);
    }
    done.add(s.name);
    order.push(s);
  };
  for (const s of services) visit(s, []);
  return order;
}

export function bindPath(dir: string, source: string): string {
  return isAbsolute(source) ? source : join(dir, source);
}

/** The container spec of one service; `resolvedImage` is the image reference to run. */
export function containerSpec(
  stack: LoadedStack,
  service: ServiceModel,
  extraLabels: Record<string, string> = {},
): ContainerSpec {
  const { model, dir } = stack;
  const volumeNames = new Map(model.volumes.map((v) => [v.key, v.name]));
  const spec: ContainerSpec = {
    name: service.containerName,
    image: service.image,
    env: { ...service.environment },
    labels: { ...service.labels, [MODE_LABEL]: model.mode, ...extraLabels },
    ports: service.ports.map((p) => ({
      ...(p.hostIp ? { hostIp: p.hostIp } : {}),
      hostPort: p.host,
      containerPort: p.container,
    })),
    mounts: service.mounts.map((m) => ({
      type: m.type,
      source: m.type === 'volume' ? (volumeNames.get(m.source) ?? m.source) : bindPath(dir, m.source),
      target: m.target,
      readOnly: m.readOnly ?? false,
    })),
    restart: service.restart,
    network: model.network.name,
    // Compose makes every container answer to its service name on the project network.
    aliases: [service.name, ...(service.aliases ?? [])],
  };
  if (service.command) spec.command = [...service.command];
  if (service.healthcheck) spec.healthcheck = { ...service.healthcheck, test: [...service.healthcheck.test] };
  return spec;
}

/**
 * Hash of what a container would be created from: the spec, the image ID it runs, and the bytes of every
 * regular file bound into it (Traefik reads its static config only at start). Directories bound in (the
 * auth directory) are left out: the registry re-reads them live.
 */
export async function appliedHash(spec: ContainerSpec, imageId: string): Promise<string> {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ ...spec, labels: sorted(spec.labels), env: sorted(spec.env) }));
  hash.update(`\0image\0${imageId}`);
  for (const m of spec.mounts) {
    if (m.type !== 'bind') continue;
    try {
      const st = await stat(m.source);
      if (st.isFile() && st.size < 16 * 1024 * 1024)
        hash.update(`\0file\0${m.source}\0`).update(await readFile(m.source));
    } catch {
      hash.update(`\0missing\0${m.source}`);
    }
  }
  return hash.digest('hex').slice(0, 24);
}

function sorted(record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The admin credentials `regctl init` wrote to `.env`, when present. */
export async function adminCredentials(dir: string): Promise<{ username: string; password: string } | undefined> {
  const env = await readEnvFile(join(dir, '.env'));
  const username = env.REGISTRY_USERNAME ?? env.REGCTL_ADMIN_USER;
  const password = env.REGISTRY_PASSWORD ?? env.REGCTL_ADMIN_PASSWORD;
  return username && password ? { username, password } : undefined;
}
