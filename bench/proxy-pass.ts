/**
 * The pull-through cache phases (`--only proxy`). The reference registry is the upstream; ours runs with
 * `--proxy up=<reference>` and the reference's credentials in its environment. Both hold the bench's OCI layout
 * (pushed untimed with skopeo): the reference as `bench/proxy:bench`, ours as its own `bench/local:bench`.
 *
 * 1. A first pull through the cache against a direct pull from the upstream: skopeo copies the image out of the
 *    reference (`ref`) and out of ours under `up/` (`ours`), which fetches every blob from the reference while it
 *    streams it to skopeo and writes and verifies it. Target ≥ 80 % of the direct pull's throughput.
 * 2. A cached pull against a local pull from ours: the same image again under `up/` (everything in ours' storage,
 *    the tag younger than its ttl, so the upstream is not asked), alternated with the copy pushed to ours directly.
 *    Both figures are ours; the "reference" column holds the local pull. Target ≥ 95 %.
 */
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { PassContext } from './passes.js';
import { metric } from './lib/model.js';
import type { MetricSpec } from './lib/model.js';
import { errorText, runPhase } from './lib/phase.js';
import type { PhaseSpec, Step } from './lib/phase.js';
import { startOurs, startReference } from './lib/servers.js';
import type { RegistryName, RunningServer } from './lib/servers.js';
import { timed } from './lib/load.js';
import { mbPerSecond, percentile } from './lib/stats.js';
import { makeOciLayout } from './phases/skopeo.js';
import type { OciLayout } from './phases/skopeo.js';

const exec = promisify(execFile);
const MiB = 1024 * 1024;
const TAG = 'bench';
/** Cached and local pulls, alternated (each first in turn); the median of each is reported. */
const ROUNDS = 3;

async function skopeo(args: string[]): Promise<number> {
  const { seconds } = await timed(() => exec('skopeo', ['copy', '--quiet', '--preserve-digests', ...args]));
  return seconds;
}

async function pushLayout(port: number, repo: string, layout: OciLayout, creds: string): Promise<void> {
  await skopeo([
    '--dest-tls-verify=false',
    '--dest-creds',
    creds,
    `oci:${layout.dir}:${TAG}`,
    `docker://127.0.0.1:${port}/${repo}:${TAG}`,
  ]);
}

/** Copies `repo:bench` out of the server into a fresh layout; MB/s of layer bytes. */
async function pullOut(port: number, repo: string, layout: OciLayout, creds: string, out: string): Promise<number> {
  await rm(out, { recursive: true, force: true });
  const src = `docker://127.0.0.1:${port}/${repo}:${TAG}`;
  const seconds = await skopeo(['--src-tls-verify=false', '--src-creds', creds, src, `oci:${out}:${TAG}`]);
  await rm(out, { recursive: true, force: true });
  return mbPerSecond(layout.layerBytes, seconds);
}

const FIRST: MetricSpec = {
  id: 'firstPullMBps',
  label: 'first pull through the cache (ours) against a direct pull from the upstream (reference), layer throughput',
  unit: 'MB/s',
  better: 'higher',
  targets: [{ kind: 'ratio-min', value: 0.8 }],
};

const CACHED: MetricSpec = {
  id: 'cachedPullMBps',
  label: 'cached pull through the cache (ours) against a local pull from ours (in the reference column)',
  unit: 'MB/s',
  better: 'higher',
  targets: [{ kind: 'ratio-min', value: 0.95 }],
};

function firstPullPhase(ctx: PassContext, layout: OciLayout, creds: string): PhaseSpec {
  const step: Step = async (server) => {
    const repo = server.name === 'ours' ? 'up/bench/proxy' : 'bench/proxy';
    return { firstPullMBps: await pullOut(server.port, repo, layout, creds, join(ctx.workDir, 'proxy-first-out')) };
  };
  const total = `${Math.round(layout.layerBytes / MiB)} MiB`;
  return {
    id: 'proxy-first',
    title: `Pull-through cache: first pull of a ${ctx.sizes.skopeoLayers}-layer, ${total} image`,
    description:
      'skopeo copies the image out of the reference (the upstream) directly, and out of ours under the proxy ' +
      'prefix `up/` while nothing is cached: ours asks the reference for the manifest and every blob and streams ' +
      'each to skopeo as it arrives, writing it to storage and checking its digest on the way. The direct pull has ' +
      'one hop less; on loopback the extra hop costs CPU, not network time, where a real upstream is remote.',
    steps: [step],
    metrics: [FIRST],
  };
}

function cachedPullPhase(ctx: PassContext, layout: OciLayout, creds: string): PhaseSpec {
  const step: Step = async (server) => {
    const cached: number[] = [];
    const local: number[] = [];
    const out = join(ctx.workDir, 'proxy-cached-out');
    for (let i = 0; i < ROUNDS; i++) {
      // Each goes first in turn, so neither always gets the warmer machine.
      const pair = [
        async () => cached.push(await pullOut(server.port, 'up/bench/proxy', layout, creds, out)),
        async () => local.push(await pullOut(server.port, 'bench/local', layout, creds, out)),
      ];
      for (const pull of i % 2 === 0 ? pair : pair.reverse()) await pull();
    }
    return { cachedPullMBps: percentile(cached, 50), localPullMBps: percentile(local, 50) };
  };
  return {
    id: 'proxy-cached',
    title: `Pull-through cache: cached pull against a local pull, median of ${ROUNDS} alternated`,
    description:
      'The image above, now in the cache, copied out of ours under `up/` again (the tag is younger than its ttl, so ' +
      'the upstream is not asked), alternated with the same image pushed to ours as `bench/local`. Both figures ' +
      'are ours: the reference column holds the local pull. The cached pull checks that each blob is linked in ' +
      "the cached repository before serving it; the local pull is the registry's ordinary path.",
    steps: [step],
    metrics: [
      { id: 'cachedPullMBps', label: 'cached', unit: 'MB/s', better: 'higher' },
      { id: 'localPullMBps', label: 'local', unit: 'MB/s', better: 'higher' },
    ],
  };
}

/** Both phases, on a reference and an ours of their own, at the headline bcrypt cost. */
export async function runProxyPhases(ctx: PassContext): Promise<void> {
  const cost = ctx.sizes.bcryptCosts[0] as number;
  const creds = `${ctx.creds.user}:${ctx.creds.password}`;
  const layout =
    ctx.layout ?? (await makeOciLayout(join(ctx.workDir, '../cache'), ctx.sizes.skopeoLayers, ctx.sizes.skopeoBytes));
  const base = { htpasswdFile: ctx.htpasswdFor(cost), workDir: ctx.workDir };
  const servers: Partial<Record<RegistryName, RunningServer>> = {};
  const why: Partial<Record<RegistryName, string>> = {};
  try {
    const ref = await startReference({ ...base, dataDir: join(ctx.dataRoot, 'proxy-ref') });
    servers.ref = ref;
    await pushLayout(ref.port, 'bench/proxy', layout, creds);
    try {
      const ours = await startOurs(ctx.oursRoot, {
        ...base,
        dataDir: join(ctx.dataRoot, 'proxy-ours'),
        logName: 'ours-proxy.log',
        extraArgs: ['--proxy', `up=http://127.0.0.1:${ref.port}`],
        secretEnv: { REGCTL_PROXY_UP_CREDENTIALS: creds },
        ...(ctx.oursNodeFlags ? { nodeFlags: ctx.oursNodeFlags } : {}),
      });
      servers.ours = ours;
      await pushLayout(ours.port, 'bench/local', layout, creds);
    } catch (err) {
      why.ours = `could not start or seed: ${errorText(err)}`;
    }
  } catch (err) {
    why.ref = why.ours = `the upstream could not start or be seeded: ${errorText(err)}`;
  }
  try {
    ctx.phases.push(await runPhase(firstPullPhase(ctx, layout, creds), ctx.phases.length, servers, why));
    const cached = await runPhase(
      cachedPullPhase(ctx, layout, creds),
      ctx.phases.length,
      servers.ours ? { ours: servers.ours } : {},
      why.ours ? { ours: why.ours } : {},
    );
    const figure = (id: string): number | undefined => cached.metrics.find((m) => m.id === id)?.ours;
    ctx.phases.push({ ...cached, metrics: [metric(CACHED, figure('cachedPullMBps'), figure('localPullMBps'))] });
  } finally {
    if (servers.ours) await ctx.ledger.stop(servers.ours, 'pull-through cache', 'proxy of the reference');
    if (servers.ref) await ctx.ledger.stop(servers.ref, 'pull-through cache (the upstream)');
  }
}
