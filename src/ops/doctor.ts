/**
 * `regctl doctor`: checks the whole path a `docker push` takes, from the engine to the bytes on disk, and
 * says for each problem what is wrong and the exact fix. Checks are independent: one failing never hides
 * the others, and a check whose prerequisite failed reports `skip` with the reason.
 *
 * The engine and the stack's configuration are checked first (without a valid regctl.yaml nothing else can be);
 * then the table `CHECKS` runs in order, each row in `src/ops/doctor/`.
 */
import { join } from 'node:path';
import type { EngineInfo } from '../docker/engine.js';
import { clockCheck, diskCheck } from './doctor/disk-clock.js';
import { dnsCheck, portsCheck, trustCheck, trustDirectCheck } from './doctor/host.js';
import { devCaCheck, devCaTrustCheck, devHttpsCheck, devLeafCheck } from './doctor/dev-tls.js';
import { acmeJsonCheck, certificateCheck, httpChallengeCheck } from './doctor/prod.js';
import { locationCheck, stackCheck, traefikTimeoutCheck } from './doctor/proxy.js';
import {
  messageOf,
  type Check,
  type CheckResult,
  type DoctorContext,
  type DoctorOptions,
  type DoctorReport,
} from './doctor/types.js';
import { uploadCheck } from './doctor/upload.js';
import { adminCredentials, loadStack, type LoadedStack } from './stack.js';

export { daemonJsonAdvice, hostsAdvice } from './doctor/host.js';
export type { CheckResult, CheckStatus, DoctorOptions, DoctorReport } from './doctor/types.js';

/** The checks of a loaded stack, in the order they run and are reported. */
export const CHECKS: readonly Check[] = [
  portsCheck,
  dnsCheck,
  trustCheck,
  trustDirectCheck,
  devCaCheck,
  devLeafCheck,
  devCaTrustCheck,
  stackCheck,
  traefikTimeoutCheck,
  locationCheck,
  devHttpsCheck,
  uploadCheck,
  diskCheck,
  clockCheck,
  certificateCheck,
  acmeJsonCheck,
  httpChallengeCheck,
];

function contextOf(
  opts: DoctorOptions,
  stack: LoadedStack,
  engineUp: boolean,
  creds: DoctorContext['creds'],
): DoctorContext {
  const { model, config } = stack;
  const tls = model.mode === 'prod';
  const registryHost = model.hostnames.registry;
  const publicPort = tls ? config.ports.https : config.ports.http;
  let info: Promise<EngineInfo> | undefined;
  return {
    opts,
    engine: opts.engine,
    platform: opts.platform ?? process.platform,
    address: opts.address ?? '127.0.0.1',
    stack,
    model,
    config,
    mode: model.mode,
    tls,
    registryHost,
    publicPort,
    hostHeader: publicPort === (tls ? 443 : 80) ? registryHost : `${registryHost}:${publicPort}`,
    names: [model.hostnames.registry, ...(model.hostnames.ui ? [model.hostnames.ui] : [])],
    creds,
    engineInfo: () => (info ??= opts.engine.engineInfo()),
    engineTime: () => opts.engine.engineInfo().then((i) => i.systemTime),
    engineUp,
    registryIp: undefined,
    running: false,
  };
}

export async function doctor(opts: DoctorOptions): Promise<DoctorReport> {
  const checks: CheckResult[] = [];
  const add = (c: CheckResult) => {
    checks.push(c);
    opts.onProgress?.(`${c.title}: ${c.status}`);
  };

  let engineUp = false;
  try {
    await opts.engine.ping();
    engineUp = true;
    add({ id: 'engine', title: 'Docker engine', status: 'pass', detail: 'the engine answers' });
  } catch (err) {
    add({
      id: 'engine',
      title: 'Docker engine',
      status: 'fail',
      detail: messageOf(err),
      fix: 'start the Docker daemon (sudo systemctl start docker), or point DOCKER_HOST at a running engine',
    });
  }

  let stack: LoadedStack;
  try {
    stack = await loadStack(opts.dir, { ...(opts.prod ? { prod: true } : {}) });
    add({
      id: 'config',
      title: 'Stack configuration',
      status: 'pass',
      detail: `${join(opts.dir, 'regctl.yaml')} is valid`,
    });
  } catch (err) {
    add({
      id: 'config',
      title: 'Stack configuration',
      status: 'fail',
      detail: messageOf(err),
      fix: 'run `regctl init` in this directory, or fix regctl.yaml',
    });
    return { ok: false, mode: opts.prod ? 'prod' : 'dev', checks };
  }

  // An unreadable .env is reported like a missing one: the checks that need credentials skip and say so.
  const ctx = contextOf(opts, stack, engineUp, await adminCredentials(opts.dir).catch(() => undefined));
  for (const check of CHECKS) {
    if (check.mode && check.mode !== ctx.mode) continue;
    const verdict = await check.run(ctx);
    if (verdict) add({ id: check.id, title: check.title, ...verdict });
  }
  return { ok: checks.every((c) => c.status !== 'fail'), mode: ctx.mode, checks };
}
