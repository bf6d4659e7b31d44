/**
 * Soak (long): 64 clients mixing pulls and pushes for SOAK_DURATION (default 30m), sampled every 5 s. Zero
 * errors, the registry's RSS flat after warm-up and its descriptors under load not growing (SOAK_CRITERIA).
 * The figures go to docs/reliability.md.
 * Run with `npm run test:long` (SOAK_DURATION=2m for a short proof run).
 *
 * SOAK_VIA=traefik (the default): a real dev stack from `regctl init` + `regctl up`, the clients going through
 * Traefik at registry.example.test:<http port>; the registry container's node process and Traefik's are
 * sampled through their host PIDs. SOAK_VIA=serve: `regctl serve` as a child process, no proxy, to look at
 * the registry process alone.
 */
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, expect, it } from 'vitest';
import {
  REGISTRY_HOST,
  addHostsLine,
  forceRemoveProject,
  initStack,
  regctl,
  stackTestsReady,
  type E2eStack,
} from '../e2e/helpers.js';
import { basicAuth } from '../helpers/auth.js';
import { seedFromEnv } from '../integration/reliability/helpers/rng.js';
import { startServe, type ServeProcess } from '../helpers/serve-process.js';
import { SOAK_CRITERIA, runSoak, soakMarkdown, type SoakOptions } from '../integration/reliability/helpers/soak.js';
import { durationMs, writeReportSection } from './report.js';

const DURATION = durationMs(process.env.SOAK_DURATION, 30 * 60_000);
const CLIENTS = Number(process.env.SOAK_CLIENTS ?? 64);
const VIA = process.env.SOAK_VIA ?? 'traefik';
const PROJECT = 'soak';
const seed = seedFromEnv('SOAK_SEED');
const cleanups: (() => Promise<unknown>)[] = [];
/**
 * SOAK_CRITERIA for runs of 15 minutes or more; a shorter proof run has no room for a 5-minute warm-up and a
 * trend after it, so its RSS is not judged and its descriptor warm-up is the first quarter.
 */
const CRITERIA: SoakOptions['criteria'] =
  DURATION >= 15 * 60_000 ? SOAK_CRITERIA : { fds: { ...SOAK_CRITERIA.fds, warmupS: DURATION / 4000, minSamples: 3 } };

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
}, 180_000);

/** The host PID of a container's main process, checked to be the program expected. */
async function containerPid(name: string, comm: string): Promise<number> {
  const pid = Number((await execa('docker', ['inspect', '-f', '{{.State.Pid}}', name])).stdout.trim());
  const actual = (await readFile(`/proc/${pid}/comm`, 'utf8')).trim();
  if (actual !== comm) throw new Error(`container ${name}: main process is ${actual}, expected ${comm}`);
  return pid;
}

interface Target {
  how: string;
  opts: Pick<SoakOptions, 'url' | 'authorization' | 'watch'>;
  serverOutput(): Promise<string>;
}

async function throughTraefik(): Promise<Target> {
  if (!stackTestsReady())
    throw new Error(
      'the soak through Traefik needs the stack test setup (bash test/setup/provision.sh, npm run build)',
    );
  await forceRemoveProject(PROJECT);
  const stack: E2eStack = await initStack(['--name', PROJECT]);
  cleanups.push(() => stack.cleanup());
  cleanups.push(() => forceRemoveProject(PROJECT));
  cleanups.push(() => regctl(['down', '--dir', stack.dir, '--volumes', '--yes']));
  const removeHosts = await addHostsLine([REGISTRY_HOST], 'regctl soak');
  cleanups.push(removeHosts);
  const up = await regctl(['up', '--dir', stack.dir], { timeoutMs: 600_000 });
  if (up.exitCode !== 0) throw new Error(`regctl up failed:\n${up.all}`);
  const registry = await containerPid(`${PROJECT}-registry`, 'node');
  const traefik = await containerPid(`${PROJECT}-traefik`, 'traefik');
  const version = (await execa('docker', ['inspect', '-f', '{{.Config.Image}}', `${PROJECT}-traefik`])).stdout.trim();
  return {
    how: `through Traefik (${version}) of a dev stack from \`regctl init --yes\` + \`regctl up\`, at ${REGISTRY_HOST}:${stack.ports.http}`,
    opts: {
      url: `http://${REGISTRY_HOST}:${stack.ports.http}`,
      authorization: basicAuth('admin', stack.password),
      watch: [
        { name: 'registry', pid: registry },
        { name: 'traefik', pid: traefik },
      ],
    },
    serverOutput: async () =>
      (await execa('docker', ['logs', `${PROJECT}-registry`], { all: true, reject: false })).all ?? '',
  };
}

async function direct(): Promise<Target> {
  const dir = await mkdtemp(join(tmpdir(), 'regctl-soak-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const password = randomBytes(12).toString('hex');
  await writeFile(join(dir, 'htpasswd'), `soak:${bcrypt.hashSync(password, 10)}\n`, { mode: 0o600 });
  const srv: ServeProcess = await startServe([
    '--data',
    join(dir, 'data'),
    '--htpasswd',
    join(dir, 'htpasswd'),
    '--log-level',
    'warn',
  ]);
  cleanups.push(() => srv.stop());
  return {
    how: `direct to \`regctl serve\` (child process, no proxy) at ${srv.url}`,
    opts: { url: srv.url, authorization: basicAuth('soak', password), watch: [{ name: 'registry', pid: srv.pid }] },
    serverOutput: async () => srv.output(),
  };
}

it(
  `soak: ${CLIENTS} clients for ${DURATION / 60_000} min ${VIA === 'serve' ? 'against regctl serve' : 'through Traefik'}: no errors, flat RSS, no fd leak`,
  { timeout: DURATION + 1_200_000 },
  async () => {
    if (VIA !== 'traefik' && VIA !== 'serve') throw new Error(`SOAK_VIA must be traefik or serve, not ${VIA}`);
    const target = VIA === 'serve' ? await direct() : await throughTraefik();
    console.log(
      `soak seed ${seed}, ${CLIENTS} clients, ${DURATION / 1000} s, ${target.how}, watching ${target.opts.watch.map((w) => `${w.name} pid ${w.pid}`).join(', ')}`,
    );
    const report = await runSoak({ ...target.opts, clients: CLIENTS, durationMs: DURATION, seed, criteria: CRITERIA });
    const md = soakMarkdown(report, `${target.how}, seed ${seed}, ${new Date().toISOString().slice(0, 16)}Z`);
    console.log(md);
    if (report.errors.length > 0) console.log(report.errors.join('\n'));
    await writeReportSection(DURATION >= 30 * 60_000 ? 'soak' : 'soak-short', md);
    expect(report.errorCount).toBe(0);
    expect(report.pulls).toBeGreaterThan(0);
    expect(report.pushes).toBeGreaterThan(0);
    expect(report.gcs).toBeGreaterThan(0);
    // Flat RSS after warm-up and no descriptor growth under load, by the criteria fixed above (SOAK_CRITERIA).
    if (CRITERIA.rss) expect(report.rssVerdict?.failures).toEqual([]);
    expect(report.fdVerdict.failures).toEqual([]);
    expect(await target.serverOutput()).not.toContain('"level":"error"');
  },
);
