import { metric } from '../lib/model.js';
import type { Metric, MetricSpec, PhaseResult } from '../lib/model.js';
import type { LargeBlob } from '../lib/data.js';
import type { Figures, PhaseSpec, Step } from '../lib/phase.js';
import type { RunningServer } from '../lib/servers.js';
import type { Sizes } from '../lib/sizes.js';
import type { Target } from '../lib/stats.js';
import { largeBlobPhase, smallBlobPhase } from './blobs.js';
import { catalogWalkStep } from './catalog.js';
import type { Credentials } from './context.js';
import type { Puller } from './interleaved-pulls.js';
import { manifestPhase, type ManifestOp } from './manifests.js';
import { costSpecs, costed, modelFigures, twoReplicaCosts, unitCosts, type PeerProcesses } from './replica-costs.js';

const MiB = 1024 * 1024;

/** Neither registry checks credentials in the S3 phases: the clients send none (see startOurs' `noAuth`). */
export const NO_CREDENTIALS: Credentials = { user: '', password: '' };

/** The small blobs of the S3 phase (fewer with --quick, whose own count is smaller). */
export function s3SmallBlobCount(sizes: Sizes): number {
  return Math.min(100, sizes.smallBlobCount);
}

/** The repositories seeded for the S3 catalog walk: the run's largest catalog (10,000 in a full run). */
export function s3CatalogCount(sizes: Sizes): number {
  return Math.max(...sizes.catalogCounts);
}

/** The targets of the S3 phase, ours / reference, from the issue. */
export const S3_TARGETS = {
  push: [{ kind: 'ratio-min', value: 2 }],
  pull: [{ kind: 'ratio-min', value: 1 }],
  manifestGet: [{ kind: 'ratio-min', value: 5 }],
  /** A duration: the reference's time ≥ 20× ours, i.e. ours / reference ≤ 1/20. */
  catalogWalk: [{ kind: 'ratio-max', value: 0.05 }],
  /** Two replicas against one: at most 10 % fewer requests/s or MB/s. */
  replicaLoss: [{ kind: 'max', value: 10 }],
} satisfies Record<string, Target[]>;

const SETUP_WORDS =
  'Both registries run without auth (the clients send no credentials, so no credential cache is in any figure) and ' +
  "store in their own bucket on the same versitygw (its posix backend under the run's data directory, the disk of the other phases; " +
  'started with `--keep-alive`, as S3 services keep connections open, where its default closes each after one answer), S3 redirects ' +
  'off, so every blob byte passes through the registry. Ours: `regctl serve --storage s3://BUCKET/bench ' +
  '--s3-endpoint URL --s3-path-style --s3-region us-east-1 --no-auth`, keys in AWS_ACCESS_KEY_ID and ' +
  'AWS_SECRET_ACCESS_KEY; its metadata is the default for S3 storage: an embedded SQLite file in its state ' +
  'directory, imported from the bucket at its first start. ' +
  'Reference: distribution v3 (`registry-v3`) with its S3 driver (path style, `redirect.disable: true`, keys in ' +
  'its environment).';

/**
 * The S3 phase: the catalog walk of the seeded repositories (first, while the buckets hold only those), the
 * large-blob pushes and pull, manifest GET at concurrency 1 and 16 and PUT at 16, and small blobs: the steps of
 * the filesystem phases, run on S3 storage, with the S3 targets.
 */
export function s3Phase(
  sizes: Sizes,
  pattern: Buffer,
  pool: Buffer,
  startSeconds: Partial<Record<'ours' | 'ref', number>>,
  servers: () => readonly RunningServer[],
  chunkedCeiling?: (blob: LargeBlob) => Promise<Figures>,
): PhaseSpec {
  const creds = NO_CREDENTIALS;
  const count = s3CatalogCount(sizes);
  const n = sizes.pageSize;
  const large = largeBlobPhase(sizes, creds, pattern, () => undefined, {
    pulls: true,
    interleaveWith: servers,
    ...(chunkedCeiling ? { chunkedCeiling } : {}),
  });
  const manifests = manifestPhase(sizes, creds, {
    putTarget: false,
    cells: [
      ['get', 1],
      ['get', 16],
      ['put', 16],
    ],
  });
  const smallCount = s3SmallBlobCount(sizes);
  const small = smallBlobPhase({ ...sizes, smallBlobCount: smallCount }, creds, pool);
  const label = `${sizes.largeBlobBytes / MiB} MiB`;
  const repos = count.toLocaleString('en-US');
  return {
    id: 's3',
    title: `S3 storage (versitygw): catalog of ${repos} repositories, ${label} blob, manifests, ${smallCount} small blobs`,
    description:
      `${SETUP_WORDS} Seeding, untimed: before the registries start, each bucket gets ${repos} repositories ` +
      `(one tagged image each, and ${sizes.tagCount} more tags on one) written as files into the gateway's posix ` +
      'directory, in the layout both registries store; the gateway is checked to list every repository and to ' +
      'serve a link object byte for byte before anything is timed. Start time is to the first healthy answer (ours ' +
      `imports the bucket into its SQLite metadata then; its upload purge, which also starts then, lists the bucket in pages of a thousand keys). The catalog is walked with n=${n} twice (every page checked, ` +
      'the whole list against what was seeded); then the large blob is pushed monolithically and in ' +
      `${sizes.chunkBytes / MiB} MiB PATCHes and pulled five times from each registry, hashed, the two interleaved ` +
      "try by try (ours then the reference's, then the other way round), so that the machine's drift over the " +
      'minutes of the pulls falls on both alike (best and median of the five); manifests are fetched at concurrency ' +
      `1 and 16 and put at 16 (${sizes.manifestSeconds} s each), and ${smallCount} small blobs are pushed ` +
      `${sizes.smallBlobConcurrency} at a time. Every response is checked as in the filesystem phases. Just before ` +
      "each registry's chunked push, the S3 chunked-push ceiling is measured (`bench/lib/s3-ceiling.ts`): a bare S3 " +
      'client in the bench process, no registry, does the S3 work that a chunked push needs from any registry that ' +
      "keeps distribution's layout and lets an upload go on from another replica: each chunk staged in S3 as it " +
      "arrives, then written again under the blob's key once the digest is known (S3 has no rename). Two layouts, " +
      'each once, the better one the ceiling: the chunks as parts of one multipart upload, completed, then copied ' +
      'in 32 MiB ranges four at a time into an upload at the blob key and that completed (what both registries do); ' +
      'or each chunk an object of its own, each copied whole as one part. The client stages two chunks at once, signs ' +
      'each request through the AWS SDK (as ours), does not hash the blob and does not wait for the staged data to be ' +
      'deleted: an upper bound for a registry on this gateway.',
    steps: [
      catalogWalkStep(creds, count, n, 'cold', startSeconds),
      catalogWalkStep(creds, count, n, 'warm', startSeconds),
      ...large.steps,
      ...manifests.steps,
      ...small.steps,
    ],
    metrics: s3Metrics(sizes, label, repos, manifests.metrics, small.metrics),
  };
}

function s3Metrics(
  sizes: Sizes,
  label: string,
  repos: string,
  manifestSpecs: MetricSpec[],
  smallSpecs: MetricSpec[],
): MetricSpec[] {
  const untargeted = (m: MetricSpec): MetricSpec => {
    const { targets: _targets, ...rest } = m;
    return rest;
  };
  const manifestRows = manifestSpecs.map((m) =>
    m.id === 'get.c1.rps' || m.id === 'get.c16.rps' ? { ...m, targets: S3_TARGETS.manifestGet } : untargeted(m),
  );
  const n = sizes.pageSize;
  return [
    { id: 'startSeconds', label: `Start on the seeded bucket to first healthy answer`, unit: 's', better: 'lower' },
    {
      id: 'walk.cold.seconds',
      label: `Walk ${repos} repositories, n=${n}, first walk after start`,
      unit: 's',
      better: 'lower',
      targets: S3_TARGETS.catalogWalk,
    },
    {
      id: 'walk.warm.seconds',
      label: `Walk ${repos} repositories, n=${n}, second walk`,
      unit: 's',
      better: 'lower',
      targets: S3_TARGETS.catalogWalk,
    },
    { id: 'walk.cold.pages', label: 'Pages in the walk', unit: 'pages', better: 'lower' },
    {
      id: 'pushMonoMBps',
      label: `Monolithic push, ${label}`,
      unit: 'MB/s',
      better: 'higher',
      targets: S3_TARGETS.push,
    },
    {
      id: 'pushChunkedMBps',
      label: `Chunked push, ${label}, ${sizes.chunkBytes / MiB} MiB PATCHes`,
      unit: 'MB/s',
      better: 'higher',
      targets: S3_TARGETS.push,
    },
    {
      id: 's3ChunkedCeilingMBps',
      label:
        "S3 chunked-push ceiling: the S3 work of a chunked push in distribution's layout done by a bare client, no " +
        'registry, just before this push (the better of its two layouts)',
      unit: 'MB/s',
      better: 'higher',
    },
    {
      id: 's3ChunkedCeiling.staged',
      label: 'S3 chunked-push ceiling, chunks staged as one multipart upload (what both registries do)',
      unit: 'MB/s',
      better: 'higher',
    },
    {
      id: 's3ChunkedCeiling.objects',
      label: 'S3 chunked-push ceiling, chunks staged as objects of their own',
      unit: 'MB/s',
      better: 'higher',
    },
    {
      id: 'pushChunkedShareOfS3Ceiling',
      label: 'Chunked push as a share of the S3 chunked-push ceiling measured just before it',
      unit: '%',
      better: 'higher',
    },
    {
      id: 'pullMBps',
      label: 'Pull, client hashes, best of 5 interleaved with the other registry',
      unit: 'MB/s',
      better: 'higher',
      targets: S3_TARGETS.pull,
    },
    {
      id: 'pullMedianMBps',
      label: 'Pull, client hashes, median of the same 5',
      unit: 'MB/s',
      better: 'higher',
    },
    { id: 'pushMonoCpuPerGiB', label: 'Server CPU per GiB, monolithic push', unit: 's/GiB', better: 'lower' },
    { id: 'pushChunkedCpuPerGiB', label: 'Server CPU per GiB, chunked push', unit: 's/GiB', better: 'lower' },
    { id: 'pullCpuPerGiB', label: 'Server CPU per GiB, pull', unit: 's/GiB', better: 'lower' },
    ...manifestRows,
    ...smallSpecs.map(untargeted),
  ];
}

/** The replica comparison's parts: the push that puts the blob there, the pulls (run interleaved), the GET steps. */
export interface ReplicaSteps extends PhaseSpec {
  /** The large blob pushed once, so it is there to pull (its figures are not reported). */
  push: Step;
  /** One pull of that blob: the comparison runs them interleaved across its configurations. */
  large: Puller;
}

/**
 * The steps the replica comparison runs on one replica and on two: the large blob pushed once, pulled (the
 * pulls interleaved across the configurations, outside `steps`), and one manifest fetched at concurrency 16
 * (`steps`: its set-up and the two GET loads).
 */
export function s3ReplicaSteps(sizes: Sizes, pattern: Buffer, peers?: PeerProcesses): ReplicaSteps {
  const large = largeBlobPhase(sizes, NO_CREDENTIALS, pattern, () => undefined, { pulls: true });
  const [monoPush] = large.steps;
  if (!monoPush) throw new Error('the large-blob phase no longer has its push step');
  const cells: [ManifestOp, number][] = [
    ['get', 16],
    ['get-lean', 16],
  ];
  const manifests = manifestPhase(sizes, NO_CREDENTIALS, { putTarget: false, cells });
  const [setup, get, getLean] = manifests.steps;
  if (!setup || !get || !getLean || manifests.steps.length !== 3)
    throw new Error('the manifest phase no longer has its set-up and two GET steps');
  return {
    id: 's3-replicas',
    title: 'S3 storage, two replicas of ours on one bucket and one PostgreSQL metadata store',
    description:
      'Two `regctl serve` processes on the same bucket (versitygw) sharing one PostgreSQL database ' +
      '(`--metadata postgres://…`, the password in REGCTL_METADATA_PASSWORD), no auth, S3 redirects off. No load ' +
      'balancer is in the path: the bench client alternates its requests between the two ports (one keep-alive ' +
      'pool per port), so the figures hold what two processes on one bucket and one database cost, not a proxy. ' +
      'The same steps run on one replica on the same kind of metadata (PostgreSQL, its own fresh bucket ' +
      'and database), and the loss is 100 × (1 − two / one). As a control, two processes that share nothing ' +
      '(each its own bucket and its own database on the same PostgreSQL, the image pushed to each) under the same ' +
      'alternating client: their loss against one is what two processes sharing this host cost without any ' +
      'coordination, and the loss of the two replicas against them is the price of sharing the bucket and the ' +
      'metadata. All three configurations (five processes) run at once from the start. The large blob is pushed ' +
      'once to each (not reported), then pulled and hashed five times from each, interleaved: each try pulls ' +
      'once from every configuration, the order moved on by one at every try, so that the drift of this shared ' +
      'VM over minutes falls on all three alike (run one after the other, they differed by more between runs ' +
      'than the loss measured); a configuration of two alternates its pulls between its processes. Then, one ' +
      `configuration after the other, one manifest is fetched at concurrency 16 for ${sizes.manifestSeconds} s by the ` +
      "bench's `node:http` client, then as long by a lean client (autocannon, 16 connections split evenly between " +
      'the ports, every body compared with the manifest). The `node:http` client itself takes about a core at ' +
      'this rate, so on two cores it competes with the replicas it loads; the lean one takes about half a core and ' +
      'leaves one replica bound by its own event loop, so its row is the one that measures the replicas, and the ' +
      'one the target is on; the other row shows what a client as hungry as the servers makes of the same host. ' +
      "Resources are the two replicas' sums over both processes during the GET steps. The CPU of the registry, " +
      'PostgreSQL and the S3 gateway is read from /proc around each pull and the GETs on one replica (the other ' +
      "configurations' processes idle beside it; their beats are in PostgreSQL's figure), and divided by the GiB " +
      'pulled and the GETs made: ' +
      'the unit costs below. The model from them: a replica is one process whose requests run on one core (its event ' +
      'loop), so N replicas with a core each serve N / (registry CPU per GET) GETs/s and pull N / (registry CPU per ' +
      'GiB) GiB/s. A replica answers a GET by tag from its tag cache, so PostgreSQL sees only what is left of a GET ' +
      '(pull times, written once a second per replica); where that CPU is above zero, one core of PostgreSQL serves ' +
      '1 / (its CPU per GET) GETs/s however many replicas ask. What the replicas cost PostgreSQL whatever the load: ' +
      'each sends 4 beats a second, delivered to every replica (4 × N² notifications a second), and each tag write ' +
      'notifies every replica and is acknowledged by each, the acknowledgements also delivered to every replica (about N²). Network, disk and S3 itself are left out of the model.',
    steps: peers ? [setup, costed(get, 'get', peers), getLean] : [setup, get, getLean],
    metrics: replicaFigureSpecs(),
    push: monoPush,
    large,
  };
}

/** How much two replicas lose against one, percent (negative: they gain); NaN when either is not measured. */
export function lossPercent(one: number | undefined, two: number | undefined): number {
  if (one === undefined || two === undefined || !Number.isFinite(one) || !Number.isFinite(two) || one <= 0)
    return Number.NaN;
  return 100 * (1 - two / one);
}

/** The rows of one figure in the replica comparison. */
export interface ReplicaRows {
  one: MetricSpec;
  two: MetricSpec;
  /** Two replicas against one: the target. */
  loss: MetricSpec;
  /** The control: two processes that share nothing (their own bucket and database), requests alternated. */
  apart: MetricSpec;
  /** Two processes sharing nothing against one: what sharing this host's cores alone costs. */
  apartLoss: MetricSpec;
  /** Two replicas against two processes sharing nothing: what sharing the bucket and the metadata costs. */
  coordination: MetricSpec;
}

/** The metric specs of the replica comparison: each figure on one and on two replicas, and the loss (target). */
export function replicaMetricSpecs(): { id: string; figure: string; specs: ReplicaRows }[] {
  const rows: [string, string, string, boolean][] = [
    ['get-lean.c16.rps', 'Manifest GET c=16 requests/s, lean client', 'req/s', true],
    ['get.c16.rps', 'Manifest GET c=16 requests/s, node:http client (about a core itself)', 'req/s', false],
    ['pullMBps', 'Pull, client hashes, best of 5', 'MB/s', true],
    ['pullMedianMBps', 'Pull, client hashes, median of the same 5', 'MB/s', false],
  ];
  return rows.map(([figure, label, unit, targeted]) => ({
    id: figure,
    figure,
    specs: {
      one: {
        id: `replicas.one.${figure}`,
        label: `${label}, one replica (PostgreSQL metadata)`,
        unit,
        better: 'higher',
      },
      two: {
        id: `replicas.two.${figure}`,
        label: `${label}, two replicas, requests alternated`,
        unit,
        better: 'higher',
      },
      loss: {
        id: `replicas.loss.${figure}`,
        label: `${label}: loss of two replicas against one`,
        unit: '%',
        better: 'lower',
        ...(targeted ? { targets: S3_TARGETS.replicaLoss } : {}),
      },
      apart: {
        id: `replicas.apart.${figure}`,
        label: `${label}, control: two processes sharing nothing (own bucket, own database), requests alternated`,
        unit,
        better: 'higher',
      },
      apartLoss: {
        id: `replicas.apartLoss.${figure}`,
        label: `${label}, control: loss of two processes sharing nothing against one`,
        unit: '%',
        better: 'lower',
      },
      coordination: {
        id: `replicas.coordination.${figure}`,
        label: `${label}: loss of two replicas against two processes sharing nothing (the price of sharing)`,
        unit: '%',
        better: 'lower',
      },
    },
  }));
}

/**
 * The replica comparison's report: one phase from the runs on one replica (`one`), on two (`two`) and, when
 * run, on two processes that share nothing (`apart`, the control that tells sharing the host from sharing the
 * bucket and the metadata).
 */
export function replicaResult(
  spec: PhaseSpec,
  one: PhaseResult,
  two: PhaseResult,
  sizes: Sizes,
  pullTries: number,
  apart?: PhaseResult,
): PhaseResult {
  const figure = (r: PhaseResult | undefined, id: string): number | undefined =>
    r !== undefined && r.errors.ours === undefined ? r.metrics.find((m) => m.id === id)?.ours : undefined;
  const percent = (v: number): number | undefined => (Number.isNaN(v) ? undefined : v);
  const metrics: Metric[] = replicaMetricSpecs().flatMap(({ figure: id, specs }) => {
    const a = figure(one, id);
    const b = figure(two, id);
    const c = figure(apart, id);
    return [
      metric(specs.one, a, undefined),
      metric(specs.two, b, undefined),
      metric(specs.loss, percent(lossPercent(a, b)), undefined),
      metric(specs.apart, c, undefined),
      metric(specs.apartLoss, percent(lossPercent(a, c)), undefined),
      metric(specs.coordination, percent(lossPercent(c, b)), undefined),
    ];
  });
  const measured = (r: PhaseResult): Record<string, number> =>
    r.errors.ours === undefined
      ? Object.fromEntries(r.metrics.flatMap((m) => (m.ours === undefined ? [] : [[m.id, m.ours]])))
      : {};
  const costs = unitCosts(measured(one), sizes, pullTries);
  const modelled = { ...costs, ...twoReplicaCosts(measured(two), sizes, pullTries), ...modelFigures(costs) };
  for (const spec of costSpecs()) {
    const v = modelled[spec.id];
    metrics.push(metric(spec, v !== undefined && Number.isFinite(v) ? v : undefined, undefined));
  }
  const errors: PhaseResult['errors'] = {};
  const failed = [
    one.errors.ours && `one replica: ${one.errors.ours}`,
    two.errors.ours && `two: ${two.errors.ours}`,
    apart?.errors.ours && `two sharing nothing: ${apart.errors.ours}`,
  ];
  if (failed.some(Boolean)) errors.ours = failed.filter(Boolean).join('; ');
  return {
    id: spec.id,
    title: spec.title,
    description: spec.description,
    order: ['ours'],
    metrics,
    resources: two.resources.ours ? { ours: two.resources.ours } : {},
    errors,
  };
}

/** The figures the replica runs must report, so `runPhase` keeps them (ours only; no targets there). */
export function replicaFigureSpecs(): MetricSpec[] {
  const costInputs: MetricSpec[] = ['get.c16.requests', ...['get', 'pull'].flatMap((k) => costedIds(k))].map((id) => ({
    id,
    label: id,
    unit: id.startsWith('cpu.') ? 's' : 'requests',
    better: 'lower',
  }));
  return [...replicaMetricSpecs().map(({ figure, specs }) => ({ ...specs.one, id: figure })), ...costInputs];
}

function costedIds(key: string): string[] {
  return ['ours', 'postgres', 's3'].map((p) => `cpu.${key}.${p}`);
}
