/**
 * `regctl up` on a swarm stack: make the swarm match the SwarmModel, wait until every service has its replicas
 * running (and, where this engine runs them, healthy), then probe through Traefik as for a compose stack.
 *
 * Steps: swarm → image (built on this node, as for compose) → overlay network and volumes → secrets and configs
 * (created under their versioned names when missing; never changed in place) → services (created; or updated when
 * their applied hash differs, which the engine rolls out start-first; or left alone) → convergence → probes →
 * removal of secret and config versions no service uses any more. A second `up` with nothing changed changes
 * nothing. On a failed first deployment what this run created is removed again, unless `keepOnFailure`.
 */
import { RegctlError } from '../common/errors.js';
import type { Output } from '../common/io.js';
import type { DockerEngine, ImageInfo, SwarmEngine, SwarmServiceInfo, SwarmTaskInfo } from '../docker/engine.js';
import { renderSwarmCompose } from '../stack/swarm-compose.js';
import { MANAGER_ONLY, SWARM_COMPOSE_FILE, type SwarmModel, type SwarmServiceModel } from '../stack/swarm-model.js';
import { readIfExists } from '../common/fs.js';
import { join } from 'node:path';
import { errorText, prepareImages, presentImage } from './up-images.js';
import { APPLIED_HASH_LABEL, type LoadedStack } from './stack.js';
import { loadSwarmModel, managedSwarm, objectData, serviceKey, serviceSpec, stackFilter } from './swarm-stack.js';
import type { ContainerAction } from './up-containers.js';
import { emptyUpResult, type UpOptions, type UpResult } from './up-types.js';

interface SwarmUndo {
  services: string[];
  secrets: string[];
  configs: string[];
  network?: string;
}

export async function upSwarm(
  stack: LoadedStack,
  opts: UpOptions,
  probe: (stack: LoadedStack, out: Output, timeoutMs: number) => Promise<unknown>,
): Promise<UpResult> {
  const { out, engine } = opts;
  const { swarm, state } = await managedSwarm(engine);
  const model = await loadSwarmModel(stack);
  out.ok(`Swarm node ${state.nodeId.slice(0, 12)} is a manager (${state.nodes} node${state.nodes > 1 ? 's' : ''})`);
  const registry = model.services.find((s) => s.key === 'registry');
  // A registry held to a manager keeps its state on that node's volume (the filesystem driver, or the embedded
  // metadata store beside S3): replicas on other nodes would not see it.
  if (state.nodes > 1 && registry && registry.replicas > 1 && registry.constraints.includes(MANAGER_ONLY)) {
    throw new RegctlError(
      'CONFIG_INVALID',
      `deploy.replicas: ${registry.replicas} replicas on a ${state.nodes}-node swarm need S3 storage, not a local volume`,
      {
        hint: 'a local volume is on one node: use one node, or storage.url: s3://… with metadata: postgres://… (see docs/swarm.md)',
      },
    );
  }
  await warnIfStale(stack, model, out);

  const result = emptyUpResult(model);
  const undo: SwarmUndo = { services: [], secrets: [], configs: [] };
  try {
    const images = await prepareImages(stack, opts, result, []);
    for (const svc of model.services)
      if (!images.has(svc.image)) images.set(svc.image, await presentImage(svc.image, svc.key, opts, result));
    out.step('Network, volumes, secrets and configs');
    result.networkCreated = await swarm.ensureOverlayNetwork(model.network.name, model.network.labels);
    if (result.networkCreated) undo.network = model.network.name;
    for (const v of model.volumes) if (await engine.ensureVolume(v.name, v.labels)) result.volumesCreated.push(v.name);
    const created = await createObjects(stack, model, swarm, undo);
    out.ok(
      `Network ${model.network.name}${result.networkCreated ? ' created' : ''}; ` +
        `${model.secrets.length} secrets, ${model.configs.length} configs${created ? ` (${created} new)` : ''}`,
    );

    out.step('Services');
    const existing = new Map((await swarm.listServices(stackFilter(model.project))).map((s) => [s.name, s]));
    const apply = (svc: SwarmServiceModel) => applyService(model, svc, { images, existing, swarm, undo, result, out });
    const trial = model.services.filter((s) => s.trial);
    if (trial.length > 0) {
      for (const svc of trial) await apply(svc);
      // A swarm has no depends_on: the registry opens its database and bucket as it starts, so they come first.
      await waitConverged({ ...model, services: trial }, swarm, engine, out, opts.healthTimeoutMs ?? 300_000);
    }
    for (const svc of model.services) if (!svc.trial) await apply(svc);
    for (const [name] of existing) {
      if (model.services.some((s) => s.name === name)) continue;
      await swarm.removeService(name);
      result.containers.push({ service: serviceKey(model, name), container: name, action: 'removed' });
      out.ok(`${name} removed (no longer in the stack)`);
    }

    await waitConverged(model, swarm, engine, out, opts.healthTimeoutMs ?? 300_000);
    if (!opts.skipProbes) await probe(stack, out, opts.probeTimeoutMs ?? 60_000);
    await removeOldVersions(model, swarm, out);
  } catch (err) {
    throw await cleanUp(err, model, swarm, engine, out, undo, opts.keepOnFailure ?? false);
  }
  result.unchanged =
    !result.networkCreated &&
    result.volumesCreated.length === 0 &&
    result.imagesBuilt.length === 0 &&
    result.imagesPulled.length === 0 &&
    undo.secrets.length + undo.configs.length === 0 &&
    result.containers.every((c) => c.action === 'unchanged');
  out.line();
  out.ok(result.unchanged ? `Stack ${model.project} is up; nothing changed` : `Stack ${model.project} is up (swarm)`);
  out.line(`  Registry: ${model.urls.registry}`);
  if (model.urls.ui) out.line(`  Web UI:   ${model.urls.ui}`);
  return result;
}

interface ApplyContext {
  images: Map<string, ImageInfo>;
  existing: Map<string, SwarmServiceInfo>;
  swarm: SwarmEngine;
  undo: SwarmUndo;
  result: UpResult;
  out: Output;
}

/** Creates the service, updates it when its applied hash changed, or leaves it alone. */
async function applyService(model: SwarmModel, svc: SwarmServiceModel, ctx: ApplyContext): Promise<void> {
  const image = ctx.images.get(svc.image);
  if (!image) throw new Error(`image ${svc.image} was not prepared`);
  const spec = serviceSpec(model, svc, image.id);
  const current = ctx.existing.get(svc.name);
  let action: ContainerAction;
  if (!current) {
    await ctx.swarm.createService(spec);
    ctx.undo.services.push(svc.name);
    action = 'created';
  } else if (current.labels[APPLIED_HASH_LABEL] !== spec.labels[APPLIED_HASH_LABEL]) {
    await ctx.swarm.updateService(svc.name, current.version, spec);
    action = 'recreated';
  } else {
    // Left alone, with the replica count `regctl scale` may have set since.
    action = 'unchanged';
  }
  ctx.result.containers.push({ service: svc.key, container: svc.name, action });
  const word = action === 'recreated' ? `updated (rolling, ${svc.update.order})` : action;
  ctx.out.ok(`${svc.name} ${word} (${svc.replicas} × ${svc.image})`);
}

/** compose.swarm.yaml names secret versions by content: after a credential change it is out of date. */
async function warnIfStale(stack: LoadedStack, model: SwarmModel, out: Output): Promise<void> {
  const onDisk = await readIfExists(join(stack.dir, SWARM_COMPOSE_FILE));
  if (onDisk !== undefined && onDisk !== renderSwarmCompose(model)) {
    out.warn(`${SWARM_COMPOSE_FILE} differs from the stack's files now; \`regctl init --force\` renders it again`);
  }
}

async function createObjects(stack: LoadedStack, model: SwarmModel, swarm: SwarmEngine, undo: SwarmUndo) {
  const filter = stackFilter(model.project);
  const secrets = new Set((await swarm.listSecrets(filter)).map((s) => s.name));
  const configs = new Set((await swarm.listConfigs(filter)).map((c) => c.name));
  for (const s of model.secrets) {
    if (secrets.has(s.name)) continue;
    await swarm.createSecret(s.name, await objectData(stack, s.file), s.labels);
    undo.secrets.push(s.name);
  }
  for (const c of model.configs) {
    if (configs.has(c.name)) continue;
    await swarm.createConfig(c.name, await objectData(stack, c.file), c.labels);
    undo.configs.push(c.name);
  }
  return undo.secrets.length + undo.configs.length;
}

const FAILED_UPDATE = new Set(['paused', 'rollback_started', 'rollback_paused', 'rollback_completed']);

/**
 * Until every service's update (if any) completed and it has exactly `replicas` running tasks, each of them
 * healthy where this engine runs its container. A rolled-back or paused update fails at once with its reason.
 */
export async function waitConverged(
  model: SwarmModel,
  swarm: SwarmEngine,
  engine: DockerEngine,
  out: Output,
  timeoutMs: number,
): Promise<void> {
  out.step(`Waiting for ${model.services.map((s) => s.name).join(', ')} to converge`);
  const deadline = Date.now() + timeoutMs;
  const done = new Set<string>();
  let last = '';
  for (;;) {
    for (const svc of model.services) {
      if (done.has(svc.name)) continue;
      const info = await swarm.inspectService(svc.name);
      if (!info) throw new Error(`service ${svc.name} disappeared`);
      const why = await notConverged(info, swarm, engine);
      if (why === undefined) {
        done.add(svc.name);
        out.ok(`${svc.name} ${info.replicas}/${info.replicas} running and healthy`);
      } else {
        last = `${svc.name}: ${why}`;
      }
    }
    if (done.size === model.services.length) return;
    if (Date.now() >= deadline)
      throw new RegctlError('HEALTH_TIMEOUT', `not converged after ${Math.round(timeoutMs / 1000)} s: ${last}`, {
        hint: 'see `regctl status` and `regctl logs` (every task of the stack)',
      });
    out.progress(last);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function notConverged(
  info: SwarmServiceInfo,
  swarm: SwarmEngine,
  engine: DockerEngine,
): Promise<string | undefined> {
  if (info.updateState && FAILED_UPDATE.has(info.updateState)) {
    throw new RegctlError(
      'HEALTH_TIMEOUT',
      `the update of ${info.name} was ${info.updateState.replace('_', ' ')}: ${info.updateMessage ?? ''}`.trim(),
      {
        hint: 'the previous version keeps running; see `regctl logs` for why the new tasks failed',
      },
    );
  }
  if (info.updateState === 'updating') return 'rolling update in progress';
  const tasks = await swarm.listTasks(info.name);
  // Services regctl deployed carry the applied hash: only tasks of that spec count (stack deploy sets none).
  const hash = info.labels[APPLIED_HASH_LABEL];
  const current = (t: SwarmTaskInfo) => hash === undefined || t.containerLabels[APPLIED_HASH_LABEL] === hash;
  const wanted = tasks.filter((t) => t.desiredState === 'running' && current(t));
  const running = wanted.filter((t) => t.state === 'running');
  if (running.length !== info.replicas || wanted.length !== info.replicas) {
    const failed = tasks
      .filter((t) => t.state === 'failed' || t.state === 'rejected')
      .sort((a, b) => (b.timestamp ?? '').localeCompare(a.timestamp ?? ''))[0];
    return `${running.length}/${info.replicas} tasks running${failed?.message ? ` (last failure: ${failed.message})` : ''}`;
  }
  for (const t of running) {
    if (!t.containerId) continue;
    const c = await engine.inspectContainer(t.containerId);
    if (c && c.health !== undefined && c.health !== 'healthy') return `task ${t.slot ?? t.id} is ${c.health}`;
  }
  return undefined;
}

/** Secret and config versions of this stack that no service names any more (after a rotation or an edit). */
async function removeOldVersions(model: SwarmModel, swarm: SwarmEngine, out: Output): Promise<void> {
  const filter = stackFilter(model.project);
  const keep = new Set([...model.secrets, ...model.configs].map((o) => o.name));
  const old = [
    ...(await swarm.listSecrets(filter)).filter((s) => !keep.has(s.name)).map((s) => ['secret', s.name] as const),
    ...(await swarm.listConfigs(filter)).filter((c) => !keep.has(c.name)).map((c) => ['config', c.name] as const),
  ];
  for (const [kind, name] of old) {
    try {
      if (kind === 'secret') await swarm.removeSecret(name);
      else await swarm.removeConfig(name);
      out.ok(`old ${kind} ${name} removed`);
    } catch (err) {
      out.warn(`old ${kind} ${name} kept: ${errorText(err)}`);
    }
  }
}

async function cleanUp(
  err: unknown,
  model: SwarmModel,
  swarm: SwarmEngine,
  engine: DockerEngine,
  out: Output,
  undo: SwarmUndo,
  keep: boolean,
): Promise<RegctlError> {
  if (!keep) {
    const tryIt = async (what: string, fn: () => Promise<unknown>) =>
      fn().catch((e: unknown) => out.warn(`could not remove ${what}: ${errorText(e)}`));
    for (const s of undo.services) await tryIt(s, () => swarm.removeService(s));
    // Tasks hold their secrets and network until they are gone.
    if (undo.services.length) await new Promise((r) => setTimeout(r, 2000));
    for (const s of undo.secrets) await tryIt(s, () => swarm.removeSecret(s));
    for (const c of undo.configs) await tryIt(c, () => swarm.removeConfig(c));
    if (undo.network) {
      const network = undo.network;
      await tryIt(network, () => engine.removeNetwork(network));
    }
    const all = [...undo.services, ...undo.secrets, ...undo.configs, ...(undo.network ? [undo.network] : [])];
    if (all.length) out.warn(`removed what this run created (${all.join(', ')})`);
  } else if (undo.services.length) {
    out.warn(`kept ${undo.services.join(', ')} for inspection (--keep-on-failure); \`regctl down\` removes them`);
  }
  if (err instanceof RegctlError) return err;
  return new RegctlError('INTERNAL', `up on swarm stack ${model.project} failed: ${errorText(err)}`, {
    hint: 'check the swarm (docker service ls, docker service ps --no-trunc) and the message above',
    cause: err,
  });
}
