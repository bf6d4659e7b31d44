import { performance } from 'node:perf_hooks';
import { metric } from './model.js';
import type { MetricSpec, PhaseResult, ResourceUse } from './model.js';
import type { ProcSample } from './proc.js';
import type { RegistryName, RunningServer } from './servers.js';

const MiB = 1024 * 1024;

export type Figures = Record<string, number>;

/** One step of a phase, run once per registry before the next step starts. */
export type Step = (server: RunningServer) => Promise<Figures>;

export interface PhaseSpec {
  id: string;
  title: string;
  description: string;
  steps: Step[];
  metrics: MetricSpec[];
}

/** Even phases run ours first, odd phases the reference first, so neither always gets the warmer machine. */
export function orderFor(index: number): RegistryName[] {
  return index % 2 === 0 ? ['ours', 'ref'] : ['ref', 'ours'];
}

export function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/**
 * Runs a phase on both registries, alternating them step by step, and records each one's figures, peak RSS
 * (VmHWM reset at the phase start), CPU seconds and wall time. A registry whose step fails keeps its error and
 * skips the remaining steps; the other goes on.
 */
export async function runPhase(
  spec: PhaseSpec,
  index: number,
  servers: Partial<Record<RegistryName, RunningServer>>,
  missing: Partial<Record<RegistryName, string>> = {},
): Promise<PhaseResult> {
  const order = orderFor(index);
  const figures: Partial<Record<RegistryName, Figures>> = {};
  const errors: Partial<Record<RegistryName, string>> = { ...missing };
  const before: Partial<Record<RegistryName, ProcSample>> = {};
  const wall: Partial<Record<RegistryName, number>> = {};
  for (const name of order) {
    const server = servers[name];
    if (!server) continue;
    await server.resetPeak();
    before[name] = await server.sample();
    figures[name] = {};
    wall[name] = 0;
  }
  process.stderr.write(`\n== ${spec.title}\n`);
  for (const step of spec.steps) {
    for (const name of order) {
      const server = servers[name];
      if (!server || errors[name] !== undefined) continue;
      const t0 = performance.now();
      try {
        const got = await step(server);
        Object.assign(figures[name] ?? {}, got);
        if (Object.keys(got).length > 0) process.stderr.write(`   ${name.padEnd(4)} ${formatFigures(got)}\n`);
      } catch (err) {
        errors[name] = errorText(err);
        process.stderr.write(`   ${name.padEnd(4)} FAILED ${errors[name]}\n`);
      }
      wall[name] = (wall[name] ?? 0) + (performance.now() - t0) / 1000;
    }
  }
  const resources: Partial<Record<RegistryName, ResourceUse>> = {};
  for (const name of order) {
    const server = servers[name];
    const start = before[name];
    if (!server || !start) continue;
    try {
      const end = await server.sample();
      resources[name] = {
        peakRssMiB: end.peakRssBytes / MiB,
        endRssMiB: end.rssBytes / MiB,
        cpuSeconds: end.cpuSeconds - start.cpuSeconds,
        wallSeconds: wall[name] ?? 0,
      };
    } catch {
      // the process is gone; its error says why
    }
  }
  const pick = (name: RegistryName, id: string): number | undefined =>
    errors[name] === undefined ? figures[name]?.[id] : undefined;
  return {
    id: spec.id,
    title: spec.title,
    description: spec.description,
    order,
    metrics: spec.metrics.map((m) => metric(m, pick('ours', m.id), pick('ref', m.id))),
    resources,
    errors,
  };
}

function formatFigures(f: Figures): string {
  return Object.entries(f)
    .map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toFixed(2)}`)
    .join(' ');
}

/**
 * The same phase run under other conditions (another bcrypt cost, our credential cache off): its id suffixed (if
 * `idSuffix` is not empty),
 * the conditions named in its title (before the first ':', which the targets table shows), its targets dropped
 * unless `keepTargets`.
 */
export function variant(
  spec: PhaseSpec,
  v: { idSuffix: string; conditions: string; note?: string; keepTargets: boolean },
): PhaseSpec {
  const colon = spec.title.indexOf(':');
  const title =
    colon < 0
      ? `${spec.title} (${v.conditions})`
      : `${spec.title.slice(0, colon)} (${v.conditions})${spec.title.slice(colon)}`;
  return {
    ...spec,
    id: v.idSuffix ? `${spec.id}-${v.idSuffix}` : spec.id,
    title,
    description: v.note ? `${spec.description} ${v.note}` : spec.description,
    metrics: v.keepTargets ? spec.metrics : spec.metrics.map(({ targets: _targets, ...m }) => m),
  };
}

/**
 * A phase run on ours alone, given the reference's figures from `from` (the same workload run on the
 * reference in the same pass), so the ratios read as for the other phases.
 */
export function withReferenceOf(result: PhaseResult, from: PhaseResult, specs: MetricSpec[]): PhaseResult {
  const refOf = new Map(from.metrics.map((m) => [m.id, m.ref]));
  const resources = { ...result.resources, ...(from.resources.ref ? { ref: from.resources.ref } : {}) };
  const errors = { ...result.errors };
  delete errors.ref;
  if (from.errors.ref !== undefined) errors.ref = from.errors.ref;
  return {
    ...result,
    order: result.order.filter((n) => n === 'ours'),
    metrics: specs.map((m) =>
      metric(
        m,
        errors.ours === undefined ? result.metrics.find((x) => x.id === m.id)?.ours : undefined,
        refOf.get(m.id),
      ),
    ),
    resources,
    errors,
  };
}
