/**
 * `regctl down`: stop and remove the stack's containers and network (on a swarm stack: its services, network,
 * secrets and configs). Data volumes stay unless `volumes` is set, and then only after a confirmation (or `yes`).
 */
import { join, resolve } from 'node:path';
import { RegctlError } from '../common/errors.js';
import type { Output } from '../common/io.js';
import type { Prompts } from '../common/io.js';
import type { DockerEngine } from '../docker/engine.js';
import { buildStackModel } from '../stack/build-model.js';
import { trialServiceDrafts } from '../stack/swarm-trial.js';
import { LABELS } from '../stack/model.js';
import { readEnvFile } from '../stack/env.js';
import { loadStack, type LoadedStack } from './stack.js';
import { swarmDown } from './swarm-ops.js';
import { isSwarmStack } from './swarm-stack.js';

export interface DownOptions {
  dir: string;
  out: Output;
  engine: DockerEngine;
  prompts: Prompts;
  volumes?: boolean;
  yes?: boolean;
}

export interface DownResult {
  project: string;
  containersRemoved: string[];
  networkRemoved: boolean;
  volumesRemoved: string[];
  volumesKept: string[];
}

interface DownTarget {
  project: string;
  network: string;
  /** Volumes the config names (project-labelled volumes are found by label as well). */
  volumes: string[];
  /** Set when regctl.yaml makes it a swarm stack. */
  swarm?: LoadedStack;
}

/** What to take down: from regctl.yaml, or, when it no longer validates, from the project name in `.env`. */
async function downTarget(dir: string, out: Output): Promise<DownTarget> {
  try {
    const stack = await loadStack(dir);
    const { config, model } = stack;
    const volumes = [...buildStackModel(config, 'dev').volumes, ...buildStackModel(config, 'prod').volumes].map(
      (v) => v.name,
    );
    // The trial services' data (a swarm stack's PostgreSQL and S3) is the stack's data too.
    volumes.push(...trialServiceDrafts(config, model.project).map((d) => d.volume.name));
    return {
      project: model.project,
      network: model.network.name,
      volumes: [...new Set(volumes)],
      ...(isSwarmStack(stack) ? { swarm: stack } : {}),
    };
  } catch (err) {
    if (!(err instanceof RegctlError && err.code === 'CONFIG_INVALID')) throw err;
    const project = (await readEnvFile(join(resolve(dir), '.env'))).COMPOSE_PROJECT_NAME;
    if (!project) throw err;
    out.warn(`${err.message}; taking the project name ${project} from .env`);
    return { project, network: `${project}_proxy`, volumes: [] };
  }
}

export async function down(opts: DownOptions): Promise<DownResult> {
  const { out, engine } = opts;
  await engine.ping();
  const target = await downTarget(opts.dir, out);
  const labels = { [LABELS.project]: target.project };
  const volumeNames = [...new Set([...target.volumes, ...(await engine.listVolumes(labels))])].sort();

  if (opts.volumes && !opts.yes) {
    if (!opts.prompts.interactive) {
      throw new RegctlError(
        'USAGE',
        `--volumes deletes the registry's data (${volumeNames.join(', ')}) and needs confirmation`,
        {
          hint: 'add --yes to confirm without a prompt',
        },
      );
    }
    const ok = await opts.prompts.confirm(
      `Delete the volumes ${volumeNames.join(', ')} and every image stored in them?`,
      { default: false },
    );
    if (!ok)
      throw new RegctlError('CANCELLED', 'nothing removed', {
        hint: 'run `regctl down` without --volumes to keep the data',
      });
  }

  const result: DownResult = {
    project: target.project,
    containersRemoved: [],
    networkRemoved: false,
    volumesRemoved: [],
    volumesKept: [],
  };
  if (target.swarm) {
    const removed = await swarmDown(target.swarm, engine, out);
    result.containersRemoved.push(...removed.servicesRemoved);
    result.networkRemoved = removed.networkRemoved;
  }
  const containers = target.swarm ? [] : await engine.listContainers(labels);
  if (containers.length === 0 && !target.swarm) out.ok(`No containers of ${target.project} are running`);
  // Traefik last: it keeps routing until the services behind it are gone.
  const ordered = [...containers].sort(
    (a, b) => Number(a.name.endsWith('-traefik')) - Number(b.name.endsWith('-traefik')),
  );
  for (const c of ordered) {
    out.step(`Stopping ${c.name}`);
    await engine.stopContainer(c.name, 10);
    await engine.removeContainer(c.name);
    result.containersRemoved.push(c.name);
    out.ok(`${c.name} removed`);
  }
  if (!target.swarm) result.networkRemoved = await engine.removeNetwork(target.network);
  if (result.networkRemoved && !target.swarm) out.ok(`Network ${target.network} removed`);

  const allVolumes = new Set(await engine.listVolumes({}));
  const ours = volumeNames.filter((n) => allVolumes.has(n));
  for (const name of ours) {
    if (!opts.volumes) {
      result.volumesKept.push(name);
    } else if (await engine.removeVolume(name)) {
      result.volumesRemoved.push(name);
      out.ok(`Volume ${name} removed`);
    }
  }
  if (result.volumesKept.length)
    out.line(`  Data kept in ${result.volumesKept.join(', ')} (\`regctl down --volumes\` deletes it)`);
  out.ok(`Stack ${target.project} is down`);
  return result;
}
