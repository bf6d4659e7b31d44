import type { MetricSpec } from './lib/model.js';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import bcrypt from 'bcryptjs';
import { LoopbackProbe, measureCeilings } from './lib/ceilings.js';
import { LargeBlob, randomBuffer } from './lib/data.js';
import { disclosures } from './lib/disclosures.js';
import { machineInfo, versions } from './lib/machine.js';
import { metric } from './lib/model.js';
import type { BenchReport, Metric, PhaseResult } from './lib/model.js';
import { mergeIntoSaved } from './lib/merge.js';
import { errorText } from './lib/phase.js';
import { PEAK_SPEC, PeakLedger } from './lib/peaks.js';
import { renderMarkdown } from './lib/report.js';
import { REFERENCE_BINARY, deployedProcess, referenceConfig } from './lib/servers.js';
import { FULL, QUICK } from './lib/sizes.js';
import { runCatalogPhases, runDockerPhase, runRegistryPasses, runScalePhases, runSwarmPhase } from './passes.js';
import { runS3Phases } from './s3-pass.js';
import { runProxyPhases } from './proxy-pass.js';
import type { PassContext } from './passes.js';
import { timeCommand } from './phases/cli.js';
import type { Credentials } from './phases/context.js';
import { DOCKER_COMMANDS } from './phases/docker.js';
import { SWARM_COMMANDS } from './phases/swarm.js';
import { timeRegctlUp } from './phases/up.js';
import { makeOciLayout } from './phases/skopeo.js';

const MiB = 1024 * 1024;

const USAGE = `usage: node bench/out/build/run.js [--quick] [--only PHASES] [--no-write] [--profile] [--other-work TEXT]
  --quick        small sizes and short durations (a few minutes)
  --only         comma-separated phase ids: ceilings,large-blob,manifests,small-blobs,skopeo,repeat,catalog,scale,docker,cli,up,s3,
                 swarm,proxy (the pull-through cache: first and cached pulls)
                 (docker and up — stacks on the Docker engine —, scale — a seeded metadata store, smaller with
                 --quick —, s3 — versitygw, distribution v3, PostgreSQL — and swarm — a swarm stack on this engine's
                 swarm — are left out of --quick unless named)
  --no-write     print the report, do not write docs/benchmarks.md and docs/benchmarks.json
  --merge        with --only: put this run's phases into the committed docs/benchmarks.json (replacing phases of
                 the same id, each marked with this run's time, commit and load) and keep everything else
  --profile      run our registry under node --cpu-prof; profiles land in the run's work directory
  --other-work   what else was running on the machine, recorded in the report
  --ours-root    run our registry from another checkout or copy (its bin/regctl.js and dist/), for before/after
  --ours-node-flags FLAGS  node options for our registry instead of the deployed ones (src/registry/process-env.ts),
                 space-separated, '' for none: for before/after runs
  --render-only  measure nothing: render docs/benchmarks.md again from docs/benchmarks.json and bench/notes.md`;

const ALL_PHASES = [
  'ceilings',
  'large-blob',
  'manifests',
  'small-blobs',
  'skopeo',
  'repeat',
  'catalog',
  'scale',
  'docker',
  'cli',
  'up',
  's3',
  'swarm',
  'proxy',
];
/**
 * Left out of --quick unless named: stacks on the Docker engine, the start at scale (a seeded metadata store), and
 * S3 (a gateway, 10,000 seeded repositories).
 */
const NOT_QUICK_PHASES = ['docker', 'up', 'scale', 's3', 'swarm'];

/** The command line's options (see USAGE). */
function commandLine() {
  return parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      'no-write': { type: 'boolean', default: false },
      merge: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      'other-work': { type: 'string' },
      'ours-root': { type: 'string' },
      'ours-node-flags': { type: 'string' },
      'render-only': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  }).values;
}

/** The phases to run: those --only names, else every phase (but NOT_QUICK_PHASES with --quick); unknown ids refused. */
function selectPhases(quick: boolean, onlyOption: string | undefined): Set<string> {
  const defaultPhases = quick ? ALL_PHASES.filter((p) => !NOT_QUICK_PHASES.includes(p)) : ALL_PHASES;
  const only = new Set((onlyOption ?? defaultPhases.join(',')).split(',').map((s) => s.trim()));
  for (const id of only)
    if (!ALL_PHASES.includes(id)) throw new Error(`unknown phase "${id}"; phases: ${ALL_PHASES.join(', ')}`);
  return only;
}

/** The run's one user and random password, written as an htpasswd file per bcrypt cost. */
async function writeCredentials(workDir: string, costs: readonly number[]): Promise<Credentials> {
  const creds: Credentials = { user: 'bench', password: `bench-${randomBuffer(9).toString('base64url')}` };
  for (const cost of costs) {
    await writeFile(htpasswdPath(workDir, cost), `${creds.user}:${bcrypt.hashSync(creds.password, cost)}\n`, {
      mode: 0o600,
    });
  }
  return creds;
}

/** The summary's headline: the highest lifetime peak of each side, and where it was reached. */
function peakHeadline(ledger: PeakLedger): Metric | undefined {
  const oursTop = ledger.highest('ours');
  const refTop = ledger.highest('ref');
  if (!oursTop && !refTop) return undefined;
  const where = [oursTop ? `ours: ${oursTop.where}` : '', refTop ? `reference: ${refTop.where}` : '']
    .filter(Boolean)
    .join('; ');
  return metric(
    { ...PEAK_SPEC, note: `(highest at ${where}; every process in Lifetime peaks below)` },
    oursTop?.peakMiB,
    refTop?.peakMiB,
  );
}

async function main(): Promise<void> {
  const values = commandLine();
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const buildDir = dirname(fileURLToPath(import.meta.url));
  const repoRoot = resolve(buildDir, '../../..');
  if (values['render-only']) {
    await renderOnly(repoRoot);
    return;
  }
  const quick = values.quick ?? false;
  const only = selectPhases(quick, values.only);
  const sizes = quick ? QUICK : FULL;
  if (!existsSync(REFERENCE_BINARY))
    throw new Error(`${REFERENCE_BINARY} is missing: apt-get install -y docker-registry`);

  const started = performance.now();
  const mark = (what: string): void => {
    process.stderr.write(`bench: [${((performance.now() - started) / 1000).toFixed(1)} s] ${what}\n`);
  };
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const workDir = join(repoRoot, 'bench/out', `run-${stamp}`);
  const dataRoot = join(workDir, 'data');
  await mkdir(dataRoot, { recursive: true });
  const creds = await writeCredentials(workDir, sizes.bcryptCosts);

  const otherWork =
    values['other-work'] ??
    'not recorded (pass --other-work); the load average at start tells whether other processes were busy';
  const machine = await machineInfo(dataRoot, otherWork);
  const vers = await versions(repoRoot);
  process.stderr.write(
    `bench: ${quick ? 'quick' : 'full'} run, work dir ${workDir}, load ${machine.loadAverageAtStart.join(' ')}\n`,
  );

  const pattern = randomBuffer(sizes.chunkBytes);
  const pool = randomBuffer(sizes.smallBlobMax);
  const ceilingBlob = new LargeBlob(pattern, sizes.largeBlobBytes / sizes.chunkBytes, 'ceiling');
  const ceilings = only.has('ceilings') ? await measureCeilings({ dir: dataRoot, buildDir, blob: ceilingBlob }) : [];
  for (const c of ceilings) process.stderr.write(`   ceiling ${c.id}: ${c.value.toFixed(0)} ${c.unit}\n`);
  mark('ceilings measured');

  const oursRoot = values['ours-root'] ? resolve(values['ours-root']) : repoRoot;
  const profileDir = values.profile ? join(workDir, 'profiles') : undefined;
  const flagsOption = values['ours-node-flags'];
  const oursNodeFlags = flagsOption === undefined ? undefined : flagsOption.split(/\s+/).filter((f) => f !== '');
  const phases: PhaseResult[] = [];
  const ledger = new PeakLedger();
  const ctx: PassContext = {
    oursRoot,
    workDir,
    dataRoot,
    sizes,
    only,
    creds,
    pattern,
    pool,
    phases,
    ledger,
    htpasswdFor: (cost) => htpasswdPath(workDir, cost),
    ...(profileDir ? { profileDir } : {}),
    ...(oursNodeFlags ? { oursNodeFlags } : {}),
  };
  if (only.has('skopeo'))
    ctx.layout = await makeOciLayout(join(repoRoot, 'bench/out/cache'), sizes.skopeoLayers, sizes.skopeoBytes);
  if (only.has('large-blob')) ctx.probe = await LoopbackProbe.start(buildDir, dataRoot);
  mark('workload prepared');
  try {
    await runRegistryPasses(ctx);
  } finally {
    await ctx.probe?.stop();
  }
  mark('main registry phases done');
  const startupPeaks = only.has('catalog') ? await runCatalogPhases(ctx) : [];
  await runEnginePhases(ctx, repoRoot);

  mark('registry phases done');
  const summary: Metric[] = [];
  const serverLines = await serverCommands(oursRoot, {
    quick,
    oursNodeFlags,
    profiled: profileDir !== undefined,
    skopeo: only.has('skopeo'),
    s3: only.has('s3'),
  });
  const commands = [...serverLines, ...ceilings.map((c) => c.method)];
  const tools = await commandFigures(only, repoRoot, workDir, sizes.helpRuns);
  summary.push(...tools.metrics);
  commands.push(...tools.commands);

  const headline = peakHeadline(ledger);
  if (headline) summary.unshift(headline);
  summary.push(...startupPeaks);
  if (only.has('docker')) commands.push(...DOCKER_COMMANDS);
  if (only.has('swarm')) commands.push(...SWARM_COMMANDS);

  machine.loadAverageAtEnd = loadavg().map((v) => Math.round(v * 100) / 100);
  const report: BenchReport = {
    generatedAt: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    durationSeconds: (performance.now() - started) / 1000,
    machine,
    versions: vers,
    commands,
    settings: settingsOf(sizes),
    ceilings,
    phases,
    summary,
    lifetimePeaks: ledger.entries,
    disclosures: disclosures(sizes, { s3: only.has('s3') }),
  };
  await writeReport(report, repoRoot, workDir, { noWrite: values['no-write'] ?? false, merge: values.merge ?? false });
  mark('removing the data directories');
  await rm(dataRoot, { recursive: true, force: true });
  process.exitCode = outcome(phases, summary);
}

/** The phases after the registry passes that each bring up their own servers, stacks or peers, when selected. */
async function runEnginePhases(ctx: PassContext, repoRoot: string): Promise<void> {
  if (ctx.only.has('scale')) await runScalePhases(ctx);
  if (ctx.only.has('docker')) await runDockerPhase(ctx, repoRoot);
  if (ctx.only.has('s3')) await runS3Phases(ctx);
  if (ctx.only.has('swarm')) await runSwarmPhase(ctx, repoRoot);
  if (ctx.only.has('proxy')) await runProxyPhases(ctx);
}

/** `regctl --help` and `regctl up`, each when selected: figures of ours alone. */
async function commandFigures(
  only: Set<string>,
  repoRoot: string,
  workDir: string,
  helpRuns: number,
): Promise<{ metrics: Metric[]; commands: string[] }> {
  const metrics: Metric[] = [];
  const commands: string[] = [];
  if (only.has('cli')) {
    process.stderr.write('\n== regctl --help\n');
    const helpSpec: MetricSpec = {
      id: 'cli.help.ms',
      label: '`regctl --help`, median wall time',
      unit: 'ms',
      better: 'lower',
      targets: [{ kind: 'max', value: 200 }],
    };
    try {
      const t = await timeCommand([process.execPath, join(repoRoot, 'bin/regctl.js'), '--help'], helpRuns, workDir);
      metrics.push(metric(helpSpec, t.medianMs, undefined));
      commands.push(t.tool);
      process.stderr.write(`   median ${t.medianMs.toFixed(1)} ms (${t.tool})\n`);
    } catch (err) {
      metrics.push(metric({ ...helpSpec, note: `failed: ${errorText(err)}` }, undefined, undefined));
    }
  }
  if (only.has('up')) {
    process.stderr.write('\n== regctl up\n');
    const upSpec = {
      id: 'cli.up.seconds',
      label: '`regctl up` to healthy, images already built (dev stack, registry + UI + Traefik)',
      unit: 's',
      better: 'lower' as const,
      targets: [{ kind: 'max' as const, value: 20 }],
    };
    try {
      const t = await timeRegctlUp(repoRoot, join(workDir, 'up'));
      metrics.push(metric(upSpec, t.upSeconds, undefined));
      metrics.push(
        metric(
          {
            id: 'cli.up.first.seconds',
            label: 'First `regctl up` of the same stack (builds its image)',
            unit: 's',
            better: 'lower',
          },
          t.firstUpSeconds,
          undefined,
        ),
      );
      commands.push(...t.commands);
      process.stderr.write(
        `   up ${t.upSeconds.toFixed(1)} s (first, with the image build: ${t.firstUpSeconds.toFixed(1)} s)\n`,
      );
    } catch (err) {
      metrics.push(metric({ ...upSpec, note: `not measured: ${errorText(err)}` }, undefined, undefined));
      process.stderr.write(`   FAILED ${errorText(err)}\n`);
    }
  } else {
    metrics.push(
      metric(
        {
          id: 'cli.up.seconds',
          label: '`regctl up` to healthy, images already built',
          unit: 's',
          better: 'lower',
          targets: [{ kind: 'max', value: 20 }],
          note: 'not measured in this run (phase `up` not selected; --quick leaves it out)',
        },
        undefined,
        undefined,
      ),
    );
  }

  return { metrics, commands };
}

/** The workload's settings, as the report lists them. */
function settingsOf(sizes: typeof FULL): BenchReport['settings'] {
  return {
    bcryptCosts: `${sizes.bcryptCosts.join(' (headline: targets), then ')} (auth-bound phases again)`,
    credentials: 'one htpasswd user, the same file for both registries, Basic auth on every request',
    largeBlobMiB: sizes.largeBlobBytes / MiB,
    chunkMiB: sizes.chunkBytes / MiB,
    manifestSeconds: sizes.manifestSeconds,
    concurrencies: sizes.concurrencies.join('/'),
    smallBlobs: sizes.smallBlobCount,
    catalogCounts: sizes.catalogCounts.join('/'),
    tags: sizes.tagCount,
    pageSize: sizes.pageSize,
    scale: `${sizes.scaleRepositories} repositories × ${sizes.scaleTagsPerRepository} tags in the metadata store, ${sizes.scaleStorageSample} of them in storage, ${sizes.scaleTries} tries per page`,
    skopeo: `${sizes.skopeoLayers} layers, ${sizes.skopeoBytes / MiB} MiB`,
    dataDir: 'bench/out/run-*/data (same filesystem for both registries)',
    referenceConfig: referenceConfig('DIR', 'HTPASSWD', 0)
      .replace(/\n/g, ' ⏎ ')
      .replace('127.0.0.1:0', '127.0.0.1:PORT'),
  };
}

/**
 * Says which targets were missed and which phase runs failed; the exit code is 1 when any phase run failed (a
 * failed check: wrong status, digest, byte count, a lost blob), whatever the figures.
 */
export function outcome(phases: PhaseResult[], summary: Metric[]): number {
  const misses = [...phases.flatMap((p) => p.metrics), ...summary].filter((m) => m.verdict === 'miss');
  const failures = phases.flatMap((p) => Object.entries(p.errors).map(([n, e]) => `${p.id}/${n}: ${e ?? ''}`));
  process.stderr.write(
    `bench: ${misses.length} target(s) missed${misses.length ? `: ${misses.map((m) => m.id).join(', ')}` : ''}\n`,
  );
  if (failures.length === 0) return 0;
  process.stderr.write(`bench: ${failures.length} failed phase run(s):\n  ${failures.join('\n  ')}\n`);
  return 1;
}

/** How each server and client ran, for the report (PORT, DIR and the like stand for per-run values). */
async function serverCommands(
  oursRoot: string,
  o: { quick: boolean; oursNodeFlags: string[] | undefined; profiled: boolean; skopeo: boolean; s3: boolean },
): Promise<string[]> {
  const { quick, oursNodeFlags } = o;
  const profileDir = o.profiled;
  const deployed = await deployedProcess(oursRoot);
  const oursFlags = oursNodeFlags ?? deployed.nodeFlags;
  const oursS3Flags = oursNodeFlags ?? (await deployedProcess(oursRoot, true)).nodeFlags;
  return [
    `npm run bench${quick ? ' -- --quick' : ''}   # = npm run build && tsc -p bench/tsconfig.json && node bench/out/build/run.js`,
    `${Object.entries(deployed.env)
      .map(([k, v]) => `${k}=${v} `)
      .join(
        '',
      )}node ${oursFlags.map((f) => `${f} `).join('')}bin/regctl.js serve --listen 127.0.0.1:PORT --data DIR --htpasswd FILE --log-level error [--no-credential-cache]   # ${oursNodeFlags ? 'node options from --ours-node-flags; ' : ''}the registry container's environment${oursNodeFlags ? '' : ' and node options'} (src/registry/process-env.ts)${profileDir ? '; under node --cpu-prof' : ''}`,
    `/usr/bin/docker-registry serve CONFIG.yml   # CONFIG: see referenceConfig in the settings above`,
    ...(o.skopeo
      ? [
          `skopeo copy --quiet --preserve-digests --dest-tls-verify=false --dest-creds bench:PASS oci:LAYOUT:bench docker://127.0.0.1:PORT/bench/skopeo:bench`,
          `skopeo copy --quiet --preserve-digests --src-tls-verify=false --src-creds bench:PASS docker://127.0.0.1:PORT/bench/skopeo:bench oci:OUT:bench`,
        ]
      : []),
    ...(o.s3
      ? [
          `AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… node ${oursS3Flags.map((f) => `${f} `).join('')}bin/regctl.js serve --listen 127.0.0.1:PORT --storage s3://BUCKET/bench --s3-endpoint http://127.0.0.1:PORT --s3-path-style --s3-region us-east-1 --no-auth --log-level error [--metadata postgres://USER@127.0.0.1:PORT/DB, password in REGCTL_METADATA_PASSWORD]   # S3 phases`,
          `REGISTRY_STORAGE_S3_ACCESSKEY=… REGISTRY_STORAGE_S3_SECRETKEY=… /var/cache/regctl-test/bin/registry-v3 serve CONFIG.yml   # S3 phase; CONFIG: referenceS3Config in bench/lib/servers.ts`,
          `ROOT_ACCESS_KEY_ID=… ROOT_SECRET_ACCESS_KEY=… /var/cache/regctl-test/bin/versitygw --port 127.0.0.1:PORT --quiet posix DIR   # the S3 gateway of both`,
        ]
      : []),
  ];
}

/** docs/benchmarks.md rendered again from docs/benchmarks.json and bench/notes.md. */
async function renderOnly(repoRoot: string): Promise<void> {
  const saved = JSON.parse(await readFile(join(repoRoot, 'docs/benchmarks.json'), 'utf8')) as BenchReport;
  const savedNotes = await readFile(join(repoRoot, 'bench/notes.md'), 'utf8').catch(() => '');
  await writeFile(join(repoRoot, 'docs/benchmarks.md'), renderMarkdown(saved, savedNotes));
  process.stderr.write('bench: rendered docs/benchmarks.md from docs/benchmarks.json\n');
}

/** docs/benchmarks.md and .json (or the Markdown on stdout with `noWrite`), and report.json in the work dir. */
async function writeReport(
  run: BenchReport,
  repoRoot: string,
  workDir: string,
  opts: { noWrite: boolean; merge: boolean },
): Promise<void> {
  const { noWrite } = opts;
  const report = opts.merge ? await mergeIntoSaved(run, repoRoot) : run;
  const notes = await readFile(join(repoRoot, 'bench/notes.md'), 'utf8').catch(() => '');
  const markdown = renderMarkdown(report, notes);
  if (noWrite) {
    process.stdout.write(markdown);
  } else {
    await writeFile(join(repoRoot, 'docs/benchmarks.json'), `${JSON.stringify(report, null, 2)}\n`);
    await writeFile(join(repoRoot, 'docs/benchmarks.md'), markdown);
    process.stderr.write(
      `\nbench: wrote docs/benchmarks.md and docs/benchmarks.json (${Math.round(report.durationSeconds)} s)\n`,
    );
  }
  await writeFile(join(workDir, 'report.json'), JSON.stringify(run, null, 2));
}

function htpasswdPath(workDir: string, cost: number): string {
  return join(workDir, `htpasswd-cost${cost}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
