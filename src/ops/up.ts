/**
 * `regctl up`: make the engine match the StackModel, wait until the stack answers, and say how to use it.
 *
 * Steps, each named in progress output and in errors: engine → config → network and volumes → images
 * (build ours unless an image with the same context hash exists; use or pull the others) → containers (in
 * dependency order; a container whose applied hash label matches is left alone, one that differs is
 * recreated, one the model no longer has is removed) → Docker health → HTTP probes through Traefik.
 *
 * On failure everything this run created (containers, network, volumes) is removed again, unless
 * `keepOnFailure`; the error names the step and carries the failing container's last log lines.
 */
import { existsSync } from 'node:fs';
import { text } from 'node:stream/consumers';
import { RegctlError } from '../common/errors.js';
import type { Output } from '../common/io.js';
import { EngineError, type DockerEngine } from '../docker/engine.js';
import {
  isTraefikDefaultCertificate,
  probe,
  retryUntil,
  servedCertificate,
  type ServedCertificate,
} from './http-probe.js';
import { assertPortsFree } from './ports.js';
import { ensureDevCertificates } from './dev-ca.js';
import { applyPlan, planContainers, type ContainerUndo } from './up-containers.js';
import { errorText, prepareImages, removeStaleImages } from './up-images.js';
import { isSwarmStack } from './swarm-stack.js';
import { upSwarm } from './up-swarm.js';
import { emptyUpResult, type UpOptions, type UpResult } from './up-types.js';
import { adminCredentials, bindPath, loadStack, projectLabels, type LoadedStack } from './stack.js';

export type { UpOptions, UpResult } from './up-types.js';
export type { ContainerAction } from './up-containers.js';

interface Undo extends ContainerUndo {
  network?: string;
  volumes: string[];
}

class StepFailure extends Error {
  constructor(
    readonly step: string,
    override readonly cause: unknown,
    readonly container?: string,
  ) {
    super(step);
  }
}

export async function up(opts: UpOptions): Promise<UpResult> {
  const { out, engine } = opts;
  out.step('Checking the Docker engine');
  await engine.ping();

  const stack = await loadStack(opts.dir, { prod: opts.prod ?? false });
  const { model } = stack;
  out.ok(`Loaded ${stack.dir}/regctl.yaml (project ${model.project}, ${model.mode} mode)`);
  if (isSwarmStack(stack)) return upSwarm(stack, opts, probeStack);
  if (model.mode === 'dev') {
    // The dev leaf is renewed here too (it lives LEAF_DAYS), so a stack that is only ever `up`ped keeps HTTPS.
    const certs = await ensureDevCertificates(stack.dir, stack.config.host, Object.values(model.hostnames));
    for (const f of certs.files) if (f.status !== 'kept' && !f.secret) out.ok(`${f.status} ${f.path}`);
    if (certs.caReplaced)
      out.warn(`a new local CA replaced the old one (${certs.caReplaced}): run \`regctl login --trust\``);
  }
  checkBindSources(stack);

  const undo: Undo = { containers: [], volumes: [] };
  const result = emptyUpResult(model);

  let step = 'check ports';
  const run = async <T>(name: string, fn: () => Promise<T>, container?: string): Promise<T> => {
    step = name;
    try {
      return await fn();
    } catch (err) {
      if (err instanceof StepFailure) throw err;
      throw new StepFailure(name, err, container);
    }
  };

  try {
    await run('check ports', () => checkPorts(stack, engine));
    out.step('Network and volumes');
    result.networkCreated = await run(`create network ${model.network.name}`, () =>
      engine.ensureNetwork(model.network.name, model.network.labels),
    );
    if (result.networkCreated) undo.network = model.network.name;
    for (const v of model.volumes) {
      if (await run(`create volume ${v.name}`, () => engine.ensureVolume(v.name, v.labels))) {
        undo.volumes.push(v.name);
        result.volumesCreated.push(v.name);
      }
    }
    out.ok(
      `Network ${model.network.name}${result.networkCreated ? ' created' : ''}, volumes ${model.volumes.map((v) => v.name).join(', ')}` +
        (result.volumesCreated.length ? ` (created ${result.volumesCreated.join(', ')})` : ''),
    );

    const stale: string[] = [];
    const images = await run('prepare images', () => prepareImages(stack, opts, result, stale));

    const plan = await run('plan containers', () => planContainers(stack, engine, images));
    await applyPlan(plan, engine, out, undo, result, run);

    await run('wait for health checks', () => waitHealthy(stack, engine, out, opts.healthTimeoutMs ?? 180_000));

    if (!opts.skipProbes) {
      const cert = await run('probe through Traefik', () => probeStack(stack, out, opts.probeTimeoutMs ?? 60_000));
      if (cert) result.certificate = cert;
    }
    await removeStaleImages(stale, engine, out, result);
  } catch (err) {
    const failure = err instanceof StepFailure ? err : new StepFailure(step, err);
    throw await failAndCleanUp(failure, stack, engine, out, undo, opts.keepOnFailure ?? false);
  }

  result.unchanged =
    !result.networkCreated &&
    result.volumesCreated.length === 0 &&
    result.imagesBuilt.length === 0 &&
    result.imagesPulled.length === 0 &&
    result.containers.every((c) => c.action === 'unchanged');
  await printSummary(stack, out, result);
  return result;
}

function checkBindSources(stack: LoadedStack): void {
  for (const svc of stack.model.services) {
    for (const m of svc.mounts) {
      if (m.type !== 'bind') continue;
      const path = bindPath(stack.dir, m.source);
      if (!existsSync(path)) {
        throw new RegctlError('CONFIG_MISSING', `${path} is missing (mounted into ${svc.name} at ${m.target})`, {
          hint: `run \`regctl init --dir ${stack.dir}\` to render the stack's files again`,
        });
      }
    }
  }
}

/**
 * Every port the model publishes must be free now, unless a container of this stack already publishes it
 * (it keeps it, or frees it when recreated). Checked before anything is created.
 */
async function checkPorts(stack: LoadedStack, engine: DockerEngine): Promise<void> {
  const ours = new Set<number>();
  for (const c of await engine.listContainers(projectLabels(stack.model)))
    for (const p of c.ports) ours.add(p.hostPort);
  const needed = stack.model.services
    .flatMap((s) => s.ports)
    .filter((p) => !ours.has(p.host))
    .map((p) => ({ port: p.host, hostIp: p.hostIp }));
  await assertPortsFree(needed, engine);
}

async function waitHealthy(stack: LoadedStack, engine: DockerEngine, out: Output, timeoutMs: number): Promise<void> {
  const services = stack.model.services;
  out.step(`Waiting for ${services.map((s) => s.name).join(', ')} to be healthy`);
  const deadline = Date.now() + timeoutMs;
  const pending = new Set(services.map((s) => s.containerName));
  for (;;) {
    for (const name of [...pending]) {
      const info = await engine.inspectContainer(name);
      if (!info) throw new StepFailure('wait for health checks', new Error(`${name} disappeared`), name);
      if (info.state === 'exited' || info.state === 'dead') {
        throw new StepFailure(
          'wait for health checks',
          new Error(`${name} exited (code ${info.exitCode ?? '?'})`),
          name,
        );
      }
      if (info.health === 'unhealthy') {
        throw new StepFailure('wait for health checks', new Error(`${name} is unhealthy`), name);
      }
      if (info.state === 'running' && (info.health === undefined || info.health === 'healthy')) {
        pending.delete(name);
        out.ok(`${name} ${info.health ?? 'running'}`);
      }
    }
    if (pending.size === 0) return;
    if (Date.now() >= deadline) {
      const first = [...pending][0];
      throw new StepFailure(
        'wait for health checks',
        new RegctlError(
          'HEALTH_TIMEOUT',
          `${[...pending].join(', ')} not healthy after ${Math.round(timeoutMs / 1000)} s`,
        ),
        first,
      );
    }
    out.progress(`waiting for ${[...pending].join(', ')}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** GET /v2/ through Traefik: 401 without credentials, 200 with the admin's; the UI answers; in prod the ACME cert. */
async function probeStack(stack: LoadedStack, out: Output, timeoutMs: number): Promise<ServedCertificate | undefined> {
  const { model, config } = stack;
  const tls = model.mode === 'prod';
  const port = tls ? config.ports.https : config.ports.http;
  const host = model.hostnames.registry;
  const base = { port, host, tls, insecure: true, timeoutMs: 5000 };
  out.step(`Probing ${model.urls.registry}/v2/ through Traefik`);
  await retryUntil(
    async () => {
      const res = await probe({ ...base, path: '/v2/' });
      return res.status === 401 ? res : undefined;
    },
    {
      timeoutMs,
      describe: () => `GET ${model.urls.registry}/v2/ through 127.0.0.1:${port} did not answer 401 without credentials`,
    },
  );
  out.ok(`/v2/ answers 401 without credentials`);
  const creds = await adminCredentials(stack.dir);
  if (creds) {
    const res = await probe({ ...base, path: '/v2/', auth: creds });
    if (res.status !== 200)
      throw new Error(`GET /v2/ with ${creds.username}'s credentials from .env answered ${res.status}, not 200`);
    out.ok(`/v2/ answers 200 with ${creds.username}'s credentials`);
  } else {
    out.warn('no REGISTRY_USERNAME/REGISTRY_PASSWORD in .env: skipped the authenticated probe');
  }
  if (model.hostnames.ui) {
    const uiHost = model.hostnames.ui;
    await retryUntil(
      async () => {
        const res = await probe({ ...base, host: uiHost, path: '/' });
        return res.status > 0 && res.status < 500 && res.status !== 404 ? res : undefined;
      },
      { timeoutMs, describe: () => `the UI at ${model.urls.ui} did not answer through Traefik` },
    );
    out.ok(`UI answers at ${model.urls.ui}`);
  }
  if (!tls) return undefined;
  const redirect = await probe({ port: config.ports.http, host, path: '/v2/', timeoutMs: 5000 });
  if (
    redirect.status < 300 ||
    redirect.status >= 400 ||
    !String(redirect.headers.location ?? '').startsWith('https://')
  ) {
    throw new Error(`http://${host}/v2/ answered ${redirect.status} instead of a redirect to HTTPS`);
  }
  out.ok('HTTP redirects to HTTPS');
  try {
    const cert = await retryUntil(
      async () => {
        const c = await servedCertificate({ port, servername: host });
        return isTraefikDefaultCertificate(c) ? undefined : c;
      },
      {
        timeoutMs: Math.max(timeoutMs, 120_000),
        intervalMs: 2000,
        describe: () => `no ACME certificate for ${host} yet`,
      },
    );
    out.ok(`Certificate for ${host} issued by ${cert.issuer}, valid until ${cert.validTo}`);
    return cert;
  } catch (err) {
    out.warn(`${errorText(err)}; Traefik keeps trying (see \`regctl logs traefik\`)`);
    return undefined;
  }
}

async function failAndCleanUp(
  failure: StepFailure,
  stack: LoadedStack,
  engine: DockerEngine,
  out: Output,
  undo: Undo,
  keep: boolean,
): Promise<RegctlError> {
  const cause = failure.cause;
  const details: string[] = [];
  const container = failure.container;
  if (container) {
    try {
      const log = (await text(await engine.logs(container, { tail: 20 }))).split('\n').filter((l) => l.trim() !== '');
      if (log.length) details.push(`last log lines of ${container}:`, ...log.map((l) => `  ${l}`));
    } catch {
      // the container may not exist: nothing to show
    }
  }
  if (!keep) {
    for (const name of [...undo.containers].reverse()) {
      try {
        await engine.removeContainer(name);
      } catch (err) {
        out.warn(`could not remove ${name}: ${errorText(err)}`);
      }
    }
    if (undo.network)
      await engine
        .removeNetwork(undo.network)
        .catch((err: unknown) => out.warn(`could not remove network ${undo.network}: ${errorText(err)}`));
    for (const v of undo.volumes)
      await engine.removeVolume(v).catch((err: unknown) => out.warn(`could not remove volume ${v}: ${errorText(err)}`));
    const removed = undo.containers.length + (undo.network ? 1 : 0) + undo.volumes.length;
    if (removed)
      out.warn(
        `removed what this run created (${[...undo.containers, ...(undo.network ? [undo.network] : []), ...undo.volumes].join(', ')})`,
      );
  } else if (undo.containers.length) {
    out.warn(
      `kept ${undo.containers.join(', ')} for inspection (--keep-on-failure); \`regctl down --dir ${stack.dir}\` removes them`,
    );
  }
  if (cause instanceof RegctlError) {
    return new RegctlError(cause.code, `${failure.step}: ${cause.message}`, {
      ...(cause.hint ? { hint: cause.hint } : {}),
      details: [...cause.details, ...details],
      cause,
    });
  }
  const code =
    failure.step.startsWith('wait for health') || failure.step.startsWith('probe') ? 'HEALTH_TIMEOUT' : 'INTERNAL';
  const hint = container
    ? `see \`regctl logs ${stack.model.services.find((s) => s.containerName === container)?.name ?? container} --dir ${stack.dir}\`; \`regctl up --keep-on-failure\` keeps the containers for inspection`
    : cause instanceof EngineError
      ? 'check the Docker engine (docker info) and the message above'
      : 'run with REGCTL_DEBUG=1 for the stack trace';
  return new RegctlError(code, `${failure.step} failed: ${errorText(cause)}`, { hint, details, cause });
}

async function printSummary(stack: LoadedStack, out: Output, result: UpResult): Promise<void> {
  const { model } = stack;
  out.line();
  out.ok(
    result.unchanged ? `Stack ${model.project} is up; nothing changed` : `Stack ${model.project} is up (${model.mode})`,
  );
  out.line(`  Registry: ${model.urls.registry}`);
  if (model.urls.ui) out.line(`  Web UI:   ${model.urls.ui}`);
  const registryHost = new URL(model.urls.registry).host;
  const creds = await adminCredentials(stack.dir);
  const user = creds?.username ?? 'admin';
  out.line(
    `  Log in:   grep REGISTRY_PASSWORD ${stack.dir}/.env | cut -d= -f2- | docker login ${registryHost} -u ${user} --password-stdin`,
  );
  if (model.mode === 'dev') {
    const direct = stack.config.ports.registry;
    out.line(`  Dev mode serves plain HTTP: add to /etc/docker/daemon.json and restart dockerd:`);
    out.line(`    { "insecure-registries": ["${registryHost}"${direct ? `, "127.0.0.1:${direct}"` : ''}] }`);
    out.line(
      `  and make ${model.hostnames.registry}${model.hostnames.ui ? ` and ${model.hostnames.ui}` : ''} resolve to this machine (DNS or /etc/hosts).`,
    );
  }
}
