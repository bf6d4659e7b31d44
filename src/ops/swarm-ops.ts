/**
 * `status`, `logs`, `down` and `scale` on a swarm stack. The services are found by the label both `regctl up`
 * and `docker stack deploy` set (`com.docker.stack.namespace`), so these also work on a stack deployed with
 * `docker stack deploy -c compose.swarm.yaml <project>`.
 */
import { RegctlError } from '../common/errors.js';
import type { Output } from '../common/io.js';
import type { DockerEngine, HealthState } from '../docker/engine.js';
import { TRIAL_POSTGRES_SERVICE, TRIAL_S3_SERVICE } from '../config/trial.js';
import { buildSwarmModel, type SwarmModel } from '../stack/swarm-model.js';
import { engineLogOptions, writeLines, type LogFlags } from './log-lines.js';
import type { LoadedStack } from './stack.js';
import { managedSwarm, serviceKey, stackFilter } from './swarm-stack.js';
import { waitConverged } from './up-swarm.js';

/** The model as far as status, logs and down need it: names, not secret versions. */
function namesModel(stack: LoadedStack): SwarmModel {
  const { config } = stack;
  return buildSwarmModel(config, config.mode, {
    htpasswd: '',
    access: '',
    traefik: '',
    ...(config.metadata ? { metadataPassword: '' } : {}),
    ...(config.storage.url ? { s3Credentials: '' } : {}),
    ...(config.registry.auth === 'token' ? { tokenKey: '' } : {}),
  });
}

export interface SwarmServiceStatus {
  service: string;
  container: string;
  state: string;
  health?: HealthState;
  image?: string;
  replicas: { running: number; desired: number };
}

export async function swarmStatus(
  stack: LoadedStack,
  engine: DockerEngine,
): Promise<{ healthy: boolean; services: SwarmServiceStatus[] }> {
  const { swarm } = await managedSwarm(engine);
  const model = namesModel(stack);
  const services: SwarmServiceStatus[] = [];
  for (const svc of model.services) {
    const info = await swarm.inspectService(svc.name);
    if (!info) {
      services.push({ service: svc.key, container: svc.name, state: 'missing', replicas: { running: 0, desired: 0 } });
      continue;
    }
    const running = (await swarm.listTasks(svc.name)).filter(
      (t) => t.state === 'running' && t.desiredState === 'running',
    );
    let health: HealthState | undefined;
    for (const t of running) {
      const c = t.containerId ? await engine.inspectContainer(t.containerId) : undefined;
      if (c?.health && health !== 'unhealthy') health = c.health === 'healthy' && health ? health : c.health;
    }
    const full = running.length === info.replicas;
    services.push({
      service: svc.key,
      container: svc.name,
      state: full ? 'running' : `${running.length}/${info.replicas} running`,
      ...(health ? { health } : {}),
      image: info.image,
      replicas: { running: running.length, desired: info.replicas },
    });
  }
  const healthy = services.every((s) => s.state === 'running' && (s.health === undefined || s.health === 'healthy'));
  return { healthy, services };
}

export interface SwarmLogsOptions extends LogFlags {
  service?: string;
  write: (line: string) => void;
}

/** Every task's log, each line prefixed with `<service>.<slot> | `. */
export async function swarmLogs(stack: LoadedStack, engine: DockerEngine, opts: SwarmLogsOptions): Promise<void> {
  const { swarm } = await managedSwarm(engine);
  const model = namesModel(stack);
  const selected = opts.service ? model.services.filter((s) => s.key === opts.service) : model.services;
  if (opts.service && selected.length === 0) {
    throw new RegctlError('NOT_FOUND', `no service "${opts.service}" in stack ${model.project}`, {
      hint: `services: ${model.services.map((s) => s.key).join(', ')}`,
    });
  }
  const present = [];
  for (const svc of selected) if (await swarm.inspectService(svc.name)) present.push(svc);
  if (present.length === 0) {
    throw new RegctlError('STACK_NOT_RUNNING', `stack ${model.project} has no service on this swarm`, {
      hint: `run \`regctl up --dir ${stack.dir}\` first`,
    });
  }
  await Promise.all(
    present.map(async (svc) => {
      const stream = await swarm.serviceLogs(svc.name, engineLogOptions(opts));
      await writeLines(stream, opts.write);
    }),
  );
}

export interface SwarmDownResult {
  servicesRemoved: string[];
  networkRemoved: boolean;
  secretsRemoved: string[];
  configsRemoved: string[];
}

/** Removes the services (Traefik last), waits for their tasks to stop, then the network, secrets and configs. */
export async function swarmDown(
  stack: LoadedStack,
  engine: DockerEngine,
  out: Output,
  timeoutMs = 120_000,
): Promise<SwarmDownResult> {
  const { swarm } = await managedSwarm(engine);
  const project = stack.config.name;
  const filter = stackFilter(project);
  const result: SwarmDownResult = {
    servicesRemoved: [],
    networkRemoved: false,
    secretsRemoved: [],
    configsRemoved: [],
  };
  const services = (await swarm.listServices(filter)).sort(
    (a, b) => Number(a.name.endsWith('_traefik')) - Number(b.name.endsWith('_traefik')),
  );
  if (services.length === 0) out.ok(`No services of ${project} are running`);
  for (const s of services) {
    out.step(`Removing ${s.name}`);
    if (await swarm.removeService(s.name)) result.servicesRemoved.push(s.name);
    out.ok(`${s.name} removed`);
  }
  // Secrets, configs and the network stay in use until the last task's container is gone.
  const deadline = Date.now() + timeoutMs;
  while ((await engine.listContainers(filter)).length > 0) {
    if (Date.now() >= deadline) {
      throw new RegctlError('HEALTH_TIMEOUT', `the tasks of ${project} did not stop in ${timeoutMs / 1000} s`, {
        hint: 'see `docker ps --filter label=com.docker.stack.namespace=' + project + '`, then run down again',
      });
    }
    out.progress('waiting for the tasks to stop');
    await new Promise((r) => setTimeout(r, 1000));
  }
  const network = `${project}_proxy`;
  for (let i = 0; i < 10 && !result.networkRemoved; i++) {
    try {
      result.networkRemoved = await engine.removeNetwork(network);
      if (!result.networkRemoved) break;
    } catch {
      // The overlay keeps endpoints for a moment after the last container: try again shortly.
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  if (result.networkRemoved) out.ok(`Network ${network} removed`);
  for (const s of await swarm.listSecrets(filter))
    if (await swarm.removeSecret(s.name)) result.secretsRemoved.push(s.name);
  for (const c of await swarm.listConfigs(filter))
    if (await swarm.removeConfig(c.name)) result.configsRemoved.push(c.name);
  const objects = result.secretsRemoved.length + result.configsRemoved.length;
  if (objects) out.ok(`${result.secretsRemoved.length} secrets and ${result.configsRemoved.length} configs removed`);
  return result;
}

/** `regctl scale --replicas N`: the registry's replica count, changed online, then waited for. */
export async function scale(
  stack: LoadedStack,
  engine: DockerEngine,
  out: Output,
  replicas: number,
  opts: { service?: string; timeoutMs?: number } = {},
): Promise<{ service: string; from: number; to: number }> {
  const key = opts.service ?? 'registry';
  if (stack.config.deploy.mode !== 'swarm') {
    throw new RegctlError('USAGE', 'scale works on a swarm stack; this one has deploy.mode: compose', {
      hint: 'see docs/swarm.md: `regctl init --mode swarm --replicas N` renders a swarm stack',
    });
  }
  if (key === 'registry' && replicas > 1 && !stack.config.metadata) {
    throw new RegctlError(
      'CONFIG_INVALID',
      `--replicas ${replicas}: replicas share one store only with PostgreSQL metadata`,
      {
        hint: 'set metadata: postgres://USER@HOST/DB in regctl.yaml (and auth/metadata-password), then `regctl up`',
      },
    );
  }
  if (key === 'traefik' && replicas !== 1) {
    throw new RegctlError('USAGE', 'traefik runs as one task: it publishes its ports in host mode on one manager', {
      hint: 'scale the registry (the default) or the ui instead',
    });
  }
  if ((key === TRIAL_POSTGRES_SERVICE || key === TRIAL_S3_SERVICE) && replicas !== 1) {
    throw new RegctlError('USAGE', `${key} is a trial service: one task, its data on one volume`, {
      hint: 'scale the registry (the default) or the ui instead',
    });
  }
  const { swarm } = await managedSwarm(engine);
  const model = namesModel(stack);
  const svc = model.services.find((s) => s.key === key);
  const info = svc ? await swarm.inspectService(svc.name) : undefined;
  if (!svc || !info) {
    throw new RegctlError('STACK_NOT_RUNNING', `service ${key} of stack ${model.project} is not deployed`, {
      hint: `run \`regctl up --dir ${stack.dir}\` first${svc ? '' : ` (services: ${model.services.map((s) => s.key).join(', ')})`}`,
    });
  }
  out.step(`Scaling ${svc.name} from ${info.replicas} to ${replicas}`);
  await swarm.scaleService(svc.name, replicas);
  await waitConverged({ ...model, services: [svc] }, swarm, engine, out, opts.timeoutMs ?? 300_000);
  return { service: serviceKey(model, svc.name), from: info.replicas, to: replicas };
}
