import type { BenchReport, Metric, PhaseResult } from './model.js';

/** Renders docs/benchmarks.md from a report; `notes` (hand-written findings) is appended as is. */

export function formatNumber(value: number | undefined, unit = ''): string {
  if (value === undefined || !Number.isFinite(value)) return '—';
  if (unit === 'bool') return value >= 1 ? 'yes' : 'no';
  const abs = Math.abs(value);
  const digits = Number.isInteger(value) || abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function formatRatio(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '—';
  return `${value >= 10 ? value.toFixed(1) : value.toFixed(2)}×`;
}

function verdictText(m: Metric): string {
  if (m.targets.length === 0) return '';
  if (m.verdict === 'pass') return '**pass**';
  if (m.verdict === 'miss') return '**MISS**';
  return 'n/a';
}

const escape = (s: string): string => s.replace(/\|/g, '\\|');

/** A table of metrics; `phaseNames`, parallel to `metrics`, adds a first column naming each one's phase. */
export function metricTable(metrics: Metric[], phaseNames?: string[]): string {
  const head = phaseNames
    ? '| Phase | Metric | Unit | ours | reference | ours/ref | Target | Result |\n|---|---|---|--:|--:|--:|---|---|'
    : '| Metric | Unit | ours | reference | ours/ref | Target | Result |\n|---|---|--:|--:|--:|---|---|';
  const rows = metrics.map((m, i) => {
    const cells = [
      escape(m.label),
      m.unit,
      formatNumber(m.ours, m.unit),
      formatNumber(m.ref, m.unit),
      m.unit === 'bool' ? '' : formatRatio(m.ratio),
      m.evaluations.map((e) => e.text).join('; '),
      verdictText(m) + (m.note ? ` ${escape(m.note)}` : ''),
    ];
    if (phaseNames) cells.unshift(escape(phaseNames[i] ?? ''));
    return `| ${cells.join(' | ')} |`;
  });
  return [head, ...rows].join('\n');
}

function resourceTable(phase: PhaseResult): string {
  const rows = (['ours', 'ref'] as const).map((name) => {
    const r = phase.resources[name];
    const label = name === 'ours' ? 'ours' : 'reference';
    if (!r) return `| ${label} | — | — | — | — |`;
    return `| ${label} | ${formatNumber(r.peakRssMiB)} | ${formatNumber(r.endRssMiB)} | ${formatNumber(r.cpuSeconds)} | ${formatNumber(r.wallSeconds)} |`;
  });
  return [
    '| Server | peak RSS (VmHWM), MiB | RSS at end, MiB | CPU s (user+sys) | wall s |',
    '|---|--:|--:|--:|--:|',
    ...rows,
  ].join('\n');
}

function phaseSection(phase: PhaseResult): string {
  const order = phase.order.map((n) => (n === 'ours' ? 'ours' : 'reference')).join(' then ');
  const errors = Object.entries(phase.errors)
    .map(([name, text]) => `- **${name === 'ours' ? 'ours' : 'reference'} failed:** \`${escape(text ?? '')}\``)
    .join('\n');
  const run = phase.run;
  const separate = run
    ? [
        `Measured in a separate \`--merge\` run (${run.mode}) on ${run.generatedAt}, commit ${run.gitCommit}, load ` +
          `average ${run.loadAverageAtStart.join(', ')} at its start and ${run.loadAverageAtEnd.join(', ')} at its ` +
          `end; other work: ${run.otherWork}.`,
        '',
      ]
    : [];
  return [
    `### ${phase.title}`,
    '',
    ...separate,
    phase.description,
    '',
    `Order: ${order}.`,
    '',
    metricTable(phase.metrics),
    '',
    resourceTable(phase),
    ...(errors ? ['', errors] : []),
    '',
  ].join('\n');
}

/** Every registry process the run started and its peak resident set over its whole life. */
function lifetimeTable(report: BenchReport): string[] {
  const rows = report.lifetimePeaks ?? [];
  if (rows.length === 0) return [];
  return [
    '## Lifetime peaks',
    '',
    'VmHWM of each registry process from its start to its stop (start-up included, never reset: the highest value ' +
      'read before each per-phase reset and at the stop). The target row above uses the highest of ours as deployed.' +
      (report.phases.some((p) => p.run)
        ? " The processes of a phase measured in a separate `--merge` run are that run's, each in place of the " +
          'same process of the run before it.'
        : ''),
    '',
    '| Server | Configuration | What it ran | peak RSS, MiB |',
    '|---|---|---|--:|',
    ...rows.map(
      (r) =>
        `| ${r.server === 'ours' ? 'ours' : 'reference'} | ${escape(r.config)} | ${escape(r.where)} | ${formatNumber(r.peakMiB)} |`,
    ),
    '',
  ];
}

/** The auth-bound throughputs with our credential cache off, beside the reference (which has none). */
function cacheOffTable(report: BenchReport): string[] {
  const phases = report.phases.filter((p) => p.id.includes('nocache'));
  const rows = phases.flatMap((p) =>
    p.metrics
      .filter((m) => m.id.endsWith('.rps') || m.id === 'smallSeconds')
      .map((metric) => ({ metric, phase: p.title.split(':')[0] ?? p.id })),
  );
  if (rows.length === 0) return [];
  return [
    '## With our credential cache off',
    '',
    'The same auth-bound rows with ours started with `--no-credential-cache`, so that both registries run bcrypt on ' +
      "every request; the reference's figures are those of the same pass. No targets: these rows say how much of " +
      'each ratio above the cache accounts for.',
    '',
    metricTable(
      rows.map((r) => r.metric),
      rows.map((r) => r.phase),
    ),
    '',
  ];
}

export function renderMarkdown(report: BenchReport, notes: string): string {
  const m = report.machine;
  const v = report.versions;
  const targeted = report.phases.flatMap((p) =>
    p.metrics.filter((x) => x.targets.length > 0).map((metric) => ({ metric, phase: p.title.split(':')[0] ?? p.id })),
  );
  const targetMetrics = [...targeted.map((t) => t.metric), ...report.summary];
  const targetPhases = [...targeted.map((t) => t.phase), ...report.summary.map(() => 'whole run')];
  const lines = [
    '# Benchmarks: `regctl serve` and the reference registry side by side',
    '',
    `Generated by \`npm run bench${report.mode === 'quick' ? ' -- --quick' : ''}\` on ${report.generatedAt} ` +
      `(${report.mode} run, ${Math.round(report.durationSeconds)} s). "reference" is Debian's \`docker-registry\` ` +
      `${v.dockerRegistry} (distribution, the registry:2 line). The ratio column is always ours / reference: above ` +
      '1 is better for throughputs, below 1 is better for times and latencies. Every figure comes from one run; ' +
      'the two registries ran the same workload, alternating phase by phase (manifest cells alternate cell by cell)' +
      (report.phases.some((p) => p.run)
        ? `, except the phases marked as measured in a separate run (${report.phases
            .filter((p) => p.run)
            .map((p) => p.id)
            .join(', ')}), each of which says when and on what. `
        : '. ') +
      '**Ours caches verified credentials (bcrypt once per credential); the reference runs bcrypt on every request**: ' +
      'the ratios of auth-bound rows carry that' +
      (report.disclosures
        ? '; "With our credential cache off" below gives them without it, and "What each side has ' +
          'in its favour" lists every such advantage.'
        : '.'),
    '',
    '## Machine',
    '',
    '| | |',
    '|---|---|',
    `| CPU | ${m.cpuModel}, ${m.cores} cores |`,
    `| Memory | ${m.memoryGiB} GiB |`,
    `| Kernel | ${m.kernel} |`,
    `| Disk (data dirs) | ${m.disk} |`,
    `| Load average at start (1, 5, 15 min) | ${m.loadAverageAtStart.join(', ')} |`,
    `| Load average at end | ${m.loadAverageAtEnd?.join(', ') ?? '—'} |`,
    `| Other work on the machine | ${m.otherWork} |`,
    '',
    '## Versions',
    '',
    '| | |',
    '|---|---|',
    `| node | ${v.node} |`,
    `| regctl (this package) | ${v.regctl} (commit ${v.gitCommit}) |`,
    `| docker-registry | ${v.dockerRegistry} |`,
    `| skopeo | ${v.skopeo} |`,
    `| fio | ${v.fio ?? 'not installed (dd used)'} |`,
    `| hyperfine | ${v.hyperfine ?? 'not installed (timed loop used)'} |`,
    '',
    '## How it was run',
    '',
    'Settings: ' +
      Object.entries(report.settings)
        .map(([k, val]) => `${k} = ${String(val)}`)
        .join('; ') +
      '.',
    '',
    '```sh',
    ...report.commands,
    '```',
    '',
    '## Targets',
    '',
    'Ours caches verified credentials and the reference does not: the ratios of auth-bound rows (manifests, small ' +
      'blobs, chunked push, catalog, skopeo, docker) include that' +
      (report.phases.some((p) => p.id.includes('nocache')) ? '; see the next two sections.' : '.'),
    '',
    metricTable(targetMetrics, targetPhases),
    '',
    ...cacheOffTable(report),
    ...(report.disclosures && report.disclosures.length > 0
      ? ['## What each side has in its favour', '', ...report.disclosures.map((d) => `- ${d}`), '']
      : []),
    ...lifetimeTable(report),
    '## Ceilings of this machine',
    '',
    '| Ceiling | MB/s | How |',
    '|---|--:|---|',
    ...report.ceilings.map((c) => `| ${c.label} | ${formatNumber(c.value)} | \`${escape(c.method)}\` |`),
    '',
    '## Phases',
    '',
    ...report.phases.map(phaseSection),
  ];
  if (notes.trim()) lines.push(notes.trim(), '');
  return lines.join('\n');
}
