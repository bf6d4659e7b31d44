/**
 * What one request and one GiB cost each process of a deployment on S3 + PostgreSQL (the registry, PostgreSQL, the
 * S3 gateway), read from /proc around the replica comparison's steps on one replica, and the model of N replicas
 * (on as many hosts) built from them: the registry tier grows with its replicas, the shared metadata store does not.
 */
import type { MetricSpec } from '../lib/model.js';
import type { Figures, Step } from '../lib/phase.js';
import { sampleProcess } from '../lib/proc.js';
import type { RunningServer } from '../lib/servers.js';
import type { Sizes } from '../lib/sizes.js';

const GiB = 1024 * 1024 * 1024;

/** The shared services' main processes (their children are counted with them). */
export interface PeerProcesses {
  postgres(): Promise<number>;
  s3(): number | undefined;
}

export type CostedProcess = 'ours' | 'postgres' | 's3';
const PROCESSES: CostedProcess[] = ['ours', 'postgres', 's3'];

/** The CPU seconds so far of the registry (every replica of `server`), PostgreSQL and the S3 gateway. */
export async function cpuNow(server: RunningServer, peers: PeerProcesses): Promise<Record<CostedProcess, number>> {
  const s3 = peers.s3();
  return {
    ours: (await server.sample()).cpuSeconds,
    postgres: (await sampleProcess(await peers.postgres())).cpuSeconds,
    s3: s3 === undefined ? Number.NaN : (await sampleProcess(s3)).cpuSeconds,
  };
}

/** The figures `cpu.KEY.PROCESS`: what each process spent between two readings of `cpuNow`. */
export function cpuSpent(
  key: string,
  before: Record<CostedProcess, number>,
  after: Record<CostedProcess, number>,
): Figures {
  const spent: Figures = {};
  for (const p of PROCESSES) spent[`cpu.${key}.${p}`] = after[p] - before[p];
  return spent;
}

/** `step`, with the CPU seconds the registry (every replica), PostgreSQL and the S3 gateway spent during it. */
export function costed(step: Step, key: string, peers: PeerProcesses): Step {
  return async (server) => {
    const before = await cpuNow(server, peers);
    const figures = await step(server);
    return { ...figures, ...cpuSpent(key, before, await cpuNow(server, peers)) };
  };
}

/** The replica counts the model is drawn for. */
export const MODEL_HOSTS = [1, 2, 4, 8, 16];

/** Registry CPU per manifest GET (µs), PostgreSQL's, and each process's CPU per GiB pulled, from one run's figures. */
export function unitCosts(figures: Figures, sizes: Sizes, pullTries: number): Figures {
  const requests = figures['get.c16.requests'] ?? Number.NaN;
  const gib = (pullTries * sizes.largeBlobBytes) / GiB;
  const out: Figures = {};
  for (const p of PROCESSES) {
    out[`cost.get.${p}`] = (1e6 * (figures[`cpu.get.${p}`] ?? Number.NaN)) / requests;
    out[`cost.pull.${p}`] = (figures[`cpu.pull.${p}`] ?? Number.NaN) / gib;
  }
  return out;
}

/**
 * The model: a replica is one process whose requests run on one core (its event loop), so N replicas, each with a
 * core of its own (on as many hosts as that takes), serve at most N / (registry CPU per GET) manifest GETs per
 * second and pull at most N / (registry CPU per GiB) GiB/s; one core of PostgreSQL serves 1 / (its CPU per GET)
 * GETs per second whatever N is, which is where adding replicas stops helping. Network, disk and S3 itself are
 * left out (S3 scales on its side; the gateway's cost is reported, not modelled).
 */
export function modelFigures(costs: Figures): Figures {
  const out: Figures = {};
  const perGet = (costs['cost.get.ours'] ?? Number.NaN) / 1e6;
  const perGiB = costs['cost.pull.ours'] ?? Number.NaN;
  for (const n of MODEL_HOSTS) {
    out[`model.get.${n}`] = n / perGet;
    out[`model.pull.${n}`] = n / perGiB;
  }
  out['model.get.postgresCore'] = 1e6 / (costs['cost.get.postgres'] ?? Number.NaN);
  return out;
}

/** The unit costs measured on two replicas (both processes' CPU over the work of both), as `costTwo.*`. */
export function twoReplicaCosts(figures: Figures, sizes: Sizes, pullTries: number): Figures {
  return Object.fromEntries(
    Object.entries(unitCosts(figures, sizes, pullTries)).map(([k, v]) => [k.replace(/^cost\./, 'costTwo.'), v]),
  );
}

/** The rows of the unit costs (on one replica and on two) and the model (ours only, no targets). */
export function costSpecs(): MetricSpec[] {
  const who: Record<CostedProcess, string> = { ours: 'the registry', postgres: 'PostgreSQL', s3: 'the S3 gateway' };
  const specs: MetricSpec[] = [];
  for (const [prefix, on] of [
    ['cost', 'one replica'],
    ['costTwo', 'two replicas'],
  ] as const) {
    for (const [work, per, unit] of [
      ['get', 'manifest GET', 'µs'],
      ['pull', 'GiB pulled', 's/GiB'],
    ] as const)
      for (const p of PROCESSES)
        specs.push({
          id: `${prefix}.${work}.${p}`,
          label: `CPU of ${who[p]} per ${per}, ${on}`,
          unit,
          better: 'lower',
        });
  }
  specs.push({
    id: 'model.get.postgresCore',
    label: 'Model: manifest GETs/s one PostgreSQL core serves (1 / its CPU per GET)',
    unit: 'req/s',
    better: 'higher',
  });
  for (const n of MODEL_HOSTS)
    specs.push({
      id: `model.get.${n}`,
      label: `Model: manifest GETs/s of ${n} replica${n === 1 ? '' : 's'}, a core each`,
      unit: 'req/s',
      better: 'higher',
    });
  for (const n of MODEL_HOSTS)
    specs.push({
      id: `model.pull.${n}`,
      label: `Model: GiB/s pulled through ${n} replica${n === 1 ? '' : 's'}, a core each`,
      unit: 'GiB/s',
      better: 'higher',
    });
  return specs;
}
