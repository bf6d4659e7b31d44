import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BenchReport, SeparateRun } from './model.js';
import type { LifetimePeak } from './peaks.js';

/**
 * `--merge`: the committed report with this run's phases in it. Each carries this run's time, commit and load, so
 * that the rendered page says which figures come from which run; the rest of the saved report is kept as it is.
 */
export async function mergeIntoSaved(report: BenchReport, repoRoot: string): Promise<BenchReport> {
  const saved = JSON.parse(await readFile(join(repoRoot, 'docs/benchmarks.json'), 'utf8')) as BenchReport;
  const run: SeparateRun = {
    generatedAt: report.generatedAt,
    mode: report.mode,
    gitCommit: report.versions.gitCommit,
    loadAverageAtStart: report.machine.loadAverageAtStart,
    loadAverageAtEnd: report.machine.loadAverageAtEnd ?? [],
    otherWork: report.machine.otherWork,
  };
  const phases = [...saved.phases];
  for (const phase of report.phases) {
    const at = phases.findIndex((p) => p.id === phase.id);
    const marked = { ...phase, run };
    if (at >= 0) phases[at] = marked;
    else phases.push(marked);
  }
  const commands = [...saved.commands, ...report.commands.filter((c) => !saved.commands.includes(c))];
  return {
    ...saved,
    phases,
    commands,
    lifetimePeaks: mergePeaks(saved.lifetimePeaks ?? [], report.lifetimePeaks ?? []),
  };
}

/** The saved lifetime peaks, each process this run started again replacing its row (same side, configuration, work). */
function mergePeaks(saved: LifetimePeak[], run: LifetimePeak[]): LifetimePeak[] {
  const key = (p: LifetimePeak): string => JSON.stringify([p.server, p.config, p.where]);
  const fresh = new Map(run.map((p) => [key(p), p]));
  const kept = saved.map((p) => fresh.get(key(p)) ?? p);
  const known = new Set(saved.map(key));
  return [...kept, ...run.filter((p) => !known.has(key(p)))];
}
