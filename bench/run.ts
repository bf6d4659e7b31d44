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
import { machineInfo, versions } from './lib/machine.js';
import { metric } from './lib/model.js';
import type { BenchReport, Metric, PhaseResult } from './lib/model.js';
import { errorText, runPhase } from './lib/phase.js';
import type { PhaseSpec } from './lib/phase.js';
import { renderMarkdown } from './lib/report.js';
import { REFERENCE_BINARY, deployedProcess, referenceConfig, startOurs, startReference } from './lib/servers.js';
import type { RegistryName, RunningServer, ServerSettings } from './lib/servers.js';
import { FULL, QUICK } from './lib/sizes.js';
import { timed } from './lib/load.js';
import { largeBlobPhase, smallBlobPhase } from './phases/blobs.js';
import { catalogPhase, seedVolume } from './phases/catalog.js';
import { timeCommand } from './phases/cli.js';
import type { Credentials } from './phases/context.js';
import { manifestPhase } from './phases/manifests.js';
import { repeatPhase } from './phases/repeat.js';
import { timeRegctlUp } from './phases/up.js';
import { makeOciLayout, skopeoPhase } from './phases/skopeo.js';
import type { OciLayout } from './phases/skopeo.js';

const MiB = 1024 * 1024;
const BCRYPT_COST = 10;

const USAGE = `usage: node bench/out/build/run.js [--quick] [--only PHASES] [--no-write] [--profile] [--other-work TEXT]
  --quick        small sizes and short durations (well under 2 minutes)
  --only         comma-separated phase ids: ceilings,large-blob,manifests,small-blobs,skopeo,repeat,catalog,cli,up
                 (up — regctl up of a real stack on the Docker engine — is left out of --quick unless named)
  --no-write     print the report, do not write docs/benchmarks.md and docs/benchmarks.json
  --profile      run our registry under node --cpu-prof; profiles land in the run's work directory
  --other-work   what else was running on the machine, recorded in the report
  --ours-root    run our registry from another checkout or copy (its bin/regctl.js and dist/), for before/after
  --ours-node-flags FLAGS  node options for our registry instead of the deployed ones (src/registry/process-env.ts),
                 space-separated, '' for none: for before/after runs
  --render-only  measure nothing: render docs/benchmarks.md again from docs/benchmarks.json and bench/notes.md`;

const ALL_PHASES = ['ceilings', 'large-blob', 'manifests', 'small-blobs', 'skopeo', 'repeat', 'catalog', 'cli', 'up'];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      'no-write': { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      'other-work': { type: 'string' },
      'ours-root': { type: 'string' },
      'ours-node-flags': { type: 'string' },
      'render-only': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const buildDir = dirname(fileURLToPath(import.meta.url));
  const repoRoot = resolve(buildDir, '../../..');
  if (values['render-only']) {
    const saved = JSON.parse(await readFile(join(repoRoot, 'docs/benchmarks.json'), 'utf8')) as BenchReport;
    const savedNotes = await readFile(join(repoRoot, 'bench/notes.md'), 'utf8').catch(() => '');
    await writeFile(join(repoRoot, 'docs/benchmarks.md'), renderMarkdown(saved, savedNotes));
    process.stderr.write('bench: rendered docs/benchmarks.md from docs/benchmarks.json\n');
    return;
  }
  const quick = values.quick ?? false;
  const defaultPhases = quick ? ALL_PHASES.filter((p) => p !== 'up') : ALL_PHASES;
  const only = new Set((values.only ?? defaultPhases.join(',')).split(',').map((s) => s.trim()));
  for (const id of only) if (!ALL_PHASES.includes(id)) throw new Error(`unknown phase "${id}"; phases: ${ALL_PHASES.join(', ')}`);
  const sizes = quick ? QUICK : FULL;
  if (!existsSync(REFERENCE_BINARY)) throw new Error(`${REFERENCE_BINARY} is missing: apt-get install -y docker-registry`);

  const started = performance.now();
  const mark = (what: string): void => {
    process.stderr.write(`bench: [${((performance.now() - started) / 1000).toFixed(1)} s] ${what}\n`);
  };
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const workDir = join(repoRoot, 'bench/out', `run-${stamp}`);
  const dataRoot = join(workDir, 'data');
  await mkdir(dataRoot, { recursive: true });
  const creds: Credentials = { user: 'bench', password: `bench-${randomBuffer(9).toString('base64url')}` };
  const htpasswdFile = join(workDir, 'htpasswd');
  await writeFile(htpasswdFile, `${creds.user}:${bcrypt.hashSync(creds.password, BCRYPT_COST)}\n`, { mode: 0o600 });

  const otherWork =
    values['other-work'] ?? 'not recorded (pass --other-work); the load average at start tells whether other processes were busy';
  const machine = await machineInfo(dataRoot, otherWork);
  const vers = await versions(repoRoot);
  process.stderr.write(`bench: ${quick ? 'quick' : 'full'} run, work dir ${workDir}, load ${machine.loadAverageAtStart.join(' ')}\n`);

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
  const settingsFor = (name: RegistryName, dir: string): ServerSettings => ({
    dataDir: dir,
    htpasswdFile,
    workDir,
    ...(name === 'ours' && profileDir ? { profileDir } : {}),
    ...(name === 'ours' && oursNodeFlags ? { nodeFlags: oursNodeFlags } : {}),
  });
  const start = async (name: RegistryName, dir: string): Promise<RunningServer> =>
    name === 'ours' ? startOurs(oursRoot, settingsFor(name, dir)) : startReference(settingsFor(name, dir));

  const phases: PhaseResult[] = [];
  const servers: Partial<Record<RegistryName, RunningServer>> = {};
  const missing: Partial<Record<RegistryName, string>> = {};
  const mainPhases: PhaseSpec[] = [];
  let layout: OciLayout | undefined;
  let probe: LoopbackProbe | undefined;
  if (only.has('large-blob')) {
    probe = await LoopbackProbe.start(buildDir, dataRoot);
    mainPhases.push(largeBlobPhase(sizes, creds, pattern, () => probe));
  }
  if (only.has('manifests')) mainPhases.push(manifestPhase(sizes, creds));
  if (only.has('small-blobs')) mainPhases.push(smallBlobPhase(sizes, creds, pool));
  if (only.has('skopeo')) {
    layout = await makeOciLayout(join(repoRoot, 'bench/out/cache'), sizes.skopeoLayers, sizes.skopeoBytes);
    const l = layout;
    mainPhases.push(skopeoPhase(sizes, creds, () => l, workDir));
  }
  if (only.has('repeat')) mainPhases.push(repeatPhase(sizes, creds, pool));

  mark('workload prepared');
  if (mainPhases.length > 0) {
    for (const name of ['ours', 'ref'] as const) {
      try {
        servers[name] = await start(name, join(dataRoot, `main-${name}`));
        mark(`${name} started (pid ${servers[name]?.pid ?? '?'})`);
      } catch (err) {
        missing[name] = `could not start: ${errorText(err)}`;
        process.stderr.write(`bench: ${name} ${missing[name]}\n`);
      }
    }
    try {
      for (const spec of mainPhases) phases.push(await runPhase(spec, phases.length, servers, missing));
    } finally {
      for (const s of Object.values(servers)) await s.stop();
      await probe?.stop();
    }
    await rm(join(dataRoot, 'main-ours'), { recursive: true, force: true });
    await rm(join(dataRoot, 'main-ref'), { recursive: true, force: true });
  }

  if (only.has('catalog')) {
    const volume = join(dataRoot, 'catalog');
    let written = 0;
    for (const count of sizes.catalogCounts) {
      process.stderr.write(`\nbench: writing a volume with ${count} repositories\n`);
      await seedVolume(volume, count, sizes.tagCount, written);
      written = count;
      mark('volume written');
      const catalogServers: Partial<Record<RegistryName, RunningServer>> = {};
      const catalogMissing: Partial<Record<RegistryName, string>> = {};
      const startSeconds: Partial<Record<RegistryName, number>> = {};
      for (const name of ['ours', 'ref'] as const) {
        try {
          const { value, seconds } = await timed(() => start(name, volume));
          catalogServers[name] = value;
          startSeconds[name] = seconds;
        } catch (err) {
          catalogMissing[name] = `could not start: ${errorText(err)}`;
        }
      }
      try {
        phases.push(await runPhase(catalogPhase(sizes, creds, count, startSeconds), phases.length, catalogServers, catalogMissing));
      } finally {
        for (const s of Object.values(catalogServers)) await s.stop();
      }
    }
  }

  mark('registry phases done');
  const summary: Metric[] = [];
  const deployed = await deployedProcess(oursRoot);
  const oursFlags = oursNodeFlags ?? deployed.nodeFlags;
  const commands = [
    `npm run bench${quick ? ' -- --quick' : ''}   # = npm run build && tsc -p bench/tsconfig.json && node bench/out/build/run.js`,
    `${Object.entries(deployed.env).map(([k, v]) => `${k}=${v} `).join('')}node ${oursFlags.map((f) => `${f} `).join('')}bin/regctl.js serve --listen 127.0.0.1:PORT --data DIR --htpasswd FILE --log-level error   # ${oursNodeFlags ? 'node options from --ours-node-flags; ' : ''}the registry container's environment${oursNodeFlags ? '' : ' and node options'} (src/registry/process-env.ts)${profileDir ? '; under node --cpu-prof' : ''}`,
    `/usr/bin/docker-registry serve CONFIG.yml   # CONFIG: see referenceConfig in the settings above`,
    ...(only.has('skopeo')
      ? [
          `skopeo copy --quiet --preserve-digests --dest-tls-verify=false --dest-creds bench:PASS oci:LAYOUT:bench docker://127.0.0.1:PORT/bench/skopeo:bench`,
          `skopeo copy --quiet --preserve-digests --src-tls-verify=false --src-creds bench:PASS docker://127.0.0.1:PORT/bench/skopeo:bench oci:OUT:bench`,
        ]
      : []),
    ...ceilings.map((c) => c.method),
  ];
  if (only.has('cli')) {
    process.stderr.write('\n== regctl --help\n');
    try {
      const t = await timeCommand([process.execPath, join(repoRoot, 'bin/regctl.js'), '--help'], sizes.helpRuns, workDir);
      summary.push(metric({ id: 'cli.help.ms', label: '`regctl --help`, median wall time', unit: 'ms', better: 'lower', targets: [{ kind: 'max', value: 200 }] }, t.medianMs, undefined));
      commands.push(t.tool);
      process.stderr.write(`   median ${t.medianMs.toFixed(1)} ms (${t.tool})\n`);
    } catch (err) {
      summary.push(metric({ id: 'cli.help.ms', label: '`regctl --help`, median wall time', unit: 'ms', better: 'lower', targets: [{ kind: 'max', value: 200 }], note: `failed: ${errorText(err)}` }, undefined, undefined));
    }
  }
  if (only.has('up')) {
    process.stderr.write('\n== regctl up\n');
    const upSpec = { id: 'cli.up.seconds', label: '`regctl up` to healthy, images already built (dev stack, registry + UI + Traefik)', unit: 's', better: 'lower' as const, targets: [{ kind: 'max' as const, value: 20 }] };
    try {
      const t = await timeRegctlUp(repoRoot, join(workDir, 'up'));
      summary.push(metric(upSpec, t.upSeconds, undefined));
      summary.push(metric({ id: 'cli.up.first.seconds', label: 'First `regctl up` of the same stack (builds its image)', unit: 's', better: 'lower' }, t.firstUpSeconds, undefined));
      commands.push(...t.commands);
      process.stderr.write(`   up ${t.upSeconds.toFixed(1)} s (first, with the image build: ${t.firstUpSeconds.toFixed(1)} s)\n`);
    } catch (err) {
      summary.push(metric({ ...upSpec, note: `not measured: ${errorText(err)}` }, undefined, undefined));
      process.stderr.write(`   FAILED ${errorText(err)}\n`);
    }
  } else {
    summary.push(metric({ id: 'cli.up.seconds', label: '`regctl up` to healthy, images already built', unit: 's', better: 'lower', targets: [{ kind: 'max', value: 20 }], note: 'not measured in this run (phase `up` not selected; --quick leaves it out)' }, undefined, undefined));
  }

  const peak = (name: RegistryName): number | undefined => {
    const values = phases.map((p) => p.resources[name]?.peakRssMiB).filter((v): v is number => v !== undefined);
    return values.length > 0 ? Math.max(...values) : undefined;
  };
  if (phases.length > 0) {
    summary.unshift(metric({ id: 'peakRssMiB', label: 'Peak RSS over the whole run (max of every phase\'s VmHWM)', unit: 'MiB', better: 'lower', targets: [{ kind: 'max', value: 120 }] }, peak('ours'), peak('ref')));
  }

  machine.loadAverageAtEnd = loadavg().map((v) => Math.round(v * 100) / 100);
  const report: BenchReport = {
    generatedAt: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    durationSeconds: (performance.now() - started) / 1000,
    machine,
    versions: vers,
    commands,
    settings: {
      bcryptCost: BCRYPT_COST,
      credentials: 'one htpasswd user, Basic auth on every request',
      largeBlobMiB: sizes.largeBlobBytes / MiB,
      chunkMiB: sizes.chunkBytes / MiB,
      manifestSeconds: sizes.manifestSeconds,
      concurrencies: sizes.concurrencies.join('/'),
      smallBlobs: sizes.smallBlobCount,
      catalogCounts: sizes.catalogCounts.join('/'),
      tags: sizes.tagCount,
      pageSize: sizes.pageSize,
      skopeo: `${sizes.skopeoLayers} layers, ${sizes.skopeoBytes / MiB} MiB`,
      dataDir: 'bench/out/run-*/data (same filesystem for both registries)',
      referenceConfig: referenceConfig('DIR', 'HTPASSWD', 0).replace(/\n/g, ' ⏎ ').replace('127.0.0.1:0', '127.0.0.1:PORT'),
    },
    ceilings,
    phases,
    summary,
  };
  const notes = await readFile(join(repoRoot, 'bench/notes.md'), 'utf8').catch(() => '');
  const markdown = renderMarkdown(report, notes);
  if (values['no-write']) {
    process.stdout.write(markdown);
  } else {
    await writeFile(join(repoRoot, 'docs/benchmarks.json'), `${JSON.stringify(report, null, 2)}\n`);
    await writeFile(join(repoRoot, 'docs/benchmarks.md'), markdown);
    process.stderr.write(`\nbench: wrote docs/benchmarks.md and docs/benchmarks.json (${Math.round(report.durationSeconds)} s)\n`);
  }
  await writeFile(join(workDir, 'report.json'), JSON.stringify(report, null, 2));
  mark('removing the data directories');
  await rm(dataRoot, { recursive: true, force: true });
  const misses = [...phases.flatMap((p) => p.metrics), ...summary].filter((m) => m.verdict === 'miss');
  const failures = phases.flatMap((p) => Object.entries(p.errors).map(([n, e]) => `${p.id}/${n}: ${e ?? ''}`));
  process.stderr.write(`bench: ${misses.length} target(s) missed${misses.length ? `: ${misses.map((m) => m.id).join(', ')}` : ''}\n`);
  if (failures.length > 0) {
    process.stderr.write(`bench: ${failures.length} failed phase run(s):\n  ${failures.join('\n  ')}\n`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
