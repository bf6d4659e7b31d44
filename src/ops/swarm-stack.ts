/**
 * Shared by the commands on a swarm stack (`deploy.mode: swarm`): the SwarmModel of a stack directory (read from
 * the same files `compose.swarm.yaml` names), the engine spec of each service, and the swarm the engine is in.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RegctlError } from '../common/errors.js';
import { readIfExists } from '../common/fs.js';
import type { DockerEngine } from '../docker/engine.js';
import type { SwarmEngine, SwarmServiceSpec, SwarmState } from '../docker/engine.js';
import { METADATA_PASSWORD_FILE, S3_CREDENTIALS_FILE, TOKEN_KEY_FILE } from '../stack/build-model.js';
import {
  buildSwarmModel,
  GRACE_FILE,
  STACK_IMAGE,
  STACK_NAMESPACE,
  SWARM_TRAEFIK_FILE,
  type SwarmModel,
  type SwarmServiceModel,
} from '../stack/swarm-model.js';
import { APPLIED_HASH_LABEL, type LoadedStack } from './stack.js';

export function isSwarmStack(stack: LoadedStack): boolean {
  return stack.config.deploy.mode === 'swarm';
}

/** Labels every object of the stack carries, as `docker stack deploy` sets them. */
export function namespaceLabels(project: string): Record<string, string> {
  return { [STACK_NAMESPACE]: project };
}

async function required(dir: string, path: string): Promise<string> {
  const text = await readIfExists(join(dir, path));
  if (text === undefined) {
    throw new RegctlError('CONFIG_MISSING', `${join(dir, path)} is missing (a swarm stack deploys it)`, {
      hint: `run \`regctl init --force --dir ${dir}\` to render the stack's files again`,
    });
  }
  return text;
}

/** The token signing key, and the previous one while a rotation's grace lasts. */
async function tokenKeys(dir: string): Promise<{ tokenKey: string; tokenKeyPrevious?: string }> {
  const previous = await readIfExists(join(dir, 'auth', `${TOKEN_KEY_FILE}.previous`));
  return {
    tokenKey: await required(dir, `auth/${TOKEN_KEY_FILE}`),
    ...(previous !== undefined ? { tokenKeyPrevious: previous } : {}),
  };
}

/** The stack's SwarmModel, with secret and config names from the files as they are now. */
export async function loadSwarmModel(stack: LoadedStack): Promise<SwarmModel> {
  const { dir, config } = stack;
  const grace = await readIfExists(join(dir, GRACE_FILE));
  return buildSwarmModel(config, config.mode, {
    htpasswd: await required(dir, 'auth/htpasswd'),
    access: await required(dir, 'auth/access.yaml'),
    traefik: await required(dir, SWARM_TRAEFIK_FILE),
    ...(config.metadata ? { metadataPassword: await required(dir, `auth/${METADATA_PASSWORD_FILE}`) } : {}),
    ...(config.storage.url ? { s3Credentials: await required(dir, `auth/${S3_CREDENTIALS_FILE}`) } : {}),
    ...(config.registry.auth === 'token' ? await tokenKeys(dir) : {}),
    ...(grace !== undefined ? { grace } : {}),
  });
}

/** The bytes of a secret or config, read from its stack file. */
export async function objectData(stack: LoadedStack, file: string): Promise<Buffer> {
  return readFile(join(stack.dir, file));
}

/** The swarm this engine manages; a one-line error when it is in none or is only a worker. */
export async function managedSwarm(engine: DockerEngine): Promise<{ swarm: SwarmEngine; state: SwarmState }> {
  const swarm = await engine.swarm();
  const state = await swarm.state();
  if (!state) {
    throw new RegctlError('USAGE', 'this Docker engine is not part of a swarm (regctl.yaml has deploy.mode: swarm)', {
      hint: 'run `docker swarm init` on this machine (see docs/swarm.md), or set deploy.mode: compose',
    });
  }
  if (!state.manager) {
    throw new RegctlError('USAGE', 'this Docker engine is a swarm worker: services are managed on a manager', {
      hint: 'run regctl on a manager node (docker node ls there lists them)',
    });
  }
  return { swarm, state };
}

/** The engine spec of one service; `imageId` goes into the applied hash, so a rebuilt image rolls out. */
export function serviceSpec(model: SwarmModel, svc: SwarmServiceModel, imageId: string): SwarmServiceSpec {
  const volumeNames = new Map(model.volumes.map((v) => [v.key, v.name]));
  const names = (refs: { source: string; target: string }[], objects: SwarmModel['secrets']) =>
    refs.map((r) => {
      const o = objects.find((x) => x.key === r.source);
      if (!o) throw new Error(`service ${svc.key} names ${r.source}, which the model does not have`);
      return { name: o.name, target: r.target };
    });
  const spec: SwarmServiceSpec = {
    name: svc.name,
    image: svc.image,
    ...(svc.entrypoint ? { entrypoint: [...svc.entrypoint] } : {}),
    ...(svc.command ? { command: [...svc.command] } : {}),
    env: { ...svc.environment },
    labels: { ...svc.labels, [STACK_IMAGE]: svc.image },
    containerLabels: namespaceLabels(model.project),
    mounts: svc.mounts.map((m) => ({
      type: m.type,
      source: m.type === 'volume' ? (volumeNames.get(m.source) ?? m.source) : m.source,
      target: m.target,
      readOnly: m.readOnly ?? false,
    })),
    secrets: names(svc.secrets, model.secrets),
    configs: names(svc.configs, model.configs),
    ports: svc.ports.map((p) => ({ ...p })),
    ...(svc.healthcheck ? { healthcheck: { ...svc.healthcheck, test: [...svc.healthcheck.test] } } : {}),
    replicas: svc.replicas,
    endpointMode: svc.endpointMode,
    constraints: [...svc.constraints],
    update: { ...svc.update },
    network: model.network.name,
    // `docker stack deploy` makes each service answer to its key on the stack network.
    aliases: [svc.key],
  };
  // The replica count is in the hash: a change of deploy.replicas in regctl.yaml is applied by the next `up`,
  // while a count set by `regctl scale` stays until then (scaling leaves the applied hash as it was).
  const hash = createHash('sha256')
    .update(JSON.stringify(spec))
    .update(`\0image\0${imageId}`)
    .digest('hex')
    .slice(0, 24);
  // On the tasks' containers too: convergence waits for running tasks of this very spec (right after an update
  // the engine may still report the old tasks as the service's, before its update has started).
  spec.labels[APPLIED_HASH_LABEL] = hash;
  spec.containerLabels[APPLIED_HASH_LABEL] = hash;
  return spec;
}

export function serviceKey(model: SwarmModel, name: string): string {
  return name.startsWith(`${model.project}_`) ? name.slice(model.project.length + 1) : name;
}

/** The label `regctl up` and `docker stack deploy` both set on a stack's services, for listing them. */
export function stackFilter(project: string): Record<string, string> {
  return { [STACK_NAMESPACE]: project };
}
