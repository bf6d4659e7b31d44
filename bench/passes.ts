import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { LoopbackProbe } from './lib/ceilings.js';
import { timed } from './lib/load.js';
import { metric } from './lib/model.js';
import type { Metric, PhaseResult } from './lib/model.js';
import type { PeakLedger } from './lib/peaks.js';
import { errorText, runPhase, variant, withReferenceOf } from './lib/phase.js';
import type { PhaseSpec } from './lib/phase.js';
import { startPostgres, writePasswordFile } from './lib/postgres.js';
import type { PostgresCluster } from './lib/postgres.js';
import { startOurs, startReference } from './lib/servers.js';
import type { RegistryName, RunningServer, ServerSettings } from './lib/servers.js';
import type { Sizes } from './lib/sizes.js';
import { largeBlobPhase, smallBlobPhase } from './phases/blobs.js';
import { catalogPhase, seedVolume } from './phases/catalog.js';
import { dockerPhase } from './phases/docker.js';
import type { Credentials } from './phases/context.js';
import { manifestPhase } from './phases/manifests.js';
import { repeatPhase } from './phases/repeat.js';
import { scalePhase, seedScale } from './phases/scale.js';
import type { ScaleCounts, ScaleStoreKind, SeedTarget } from './phases/scale.js';
import { skopeoPhase } from './phases/skopeo.js';
import { swarmPhase } from './phases/swarm.js';
import type { OciLayout } from './phases/skopeo.js';

const MiB = 1024 * 1024;

/** What the registry phases need from the run. */
export interface PassContext {
  oursRoot: string;
  workDir: string;
  dataRoot: string;
  sizes: Sizes;
  only: Set<string>;
  creds: Credentials;
  /** The htpasswd file (one user, the same for both registries) hashed at `cost`. */
  htpasswdFor(cost: number): string;
  profileDir?: string;
  oursNodeFlags?: string[];
  pattern: Buffer;
  pool: Buffer;
  probe?: LoopbackProbe;
  layout?: OciLayout;
  phases: PhaseResult[];
  ledger: PeakLedger;
}

type Role = 'ours' | 'ours-nocache' | 'ref';

function start(ctx: PassContext, role: Role, dataDir: string, cost: number): Promise<RunningServer> {
  const settings: ServerSettings = {
    dataDir,
    htpasswdFile: ctx.htpasswdFor(cost),
    workDir: ctx.workDir,
    ...(role !== 'ref' && ctx.profileDir ? { profileDir: ctx.profileDir } : {}),
    ...(role !== 'ref' && ctx.oursNodeFlags ? { nodeFlags: ctx.oursNodeFlags } : {}),
    ...(role === 'ours-nocache' ? { credentialCache: false } : {}),
  };
  return role === 'ref' ? startReference(settings) : startOurs(ctx.oursRoot, settings);
}

interface PassPhase {
  spec: PhaseSpec;
  /** Run on ours with its credential cache off, the reference's figures taken from the phase with this id. */
  twinOf?: string;
}

/**
 * The phases of one bcrypt cost. The first cost is the headline: every selected phase, with its targets. Other
 * costs repeat the auth-bound phases only (the large-blob pushes, whose chunked form authenticates each PATCH;
 * manifests; small blobs), without the pull, a single request whatever the cost. At every cost the manifest and
 * small-blob phases run once more on ours with its credential cache off.
 */
function passPhases(ctx: PassContext, cost: number, headline: boolean): PassPhase[] {
  const { sizes, creds, only } = ctx;
  const out: PassPhase[] = [];
  const conditions = `bcrypt cost ${cost}`;
  const mark = (spec: PhaseSpec): PhaseSpec =>
    variant(spec, { idSuffix: headline ? '' : `bcrypt${cost}`, conditions, keepTargets: true });
  const withoutCache = (spec: PhaseSpec, twin: PhaseSpec): PassPhase => ({
    spec: variant(spec, {
      idSuffix: headline ? 'nocache' : `nocache-bcrypt${cost}`,
      conditions: `${conditions}, our credential cache off`,
      keepTargets: false,
      note:
        "Ours runs with `--no-credential-cache`: bcrypt on every request, as the reference does. The reference's " +
        'figures are those of the phase above (the same workload on the reference in the same pass).',
    }),
    twinOf: twin.id,
  });
  if (only.has('large-blob')) {
    const probe = ctx.probe;
    out.push({ spec: mark(largeBlobPhase(sizes, creds, ctx.pattern, () => probe, { pulls: headline })) });
  }
  if (only.has('manifests')) {
    const m = mark(manifestPhase(sizes, creds, { putTarget: headline }));
    out.push({ spec: m }, withoutCache(manifestPhase(sizes, creds, { putTarget: false }), m));
  }
  if (only.has('small-blobs')) {
    const s = mark(smallBlobPhase(sizes, creds, ctx.pool));
    out.push({ spec: s }, withoutCache(smallBlobPhase(sizes, creds, ctx.pool), s));
  }
  if (headline && only.has('skopeo') && ctx.layout) {
    const l = ctx.layout;
    out.push({ spec: mark(skopeoPhase(sizes, creds, () => l, ctx.workDir)) });
  }
  if (headline && only.has('repeat')) out.push({ spec: mark(repeatPhase(sizes, creds, ctx.pool)) });
  return out;
}

/** Every registry phase at every bcrypt cost of `ctx.sizes`, each cost on fresh servers and fresh data. */
export async function runRegistryPasses(ctx: PassContext): Promise<void> {
  for (const [i, cost] of ctx.sizes.bcryptCosts.entries()) {
    const list = passPhases(ctx, cost, i === 0);
    if (list.length === 0) continue;
    const where = `registry phases at bcrypt cost ${cost}`;
    const roles: Role[] = ['ours', 'ref', ...(list.some((p) => p.twinOf) ? (['ours-nocache'] as const) : [])];
    const servers: Partial<Record<Role, RunningServer>> = {};
    const missing: Partial<Record<Role, string>> = {};
    for (const role of roles) {
      try {
        servers[role] = await start(ctx, role, join(ctx.dataRoot, `main-${role}-${cost}`), cost);
        process.stderr.write(`bench: ${role} started at bcrypt cost ${cost} (pid ${servers[role]?.pid ?? '?'})\n`);
      } catch (err) {
        missing[role] = `could not start: ${errorText(err)}`;
        process.stderr.write(`bench: ${role} ${missing[role]}\n`);
      }
    }
    try {
      for (const { spec, twinOf } of list) {
        if (twinOf === undefined) {
          const pair = {
            ...(servers.ours ? { ours: servers.ours } : {}),
            ...(servers.ref ? { ref: servers.ref } : {}),
          };
          const why = { ...(missing.ours ? { ours: missing.ours } : {}), ...(missing.ref ? { ref: missing.ref } : {}) };
          ctx.phases.push(await runPhase(spec, ctx.phases.length, pair, why));
          continue;
        }
        const nocache = servers['ours-nocache'];
        const why = missing['ours-nocache'] ? { ours: missing['ours-nocache'] } : {};
        const alone = await runPhase(spec, ctx.phases.length, nocache ? { ours: nocache } : {}, why);
        const twin = ctx.phases.find((p) => p.id === twinOf);
        ctx.phases.push(twin ? withReferenceOf(alone, twin, spec.metrics) : alone);
      }
    } finally {
      for (const role of roles) {
        const s = servers[role];
        if (s) await ctx.ledger.stop(s, where, role === 'ours-nocache' ? 'credential cache off' : 'default');
      }
      for (const role of roles) await rm(join(ctx.dataRoot, `main-${role}-${cost}`), { recursive: true, force: true });
    }
  }
}

/**
 * Removes what ours keeps beside a volume (its embedded metadata store and the marker saying the store describes
 * the volume). The volume grew on disk behind its back, as no running registry would see it grow, so ours starts
 * on it as on a volume it has never seen: it imports it, and the start measures that.
 */
async function forgetMetadata(volume: string): Promise<void> {
  await rm(join(volume, 'regctl'), { recursive: true, force: true });
  await rm(join(volume, 'docker/registry/regctl'), { recursive: true, force: true });
}

/**
 * The catalog phases (at the headline bcrypt cost), then ours and the reference started once more on the
 * largest volume, alone: their peak resident set once healthy is the start-up's (the index walk, for ours).
 */
export async function runCatalogPhases(ctx: PassContext): Promise<Metric[]> {
  const cost = ctx.sizes.bcryptCosts[0] as number;
  const volume = join(ctx.dataRoot, 'catalog');
  let written = 0;
  for (const count of ctx.sizes.catalogCounts) {
    process.stderr.write(`\nbench: writing a volume with ${count} repositories\n`);
    await seedVolume(volume, count, ctx.sizes.tagCount, written);
    await forgetMetadata(volume);
    written = count;
    const servers: Partial<Record<RegistryName, RunningServer>> = {};
    const missing: Partial<Record<RegistryName, string>> = {};
    const startSeconds: Partial<Record<RegistryName, number>> = {};
    for (const name of ['ours', 'ref'] as const) {
      try {
        const { value, seconds } = await timed(() => start(ctx, name, volume, cost));
        servers[name] = value;
        startSeconds[name] = seconds;
      } catch (err) {
        missing[name] = `could not start: ${errorText(err)}`;
      }
    }
    try {
      ctx.phases.push(
        await runPhase(catalogPhase(ctx.sizes, ctx.creds, count, startSeconds), ctx.phases.length, servers, missing),
      );
    } finally {
      for (const s of Object.values(servers))
        await ctx.ledger.stop(s, `catalog of ${count.toLocaleString('en-US')} repositories`);
    }
  }
  if (written === 0) return [];
  const label = written.toLocaleString('en-US');
  const peaks: Partial<Record<RegistryName, number>> = {};
  for (const name of ['ours', 'ref'] as const) {
    try {
      // The start that costs ours the most: an import of a volume it has never seen.
      if (name === 'ours') await forgetMetadata(volume);
      const server = await start(ctx, name, volume, cost);
      await ctx.ledger.stop(server, `start on ${label} repositories, stopped once healthy`);
      peaks[name] = (await server.lifetimePeakBytes()) / MiB;
    } catch (err) {
      process.stderr.write(`bench: ${name} did not start on ${label} repositories: ${errorText(err)}\n`);
    }
  }
  return [
    metric(
      {
        id: 'startupPeakRssMiB',
        label: `Peak RSS of a start on ${label} repositories, read once healthy (VmHWM since start; ours imports the volume)`,
        unit: 'MiB',
        better: 'lower',
      },
      peaks.ours,
      peaks.ref,
    ),
  ];
}

/** The docker push and pull phase, at the headline bcrypt cost; its containers' lifetime peaks go to the ledger. */
export async function runDockerPhase(ctx: PassContext, repoRoot: string): Promise<void> {
  const bcryptCost = ctx.sizes.bcryptCosts[0] as number;
  const result = await dockerPhase({
    repoRoot,
    workDir: ctx.workDir,
    sizes: ctx.sizes,
    bcryptCost,
    index: ctx.phases.length,
  });
  ctx.phases.push(result);
  for (const name of ['ours', 'ref'] as const) {
    const peak = result.resources[name]?.peakRssMiB;
    if (peak !== undefined) ctx.ledger.add(name, 'default', 'docker push and pull (its container)', peak * MiB);
  }
}

/** The swarm phase (phases/swarm.ts): ours alone, a swarm stack measured with one and three replicas. */
export async function runSwarmPhase(ctx: PassContext, repoRoot: string): Promise<void> {
  process.stderr.write('\n== swarm: one and three registry replicas through Traefik\n');
  ctx.phases.push(await swarmPhase({ repoRoot, workDir: ctx.workDir, dataRoot: ctx.dataRoot, sizes: ctx.sizes }));
}

/** The PostgreSQL cluster and database ours is pointed at, with the password in a 0600 file. */
async function scaleDatabase(
  workDir: string,
): Promise<{ pg: PostgresCluster; url: string; target: SeedTarget; passwordFile: string }> {
  const pg = await startPostgres();
  try {
    const db = await pg.createDatabase();
    const passwordFile = await writePasswordFile(await mkdtemp(join(workDir, 'scale-pg-')), db.password);
    return { pg, url: db.url, target: { kind: 'postgres', url: db.url, password: db.password }, passwordFile };
  } catch (err) {
    await pg.stop();
    throw err;
  }
}

/**
 * The start-up-at-scale phase on each metadata store: seeded (untimed) with the sizes' repositories and tags,
 * then ours started on it as deployed and measured (phases/scale.ts). Ours only; its lifetime peak goes to the
 * ledger as every start's does.
 */
export async function runScalePhases(ctx: PassContext): Promise<void> {
  const { sizes } = ctx;
  const counts: ScaleCounts = {
    repositories: sizes.scaleRepositories,
    tagsPerRepository: sizes.scaleTagsPerRepository,
    storageSample: sizes.scaleStorageSample,
    tries: sizes.scaleTries,
  };
  const cost = sizes.bcryptCosts[0] as number;
  const where = `start on ${counts.repositories.toLocaleString('en-US')} repositories and their tags`;
  for (const kind of ['sqlite', 'postgres'] as ScaleStoreKind[]) {
    const volume = join(ctx.dataRoot, `scale-${kind}`);
    let pg: PostgresCluster | undefined;
    let server: RunningServer | undefined;
    let failure: string | undefined;
    let spec: PhaseSpec | undefined;
    try {
      process.stderr.write(`\nbench: seeding a ${kind} metadata store with ${counts.repositories} repositories\n`);
      const db = kind === 'postgres' ? await scaleDatabase(ctx.workDir) : undefined;
      pg = db?.pg;
      const seeded = await seedScale(ctx.oursRoot, volume, db?.target ?? { kind: 'sqlite', volume }, counts);
      process.stderr.write(`bench: seeded in ${seeded.seconds.toFixed(1)} s (untimed)\n`);
      const settings: ServerSettings = {
        dataDir: volume,
        htpasswdFile: ctx.htpasswdFor(cost),
        workDir: ctx.workDir,
        ...(ctx.profileDir ? { profileDir: ctx.profileDir } : {}),
        ...(ctx.oursNodeFlags ? { nodeFlags: ctx.oursNodeFlags } : {}),
        ...(db ? { extraArgs: ['--metadata', db.url, '--metadata-password-file', db.passwordFile] } : {}),
      };
      const { value, seconds } = await timed(() => startOurs(ctx.oursRoot, settings));
      server = value;
      spec = scalePhase(kind, counts, ctx.creds, {
        volume,
        id: seeded.id,
        healthySeconds: seconds,
        seedSeconds: seeded.seconds,
      });
    } catch (err) {
      failure = errorText(err);
      process.stderr.write(`bench: scale (${kind}) could not start: ${failure}\n`);
    }
    try {
      const phase =
        spec ?? scalePhase(kind, counts, ctx.creds, { volume, id: '', healthySeconds: Number.NaN, seedSeconds: 0 });
      ctx.phases.push(
        await runPhase(phase, ctx.phases.length, server ? { ours: server } : {}, failure ? { ours: failure } : {}),
      );
    } finally {
      if (server) await ctx.ledger.stop(server, `${where} (${kind} store)`);
      await pg?.stop();
      await rm(volume, { recursive: true, force: true });
    }
  }
}
