/**
 * Where `regctl restore FILE` puts a stack's backup, for each kind of stack:
 *
 * - a data volume (the filesystem driver), compose or swarm: the one-off restore container mounts the volume,
 *   with no network;
 * - a bucket (`storage.url` in regctl.yaml), compose or swarm: the restore container writes through the S3 driver
 *   with exactly the registry's S3 flags and its credentials file (bind-mounted read-only, read through
 *   AWS_SHARED_CREDENTIALS_FILE as the registry reads it), on the stack's own network so that an endpoint the
 *   registry reaches by a service name is reached the same way. The marker the metadata store keeps for the
 *   bucket goes with the old data, so the registries import the restored bucket when they start.
 *
 * Either way the registry must be stopped: its container (compose) or its service (swarm) must not exist.
 */
import { join } from 'node:path';
import { RegctlError } from '../common/errors.js';
import type { ContainerMount, DockerEngine } from '../docker/engine.js';
import { AUTH_DIR, DATA_DIR, S3_CREDENTIALS_FILE, s3Arguments } from '../stack/build-model.js';
import type { LoadedStack } from './stack.js';
import { isSwarmStack, loadSwarmModel, managedSwarm, namespaceLabels, stackFilter } from './swarm-stack.js';

export interface RestoreTarget {
  image: string;
  /** What the restore writes into, for messages. */
  where: string;
  /** The data volume, when the storage is one. */
  volume?: { name: string; labels: Record<string, string> };
  /** The stack network the restore container joins (S3 only); `created` when this restore must remove it. */
  network?: { name: string; overlay: boolean; labels: Record<string, string> };
  /** Mounts besides the archives. */
  mounts: ContainerMount[];
  env: Record<string, string>;
  /** `regctl restore` arguments that name the target (`--data DIR` or the S3 flags). */
  targetArgs: string[];
}

const running = (state: string | undefined) => state === 'running' || state === 'restarting';

async function assertComposeStopped(stack: LoadedStack, engine: DockerEngine): Promise<void> {
  const registry = stack.model.services.find((s) => s.name === 'registry');
  if (!registry) throw new RegctlError('CONFIG_INVALID', 'the stack has no registry service');
  const info = await engine.inspectContainer(registry.containerName);
  if (info && running(info.state)) {
    throw new RegctlError(
      'USAGE',
      `the stack is running (${registry.containerName}): restore works on a stopped stack`,
      {
        hint: `run \`regctl down --dir ${stack.dir}\` first, then restore, then \`regctl up\``,
      },
    );
  }
}

async function assertSwarmStopped(stack: LoadedStack, engine: DockerEngine): Promise<void> {
  const { swarm } = await managedSwarm(engine);
  const name = `${stack.config.name}_registry`;
  const services = await swarm.listServices(stackFilter(stack.config.name));
  if (services.some((s) => s.name === name)) {
    throw new RegctlError('USAGE', `the stack is running (service ${name}): restore works on a stopped stack`, {
      hint: `run \`regctl down --dir ${stack.dir}\` first, then restore, then \`regctl up\``,
    });
  }
  // Tasks of a service just removed may still be stopping: none may write while the restore runs.
  const deadline = Date.now() + 60_000;
  const tasks = { 'com.docker.swarm.service.name': name };
  while ((await engine.listContainers(tasks)).length > 0) {
    if (Date.now() >= deadline)
      throw new RegctlError('USAGE', `registry tasks of ${stack.config.name} are still running`, {
        hint: 'wait for `regctl down` to finish, then restore again',
      });
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The stopped stack's restore target; refuses a running stack and a missing image. */
export async function restoreTarget(stack: LoadedStack, engine: DockerEngine): Promise<RestoreTarget> {
  const swarmMode = isSwarmStack(stack);
  if (swarmMode) await assertSwarmStopped(stack, engine);
  else await assertComposeStopped(stack, engine);

  const swarmModel = swarmMode ? await loadSwarmModel(stack) : undefined;
  const registry = stack.model.services.find((s) => s.name === 'registry');
  if (!registry) throw new RegctlError('CONFIG_INVALID', 'the stack has no registry service');
  const image = registry.image;
  if (!(await engine.inspectImage(image))) {
    throw new RegctlError('NOT_FOUND', `the stack's image ${image} is not on this engine; the restore runs in it`, {
      hint: `run \`regctl up --dir ${stack.dir}\` once to build it, then \`regctl down\` and restore`,
    });
  }

  const { storage } = stack.config;
  if (storage.url) {
    const network = swarmModel
      ? { name: swarmModel.network.name, overlay: true, labels: swarmModel.network.labels }
      : { name: stack.model.network.name, overlay: false, labels: stack.model.network.labels };
    const credentials = `${AUTH_DIR}/${S3_CREDENTIALS_FILE}`;
    return {
      image,
      where: storage.url,
      network,
      mounts: [
        { type: 'bind', source: join(stack.dir, 'auth', S3_CREDENTIALS_FILE), target: credentials, readOnly: true },
      ],
      env: { AWS_SHARED_CREDENTIALS_FILE: credentials },
      targetArgs: s3Arguments(storage),
    };
  }

  const volumeKey = registry.mounts.find((m) => m.target === DATA_DIR)?.source;
  const volume = stack.model.volumes.find((v) => v.key === volumeKey);
  if (!volume) throw new RegctlError('CONFIG_INVALID', 'the registry service has no data volume');
  const swarmVolume = swarmModel?.volumes.find((v) => v.key === volume.key);
  const target = swarmVolume ?? volume;
  return {
    image,
    where: `volume ${target.name}`,
    volume: { name: target.name, labels: swarmVolume ? { ...swarmVolume.labels } : { ...volume.labels } },
    mounts: [{ type: 'volume', source: target.name, target: DATA_DIR, readOnly: false }],
    env: {},
    targetArgs: ['--data', DATA_DIR],
  };
}

/** Makes the network the restore container joins, when it is gone; true when this call made it. */
export async function ensureRestoreNetwork(
  engine: DockerEngine,
  stack: LoadedStack,
  target: RestoreTarget,
): Promise<boolean> {
  if (!target.network) return false;
  if (target.network.overlay) {
    const { swarm } = await managedSwarm(engine);
    return swarm.ensureOverlayNetwork(target.network.name, {
      ...target.network.labels,
      ...namespaceLabels(stack.config.name),
    });
  }
  return engine.ensureNetwork(target.network.name, target.network.labels);
}
