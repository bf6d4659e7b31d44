/**
 * Pulls compared across servers, interleaved: every server runs at once, and each try pulls once from each in
 * turn, the order moved on by one at every try. Run one server after the other, minutes apart, the pulls measured
 * this shared VM's drift as much as the servers (see the notes); interleaved, the drift falls on all of them alike.
 */
import { expectStatus } from '../lib/http.js';
import type { HttpClient } from '../lib/http.js';
import type { Figures } from '../lib/phase.js';
import type { RunningServer } from '../lib/servers.js';
import { percentile } from '../lib/stats.js';
import type { Credentials } from './context.js';
import { cpuNow, cpuSpent, type CostedProcess, type PeerProcesses } from './replica-costs.js';

const GiB = 1024 * 1024 * 1024;

/** What pulls the blob: one timed, checked pull (MB/s), and the bytes it moves. */
export interface Puller {
  /** One pull of the blob pushed to `server`, through `client`, hashed and checked: MB/s. */
  pullOnce(server: RunningServer, client: HttpClient): Promise<number>;
  /** The bytes one pull from `server` moves. */
  pulledBytes(server: RunningServer): number;
}

/** One server in the comparison: `server` answers for its `processes` (requests alternate between them). */
export interface PullConfig {
  label: string;
  server: RunningServer;
  processes: number;
}

/** The order of the servers at try `t`: moved on by one at every try. */
export function rotation(count: number, t: number): number[] {
  return Array.from({ length: count }, (_, k) => (t + k) % count);
}

/**
 * `tries` pulls from each server, interleaved. Each gets its figures as a pull step of its own would: the best pull
 * (`pullMBps`), the median, the registry's CPU per GiB pulled and, with `peers`, the CPU the registry, PostgreSQL
 * and the gateway spent during its pulls (`cpu.pull.*`). A server whose pull fails gets that error instead and is
 * left out of the tries after it; the others go on.
 */
export async function interleavedPulls(
  configs: readonly PullConfig[],
  tries: number,
  puller: Puller,
  opts: { creds: Credentials; peers?: PeerProcesses },
): Promise<(Figures | Error)[]> {
  const clients = configs.map((c) => c.server.client(opts.creds, 1));
  const failed: (Error | undefined)[] = configs.map(() => undefined);
  const pulls: number[][] = configs.map(() => []);
  const spent: Figures[] = configs.map(() => ({}));
  // without peers, only the registry's CPU is read
  const cpu = async (server: RunningServer): Promise<Record<CostedProcess, number>> =>
    opts.peers
      ? cpuNow(server, opts.peers)
      : { ours: (await server.sample()).cpuSeconds, postgres: Number.NaN, s3: Number.NaN };
  try {
    for (const [i, c] of configs.entries()) {
      // one untimed request per process, so every process has its connection open before the first pull
      const client = clients[i] as HttpClient;
      for (let k = 0; k < c.processes; k++)
        await attempt(i, failed, async () =>
          expectStatus(await client.request('GET', '/v2/'), 200, `GET /v2/ before the pulls (${c.label})`),
        );
    }
    for (let t = 0; t < tries; t++) {
      for (const i of rotation(configs.length, t)) {
        const config = configs[i] as PullConfig;
        await attempt(i, failed, async () => {
          const before = await cpu(config.server);
          pulls[i]?.push(await puller.pullOnce(config.server, clients[i] as HttpClient));
          addTo(spent[i] as Figures, cpuSpent('pull', before, await cpu(config.server)));
        });
      }
      const line = configs.map((c, i) => `${c.label} ${failed[i] ? 'failed' : Math.round(pulls[i]?.[t] ?? NaN)}`);
      process.stderr.write(`   pull try ${t + 1}, MB/s: ${line.join(', ')}\n`);
    }
  } finally {
    for (const c of clients) c.close();
  }
  return configs.map((c, i) => {
    const error = failed[i];
    if (error) return error;
    const got = pulls[i] ?? [];
    const used = spent[i] ?? {};
    return {
      pullMBps: Math.max(...got),
      pullMedianMBps: percentile(got, 50),
      pullCpuPerGiB: (used['cpu.pull.ours'] ?? NaN) / ((tries * puller.pulledBytes(c.server)) / GiB),
      ...(opts.peers ? used : {}),
    };
  });
}

/** Runs `fn` unless server `i` has failed already; records its error if it fails now. */
async function attempt(i: number, failed: (Error | undefined)[], fn: () => Promise<void>): Promise<void> {
  if (failed[i]) return;
  try {
    await fn();
  } catch (err) {
    failed[i] = err instanceof Error ? err : new Error(String(err));
  }
}

function addTo(sum: Figures, add: Figures): void {
  for (const [k, v] of Object.entries(add)) sum[k] = (sum[k] ?? 0) + v;
}
