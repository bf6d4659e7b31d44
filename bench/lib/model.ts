import { evaluateTarget, ratio } from './stats.js';
import type { Evaluation, Target, Verdict } from './stats.js';
import type { LifetimePeak } from './peaks.js';
import type { RegistryName } from './servers.js';

/** The shape of docs/benchmarks.json: what every phase measured, for both registries. */

export interface Metric {
  id: string;
  label: string;
  unit: string;
  /** Which direction is better, for a reader of the ratio (always ours / reference). */
  better: 'higher' | 'lower';
  ours?: number;
  ref?: number;
  ratio?: number;
  targets: Target[];
  evaluations: Evaluation[];
  verdict: Verdict;
  note?: string;
}

export interface ResourceUse {
  /** VmHWM over the phase (reset at its start), MiB. */
  peakRssMiB: number;
  /** VmRSS at the end of the phase, MiB. */
  endRssMiB: number;
  /** utime + stime spent in the phase, seconds. */
  cpuSeconds: number;
  wallSeconds: number;
}

export interface PhaseResult {
  id: string;
  title: string;
  description: string;
  /** The order the registries ran in (alternated from phase to phase). */
  order: RegistryName[];
  metrics: Metric[];
  resources: Partial<Record<RegistryName, ResourceUse>>;
  errors: Partial<Record<RegistryName, string>>;
  /** Set when the phase was measured by a later `--merge` run than the rest of the report. */
  run?: SeparateRun;
}

/** The run a merged phase comes from: when, on which commit, and how busy the machine was. */
export interface SeparateRun {
  generatedAt: string;
  mode: 'quick' | 'full';
  gitCommit: string;
  loadAverageAtStart: number[];
  loadAverageAtEnd: number[];
  otherWork: string;
}

export interface MetricSpec {
  id: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  targets?: Target[];
  note?: string;
}

/** Combines our and the reference's figure with the targets into a reported metric. */
export function metric(spec: MetricSpec, ours: number | undefined, ref: number | undefined): Metric {
  const targets = spec.targets ?? [];
  const evaluations = targets.map((t) => evaluateTarget(t, ours, ref));
  const verdicts = evaluations.map((e) => e.verdict);
  const verdict: Verdict =
    verdicts.length === 0 ? 'n/a' : verdicts.includes('miss') ? 'miss' : verdicts.includes('n/a') ? 'n/a' : 'pass';
  const r = ratio(ours, ref);
  return {
    id: spec.id,
    label: spec.label,
    unit: spec.unit,
    better: spec.better,
    ...(ours !== undefined ? { ours } : {}),
    ...(ref !== undefined ? { ref } : {}),
    ...(Number.isFinite(r) ? { ratio: r } : {}),
    targets,
    evaluations,
    verdict,
    ...(spec.note ? { note: spec.note } : {}),
  };
}

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  disk: string;
  loadAverageAtStart: number[];
  loadAverageAtEnd?: number[];
  otherWork: string;
}

export interface Versions {
  node: string;
  regctl: string;
  gitCommit: string;
  dockerRegistry: string;
  skopeo: string;
  fio?: string;
  hyperfine?: string;
}

export interface Ceiling {
  id: string;
  label: string;
  unit: string;
  value: number;
  method: string;
}

export interface BenchReport {
  generatedAt: string;
  mode: 'quick' | 'full';
  durationSeconds: number;
  machine: MachineInfo;
  versions: Versions;
  commands: string[];
  settings: Record<string, string | number | boolean>;
  ceilings: Ceiling[];
  phases: PhaseResult[];
  summary: Metric[];
  /** Every registry process the run started, with its peak resident set over its whole life. */
  lifetimePeaks?: LifetimePeak[];
  /** What one side has in its favour in this comparison, said beside the figures. */
  disclosures?: string[];
}
