import { best, TRIES, type LoopbackProbe } from '../lib/ceilings.js';
import { LargeBlob, logUniformSizes, randomBuffer, smallBlob } from '../lib/data.js';
import { expectStatus, sha256 } from '../lib/http.js';
import type { HttpClient } from '../lib/http.js';
import { runAll, timed } from '../lib/load.js';
import type { MetricSpec } from '../lib/model.js';
import type { Figures, PhaseSpec, Step } from '../lib/phase.js';
import { pullBlob, pushBlobChunked, pushBlobMonolithic } from '../lib/registry-ops.js';
import type { RunningServer } from '../lib/servers.js';
import type { Sizes } from '../lib/sizes.js';
import { mbPerSecond } from '../lib/stats.js';
import type { Credentials } from './context.js';
import { interleavedPulls, type Puller } from './interleaved-pulls.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/**
 * Pulls per registry (each after one download from the ceiling's server). More than the ceilings' TRIES: a
 * 1 GiB pull lasts under two seconds, and on this shared VM single transfers, pulls and ceilings alike, swing by
 * a third from one second to the next (see the notes), so the best of five is steadier than the best of three.
 */
export const PULL_TRIES = 5;

/**
 * Runs `fn` with a client of `server`, after one authenticated `GET /v2/` outside any timing, so a registry that
 * caches verified credentials is not charged its one bcrypt check inside a throughput figure (the reference
 * checks on every request and keeps paying it, as it does in real use).
 */
async function withClient<T>(
  server: RunningServer,
  creds: Credentials,
  sockets: number,
  fn: (c: HttpClient) => Promise<T>,
): Promise<T> {
  const client = server.client(creds, sockets);
  try {
    expectStatus(await client.request('GET', '/v2/'), 200, 'GET /v2/ before the step');
    return await fn(client);
  } finally {
    client.close();
  }
}

/** The large-blob phase, and its pull of the monolithically pushed blob on its own. */
export interface LargeBlobPhase extends PhaseSpec, Puller {}

/**
 * One large blob pushed monolithically, another pushed in PATCHes, the first pulled back and hashed. `probe`
 * measures the loopback ceilings again inside the steps, beside the figures held against them: on a shared VM
 * the ceilings drift by tens of percent within minutes, so a ceiling from the start of the run says little
 * about the minute of the pull.
 */
export function largeBlobPhase(
  sizes: Sizes,
  creds: Credentials,
  pattern: Buffer,
  probe: () => LoopbackProbe | undefined,
  opts: {
    pulls?: boolean;
    interleaveWith?: () => readonly RunningServer[];
    /** Measures the S3 chunked-push ceiling (`bench/lib/s3-ceiling.ts`) just before each chunked push: figures. */
    chunkedCeiling?: (blob: LargeBlob) => Promise<Figures>;
  } = {},
): LargeBlobPhase {
  const pulls = opts.pulls ?? true;
  const count = sizes.largeBlobBytes / sizes.chunkBytes;
  const label = `${sizes.largeBlobBytes / MiB} MiB`;
  const blobs = new Map<string, { mono: LargeBlob; chunked: LargeBlob }>();
  const blobsFor = (server: RunningServer): { mono: LargeBlob; chunked: LargeBlob } => {
    let b = blobs.get(server.name);
    if (!b) {
      b = {
        mono: new LargeBlob(pattern, count, `mono-${server.name}`),
        chunked: new LargeBlob(pattern, count, `chunked-${server.name}`),
      };
      blobs.set(server.name, b);
    }
    return b;
  };
  const pulledBytes = (server: RunningServer): number => blobsFor(server).mono.size;
  const pullOnce = async (server: RunningServer, client: HttpClient): Promise<number> => {
    const { mono } = blobsFor(server);
    return mbPerSecond(mono.size, (await timed(() => pullBlob(client, 'bench/large', mono.digest, mono.size))).seconds);
  };
  return {
    id: 'large-blob',
    pullOnce,
    pulledBytes,
    title: `Large blob (${label}): push and pull`,
    description:
      `Monolithic push (POST then one PUT with the whole ${label} body), chunked push (POST, ` +
      `${count} PATCHes of ${sizes.chunkBytes / MiB} MiB with Content-Range, closing PUT), pull (GET, hashed as it ` +
      `streams; best of ${PULL_TRIES}, each try just after one download from the ceiling's server${pulls ? '' : '; left out of this run of the phase'}). Just before ` +
      `each push, the store ceiling is measured again (best of ${TRIES}), so each is compared with a ceiling of the same minutes. ` +
      'Every response is checked: status, Docker-Content-Digest, Range after each PATCH, byte count and ' +
      'sha256 of what was pulled. Bodies come from memory (a random 16 MiB chunk repeated, the first one unique). ' +
      "One authenticated `GET /v2/` precedes each step, untimed. The server's CPU time (user+sys from /proc) per GiB moved is read around each step: unlike MB/s it does not " +
      'depend much on what else the machine is doing.',
    steps: [
      (server): Promise<Figures> =>
        withClient(server, creds, 1, async (c) => {
          const { mono } = blobsFor(server);
          // The store ceiling (the same body received, hashed and stored durably by a trivial server), best of
          // TRIES, just before the push.
          const p = probe();
          const storeCeiling = p ? await best(() => p.upload('store', mono)) : Number.NaN;
          const cpu0 = (await server.sample()).cpuSeconds;
          const { seconds } = await timed(() => pushBlobMonolithic(c, 'bench/large', mono.chunks, mono.digest));
          const cpu = (await server.sample()).cpuSeconds - cpu0;
          const mbps = mbPerSecond(mono.size, seconds);
          return {
            pushMonoMBps: mbps,
            pushMonoCpuPerGiB: cpu / (mono.size / GiB),
            ...(p ? { storeCeilingMBps: storeCeiling, pushMonoShareOfStore: (100 * mbps) / storeCeiling } : {}),
          };
        }),
      (server) =>
        withClient(server, creds, 1, async (c) => {
          const { chunked } = blobsFor(server);
          // The store ceiling again, beside this push: the chunked push is held against it too.
          const p = probe();
          const storeCeiling = p ? await best(() => p.upload('store', chunked)) : Number.NaN;
          const s3Ceiling = opts.chunkedCeiling ? await opts.chunkedCeiling(chunked) : undefined;
          const cpu0 = (await server.sample()).cpuSeconds;
          const { seconds } = await timed(() => pushBlobChunked(c, 'bench/large', chunked.chunks, chunked.digest));
          const cpu = (await server.sample()).cpuSeconds - cpu0;
          const mbps = mbPerSecond(chunked.size, seconds);
          const s3Share = s3Ceiling?.s3ChunkedCeilingMBps;
          return {
            ...s3Ceiling,
            ...(s3Share === undefined ? {} : { pushChunkedShareOfS3Ceiling: (100 * mbps) / s3Share }),
            pushChunkedMBps: mbps,
            pushChunkedCpuPerGiB: cpu / (chunked.size / GiB),
            ...(p
              ? { chunkedStoreCeilingMBps: storeCeiling, pushChunkedShareOfStore: (100 * mbps) / storeCeiling }
              : {}),
          };
        }),
      ...(!pulls
        ? []
        : opts.interleaveWith
          ? [interleavedPullStep(creds, opts.interleaveWith, { pullOnce, pulledBytes })]
          : [pullStepFor(creds, probe, blobsFor, pullOnce)]),
    ],
    metrics: pulls ? [...pushMetrics(label, sizes), ...PULL_METRICS] : pushMetrics(label, sizes),
  };
}

/** The large-blob pull step: written apart so the phase can leave it out (a pull is one request, whatever the auth). */
function pullStepFor(
  creds: Credentials,
  probe: () => LoopbackProbe | undefined,
  blobsFor: (s: RunningServer) => { mono: LargeBlob },
  pullOnce: LargeBlobPhase['pullOnce'],
): Step {
  return (server) =>
    withClient(server, creds, 1, async (c) => {
      // The best of PULL_TRIES pulls. With a probe, each pull follows one download from the ceiling's server, and
      // the share is the best pull over the best of those downloads.
      const { mono } = blobsFor(server);
      const p = probe();
      const pulls: number[] = [];
      const ceilings: number[] = [];
      let cpu = 0;
      for (let i = 0; i < PULL_TRIES; i++) {
        if (p) ceilings.push(await p.download(mono.size));
        const cpu0 = (await server.sample()).cpuSeconds;
        pulls.push(await pullOnce(server, c));
        cpu += (await server.sample()).cpuSeconds - cpu0;
      }
      const pullMBps = Math.max(...pulls);
      const ceiling = p ? Math.max(...ceilings) : Number.NaN;
      return {
        pullMBps,
        pullCpuPerGiB: cpu / ((PULL_TRIES * mono.size) / GiB),
        ...(p ? { pullCeilingMBps: ceiling, pullShareOfCeiling: (100 * pullMBps) / ceiling } : {}),
      };
    });
}

/**
 * The pull step of servers compared with pulls interleaved (`interleaved-pulls.ts`): at the first server's turn,
 * every server of `servers()` pulls, try by try; each server's turn then reports its own figures or error.
 */
function interleavedPullStep(creds: Credentials, servers: () => readonly RunningServer[], puller: Puller): Step {
  let results: Map<RunningServer, Figures | Error> | undefined;
  return async (server) => {
    if (!results) {
      const all = servers();
      const configs = all.map((s) => ({ label: s.name, server: s, processes: 1 }));
      const got = await interleavedPulls(configs, PULL_TRIES, puller, { creds });
      results = new Map(all.map((s, i) => [s, got[i] ?? new Error('no result')]));
    }
    const figures = results.get(server);
    if (figures === undefined) throw new Error(`${server.name} is not among the servers whose pulls are interleaved`);
    if (figures instanceof Error) throw figures;
    return figures;
  };
}

/** Every push is held against the store ceiling measured just before it, on this machine, in the same minutes. */
function pushMetrics(label: string, sizes: Sizes): MetricSpec[] {
  return [
    { id: 'pushMonoMBps', label: `Monolithic push, ${label}`, unit: 'MB/s', better: 'higher' },
    {
      id: 'pushMonoShareOfStore',
      label: `Monolithic push as a share of the store ceiling measured just before it (best of ${TRIES}; see Ceilings)`,
      unit: '%',
      better: 'higher',
      targets: [{ kind: 'min', value: 90 }],
    },
    {
      id: 'pushChunkedMBps',
      label: `Chunked push, ${label}, ${sizes.chunkBytes / MiB} MiB PATCHes`,
      unit: 'MB/s',
      better: 'higher',
    },
    {
      id: 'pushChunkedShareOfStore',
      label: `Chunked push as a share of the store ceiling measured just before it (best of ${TRIES})`,
      unit: '%',
      better: 'higher',
      targets: [{ kind: 'min', value: 90 }],
    },
    {
      id: 'storeCeilingMBps',
      label: 'Store ceiling measured just before the monolithic push (receive, hash, write, fsync)',
      unit: 'MB/s',
      better: 'higher',
    },
    {
      id: 'chunkedStoreCeilingMBps',
      label: 'Store ceiling measured just before the chunked push',
      unit: 'MB/s',
      better: 'higher',
    },
    { id: 'pushMonoCpuPerGiB', label: 'Server CPU per GiB, monolithic push', unit: 's/GiB', better: 'lower' },
    {
      id: 'pushChunkedCpuPerGiB',
      label: 'Server CPU per GiB, chunked push (includes auth of each PATCH)',
      unit: 's/GiB',
      better: 'lower',
    },
  ];
}

const PULL_METRICS: MetricSpec[] = [
  {
    id: 'pullMBps',
    label: `Pull, client hashes, best of ${PULL_TRIES}`,
    unit: 'MB/s',
    better: 'higher',
    targets: [{ kind: 'ratio-min', value: 1 }],
  },
  {
    id: 'pullShareOfCeiling',
    label: `Pull as a share of the loopback download ceiling, the two measured alternately (best of ${PULL_TRIES} each)`,
    unit: '%',
    better: 'higher',
    targets: [{ kind: 'min', value: 90 }],
  },
  {
    id: 'pullCeilingMBps',
    label: 'Loopback download ceiling measured between the pulls (see Ceilings)',
    unit: 'MB/s',
    better: 'higher',
  },
  { id: 'pullCpuPerGiB', label: 'Server CPU per GiB, pull', unit: 's/GiB', better: 'lower' },
];

/** Small blobs of log-uniform sizes pushed monolithically (POST + PUT each) at a fixed concurrency. */
export function smallBlobPhase(sizes: Sizes, creds: Credentials, pool: Buffer, round = 0): PhaseSpec {
  const list = logUniformSizes(sizes.smallBlobCount, sizes.smallBlobMin, sizes.smallBlobMax, 6);
  const total = list.reduce((a, b) => a + b, 0);
  return {
    id: 'small-blobs',
    title: `${sizes.smallBlobCount} small blobs (${sizes.smallBlobMin / 1024} KiB–${sizes.smallBlobMax / MiB} MiB) at concurrency ${sizes.smallBlobConcurrency}`,
    description:
      `${sizes.smallBlobCount} blobs, ${(total / MiB).toFixed(1)} MiB in all, sizes log-uniform from a fixed seed, each ` +
      `pushed as POST + PUT with its digest, ${sizes.smallBlobConcurrency} at a time, Basic auth on every request; ` +
      'each PUT checked for 201 and its Docker-Content-Digest.',
    steps: [smallBlobStep(sizes, creds, pool, list, `r${round}`)],
    metrics: [
      {
        id: 'smallSeconds',
        label: `Push ${sizes.smallBlobCount} blobs, total time`,
        unit: 's',
        better: 'lower',
        targets: [{ kind: 'ratio-max', value: 0.5 }],
      },
      { id: 'smallBlobsPerSecond', label: 'Blobs per second', unit: 'blob/s', better: 'higher' },
    ],
  };
}

export function smallBlobStep(sizes: Sizes, creds: Credentials, pool: Buffer, list: number[], tag: string): Step {
  return (server) =>
    withClient(server, creds, sizes.smallBlobConcurrency, async (c) => {
      const blobs = list.map((size, i) => {
        const data = smallBlob(pool, size, `${server.name}-${tag}-${i}`);
        return { data, digest: sha256(data) };
      });
      const seconds = await runAll(sizes.smallBlobConcurrency, blobs, (b) =>
        pushBlobMonolithic(c, `bench/small-${tag}`, b.data, b.digest),
      );
      return { smallSeconds: seconds, smallBlobsPerSecond: blobs.length / seconds };
    });
}

export function patternBuffer(sizes: Sizes): Buffer {
  return randomBuffer(sizes.chunkBytes);
}
