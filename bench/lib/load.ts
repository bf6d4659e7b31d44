import { performance } from 'node:perf_hooks';
import { summarize } from './stats.js';
import type { LatencySummary } from './stats.js';

export interface LoadResult {
  requests: number;
  seconds: number;
  requestsPerSecond: number;
  /** Milliseconds. */
  latency: LatencySummary;
}

/**
 * Runs `op` from `concurrency` loops until `durationMs` has passed (requests in flight then are awaited and
 * counted). The first failed check stops every loop and is rethrown.
 */
export async function runForDuration(
  concurrency: number,
  durationMs: number,
  op: (seq: number) => Promise<void>,
): Promise<LoadResult> {
  const latencies: number[] = [];
  let seq = 0;
  let failure: Error | undefined;
  const start = performance.now();
  const deadline = start + durationMs;
  const loop = async (): Promise<void> => {
    while (failure === undefined && performance.now() < deadline) {
      const n = seq++;
      const t0 = performance.now();
      try {
        await op(n);
      } catch (err) {
        failure ??= err instanceof Error ? err : new Error(String(err));
        return;
      }
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const seconds = (performance.now() - start) / 1000;
  if (failure !== undefined) throw failure;
  return {
    requests: latencies.length,
    seconds,
    requestsPerSecond: latencies.length / seconds,
    latency: summarize(latencies),
  };
}

/** Runs `ops` (a fixed list of jobs) with at most `concurrency` at once; returns the wall time in seconds. */
export async function runAll<T>(
  concurrency: number,
  items: readonly T[],
  op: (item: T, index: number) => Promise<void>,
): Promise<number> {
  let next = 0;
  let failure: Error | undefined;
  const start = performance.now();
  const loop = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const index = next++;
      try {
        await op(items[index] as T, index);
      } catch (err) {
        failure ??= err instanceof Error ? err : new Error(String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, loop));
  if (failure !== undefined) throw failure;
  return (performance.now() - start) / 1000;
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, seconds: (performance.now() - t0) / 1000 };
}
