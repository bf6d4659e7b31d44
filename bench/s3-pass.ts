import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { HttpClient } from './lib/http.js';
import type { RequestOptions, Response } from './lib/http.js';
import { timed } from './lib/load.js';
import { errorText, runPhase } from './lib/phase.js';
import type { Figures, Step } from './lib/phase.js';
import { startPostgres } from './lib/postgres.js';
import type { PostgresCluster } from './lib/postgres.js';
import { REFERENCE_V3_BINARY, startOurs, startReferenceS3 } from './lib/servers.js';
import type { RegistryName, RunningServer } from './lib/servers.js';
import { chunkedCeilingProbe } from './lib/s3-ceiling.js';
import { launchVersitygw } from './lib/versitygw.js';
import type { S3Server } from './lib/versitygw.js';
import type { PhaseResult } from './lib/model.js';
import type { PassContext } from './passes.js';
import { repoNames, seedVolume } from './phases/catalog.js';
import { PULL_TRIES } from './phases/blobs.js';
import { interleavedPulls } from './phases/interleaved-pulls.js';
import { NO_CREDENTIALS, replicaResult, s3CatalogCount, s3Phase, s3ReplicaSteps } from './phases/s3.js';

/** The provisioned S3 gateway (`test/setup/provision.sh` builds it with the other Go peers). */
export const VERSITYGW_BINARY = '/var/cache/regctl-test/bin/versitygw';
/** The prefix both registries store under in their buckets. */
export const S3_PREFIX = 'bench';
const PREFIX = S3_PREFIX;
/** A start on a bucket of 10,000 repositories lists it all first (ours imports it): allow minutes, not seconds. */
const START_TIMEOUT_MS = 15 * 60_000;

/** Ours on `bucket`, no auth, S3 keys (and any other secret) only in its environment. */
function startOursS3(
  ctx: PassContext,
  s3: S3Server,
  bucket: string,
  log: string,
  metadata?: { url: string; password: string },
): Promise<RunningServer> {
  return startOurs(ctx.oursRoot, {
    dataDir: ctx.workDir,
    htpasswdFile: '',
    workDir: ctx.workDir,
    storageArgs: [
      '--storage',
      `s3://${bucket}/${PREFIX}`,
      '--s3-endpoint',
      s3.endpoint,
      '--s3-path-style',
      '--s3-region',
      s3.region,
    ],
    // Its default SQLite store (without PostgreSQL) goes in the run's directory, not the working directory.
    extraArgs: metadata ? ['--metadata', metadata.url] : ['--state-dir', join(ctx.workDir, `state-${bucket}`)],
    secretEnv: { ...s3.env(), ...(metadata ? { REGCTL_METADATA_PASSWORD: metadata.password } : {}) },
    noAuth: true,
    healthTimeoutMs: START_TIMEOUT_MS,
    logName: log,
    ...(ctx.oursNodeFlags ? { nodeFlags: ctx.oursNodeFlags } : {}),
    ...(ctx.profileDir ? { profileDir: ctx.profileDir } : {}),
  });
}

/**
 * Writes the catalog's repositories into `bucket` through the gateway's posix directory (a file per object, the
 * directory tree the keys name), then checks the gateway serves them as objects: every repository listed under
 * the prefix, and one link object read back byte for byte. Files are ~50× faster to write than PUTs through S3.
 */
export async function seedBucket(s3: S3Server, bucket: string, count: number, tagCount: number): Promise<void> {
  await seedVolume(join(s3.rootDir, bucket, PREFIX), count, tagCount);
  await checkSeeded(s3, bucket, count);
}

/** Throws unless the gateway lists exactly `count` seeded repositories and serves the last one's tag link as written. */
export async function checkSeeded(s3: S3Server, bucket: string, count: number): Promise<void> {
  const client = s3.client();
  const repos = `${PREFIX}/docker/registry/v2/repositories/catalog/`;
  let listed = 0;
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: repos, Delimiter: '/', ContinuationToken: token }),
    );
    listed += (page.CommonPrefixes ?? []).length;
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  if (listed !== count) throw new Error(`seeded ${count} repositories in ${bucket}, the gateway lists ${listed}`);
  const last = repoNames(count).at(-1) ?? '';
  const key = `${PREFIX}/docker/registry/v2/repositories/${last}/_manifests/tags/latest/current/link`;
  const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const body = (await got.Body?.transformToString()) ?? '';
  const onDisk = await readFile(join(s3.rootDir, bucket, key), 'utf8');
  if (body !== onDisk || !body.startsWith('sha256:'))
    throw new Error(`the gateway serves ${key} as ${JSON.stringify(body.slice(0, 80))}, not as written`);
}

/** A client sending each request to the next of `clients` in turn: two replicas with no load balancer between. */
export class AlternatingClient extends HttpClient {
  private next = 0;
  constructor(private readonly clients: HttpClient[]) {
    const first = clients[0];
    if (!first) throw new Error('no clients to alternate');
    super(first.host, first.port, undefined, 1);
  }
  override request(method: string, path: string, options?: RequestOptions): Promise<Response> {
    const client = this.clients[this.next++ % this.clients.length] as HttpClient;
    return client.request(method, path, options);
  }
  override origins(): string[] {
    return this.clients.flatMap((c) => c.origins());
  }
  override close(): void {
    super.close();
    for (const c of this.clients) c.close();
  }
}

/** Two servers as one: clients alternate between them; samples are sums over both processes. */
function alternating(servers: RunningServer[]): RunningServer {
  const [first] = servers;
  if (!first) throw new Error('no servers to alternate');
  const sum = async (): Promise<{ peakRssBytes: number; rssBytes: number; cpuSeconds: number }> => {
    const all = await Promise.all(servers.map((s) => s.sample()));
    return all.reduce((a, b) => ({
      peakRssBytes: a.peakRssBytes + b.peakRssBytes,
      rssBytes: a.rssBytes + b.rssBytes,
      cpuSeconds: a.cpuSeconds + b.cpuSeconds,
    }));
  };
  return {
    name: 'ours',
    port: first.port,
    pid: first.pid,
    command: servers.map((s) => s.command).join(' & '),
    client: (creds, maxSockets) => new AlternatingClient(servers.map((s) => s.client(creds, maxSockets))),
    resetPeak: async () => (await Promise.all(servers.map((s) => s.resetPeak()))).every(Boolean),
    sample: sum,
    lifetimePeakBytes: async () => Math.max(...(await Promise.all(servers.map((s) => s.lifetimePeakBytes())))),
    stop: async () => {
      for (const s of servers) await s.stop();
    },
  };
}

/** The S3 phase and the replica comparison (phase id `s3`): one gateway for both, stopped at the end. */
export async function runS3Phases(ctx: PassContext): Promise<void> {
  const missing = [VERSITYGW_BINARY, REFERENCE_V3_BINARY].filter((b) => !existsSync(b));
  if (missing.length > 0) {
    const why = `${missing.join(' and ')} missing: bash test/setup/provision.sh`;
    const spec = s3Phase(ctx.sizes, ctx.pattern, ctx.pool, {}, () => []);
    ctx.phases.push(await runPhase(spec, ctx.phases.length, {}, { ours: why, ref: why }));
    return;
  }
  process.stderr.write('\nbench: starting versitygw for the S3 phases\n');
  const s3 = await launchVersitygw(VERSITYGW_BINARY, ctx.dataRoot);
  try {
    await s3Comparison(ctx, s3);
    await replicaComparison(ctx, s3);
  } finally {
    await s3.stop();
  }
}

async function s3Comparison(ctx: PassContext, s3: S3Server): Promise<void> {
  const count = s3CatalogCount(ctx.sizes);
  const buckets: Record<RegistryName, string> = { ours: 'bench-ours', ref: 'bench-ref' };
  const servers: Partial<Record<RegistryName, RunningServer>> = {};
  const why: Partial<Record<RegistryName, string>> = {};
  const startSeconds: Partial<Record<RegistryName, number>> = {};
  for (const name of ['ours', 'ref'] as const) {
    try {
      await s3.createBucket(buckets[name]);
      process.stderr.write(`bench: seeding ${count} repositories into ${buckets[name]} (untimed)\n`);
      await seedBucket(s3, buckets[name], count, ctx.sizes.tagCount);
      const start = (): Promise<RunningServer> =>
        name === 'ours'
          ? startOursS3(ctx, s3, buckets.ours, 'ours-s3.log')
          : startReferenceS3(
              { workDir: ctx.workDir, healthTimeoutMs: START_TIMEOUT_MS },
              { ...s3, bucket: buckets.ref, rootdirectory: `/${PREFIX}` },
            );
      const { value, seconds } = await timed(start);
      servers[name] = value;
      startSeconds[name] = seconds;
    } catch (err) {
      why[name] = `could not start: ${errorText(err)}`;
      process.stderr.write(`bench: ${name} on S3 ${why[name]}\n`);
    }
  }
  try {
    const ceiling = chunkedCeilingProbe(s3.client(), await s3.createBucket('bench-ceiling'));
    const spec = s3Phase(ctx.sizes, ctx.pattern, ctx.pool, startSeconds, () => Object.values(servers), ceiling);
    ctx.phases.push(await runPhase(spec, ctx.phases.length, servers, why));
  } finally {
    for (const s of Object.values(servers)) await ctx.ledger.stop(s, 'S3 storage (versitygw)', 'S3, no auth');
  }
}

/** A step that writes, run on each of `servers` alone: processes that share nothing each need their own copy. */
function onEach(step: Step, servers: readonly RunningServer[]): Step {
  return async () => {
    const out: Figures = {};
    for (const s of servers) Object.assign(out, await step(s));
    return out;
  };
}

type ReplicaLabel = 'one' | 'two' | 'apart';
const REPLICA_LABELS: ReplicaLabel[] = ['one', 'two', 'apart'];

/** One configuration of the replica comparison, running: its processes, and a server that alternates across them. */
interface ReplicaConfig {
  label: ReplicaLabel;
  started: RunningServer[];
  server: RunningServer;
}

/**
 * One replica, two on one bucket and database, and the control (two processes sharing nothing: a bucket and a
 * database each), all running at once. The blob is pushed to each (to both in the control), pulled interleaved
 * try by try, then each configuration's GET steps run in turn.
 */
async function replicaComparison(ctx: PassContext, s3: S3Server): Promise<void> {
  let pg: PostgresCluster | undefined;
  const spec = s3ReplicaSteps(ctx.sizes, ctx.pattern);
  const configs: ReplicaConfig[] = [];
  try {
    pg = await startPostgres();
    const cluster = pg;
    const peers = { postgres: () => cluster.pid(), s3: () => s3.pid() };
    for (const label of REPLICA_LABELS) configs.push(await startReplicaConfig(ctx, s3, cluster, label));
    for (const c of configs) await onEach(spec.push, c.label === 'apart' ? c.started : [c.server])(c.server);
    process.stderr.write(`\n== ${spec.title}: pulls, interleaved across ${REPLICA_LABELS.join(', ')}\n`);
    const pulls = await interleavedPulls(
      configs.map((c) => ({ label: c.label, server: c.server, processes: c.started.length })),
      PULL_TRIES,
      spec.large,
      { creds: NO_CREDENTIALS, peers },
    );
    const results: PhaseResult[] = [];
    for (const [i, c] of configs.entries()) {
      const steps = s3ReplicaSteps(ctx.sizes, ctx.pattern, peers);
      const [setup, ...gets] = steps.steps;
      if (!setup) throw new Error('the replica steps have no set-up');
      const got = pulls[i] ?? new Error('no pulls');
      const pulled: Step = () => (got instanceof Error ? Promise.reject(got) : Promise.resolve(got));
      const ordered = [pulled, c.label === 'apart' ? onEach(setup, c.started) : setup, ...gets];
      const title = `${steps.title}: ${TITLES[c.label]}`;
      results.push(await runPhase({ ...steps, title, steps: ordered }, ctx.phases.length, { ours: c.server }));
    }
    const [one, two, apart] = results as [PhaseResult, PhaseResult, PhaseResult];
    ctx.phases.push(replicaResult(spec, one, two, ctx.sizes, PULL_TRIES, apart));
  } catch (err) {
    const failed = await runPhase(spec, ctx.phases.length, {}, { ours: `not run: ${errorText(err)}` });
    ctx.phases.push(replicaResult(spec, failed, failed, ctx.sizes, PULL_TRIES));
  } finally {
    for (const c of configs)
      for (const [i, s] of c.started.entries()) await ctx.ledger.stop(s, LEDGER_ROWS[c.label](i), 'S3, no auth');
    await pg?.stop();
  }
}

/** Starts one configuration: its bucket and database, and its one or two processes, one after the other. */
async function startReplicaConfig(
  ctx: PassContext,
  s3: S3Server,
  cluster: PostgresCluster,
  label: ReplicaLabel,
): Promise<ReplicaConfig> {
  const apart = label === 'apart';
  const replicas = label === 'one' ? 1 : 2;
  const started: RunningServer[] = [];
  try {
    const bucket = await s3.createBucket(`bench-replicas-${label}`);
    const db = await cluster.createDatabase();
    // one after the other: the first imports the (empty) bucket into the database, the next finds it done
    for (let i = 0; i < replicas; i++) {
      const own = apart && i > 0;
      const where = own ? await s3.createBucket(`bench-replicas-${label}-${i}`) : bucket;
      const log = `ours-s3-replica-${label}-${i}.log`;
      started.push(await startOursS3(ctx, s3, where, log, own ? await cluster.createDatabase() : db));
    }
  } catch (err) {
    for (const [i, s] of started.entries()) await ctx.ledger.stop(s, LEDGER_ROWS[label](i), 'S3, no auth');
    throw err;
  }
  const server = started.length === 1 ? (started[0] as RunningServer) : alternating(started);
  return { label, started, server };
}

const TITLES = {
  one: 'one replica alone',
  two: 'two replicas, requests alternated',
  apart: 'control, two processes sharing nothing, requests alternated',
} as const;

const LEDGER_ROWS = {
  one: () => 'S3, one replica, PostgreSQL metadata',
  two: (i: number) => `S3, replica ${i + 1} of two, PostgreSQL metadata`,
  apart: (i: number) => `S3, process ${i + 1} of two sharing nothing (control), PostgreSQL metadata`,
} as const;
