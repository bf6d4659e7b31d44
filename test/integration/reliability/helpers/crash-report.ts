/** The crash harness's options and report, and the report as markdown for docs/reliability.md. */
import type { OpKind } from './crash-model.js';
import type { CrashStorage } from './crash-storage.js';

export interface CrashOptions {
  dir: string;
  kills: number;
  seed: number;
  workers?: number;
  /** Each server life lasts a random time in this range before the SIGKILL. */
  lifeMs?: [number, number];
  /** Older model entries re-verified after each restart, on top of everything acknowledged since the last check. */
  sampleOld?: number;
  /**
   * Upper bound on live images and on live standalone blobs: at the bound, a push becomes a delete, so that a
   * long run keeps a bounded volume and each offline fsck costs about the same.
   */
  maxLive?: number;
  progress?: (line: string) => void;
  /** Where the registry keeps its data; default: a data directory `dir/data` (crash-storage.ts). */
  storage?: CrashStorage;
}

export interface CrashReport {
  seed: number;
  kills: number;
  maxLive?: number;
  durationMs: number;
  acknowledged: Record<OpKind, number>;
  interrupted: number;
  /** GCs started, by what the harness learnt of them: report read, answer lost to a kill, refused. */
  gcOutcomes: { done: number; maybe: number; refused: number; failed: number };
  /** Standalone blobs found missing with a GC accounting for them: listed in a report, or a GC cut by a kill. */
  blobsGoneByGc: { listed: number; maybe: number };
  startupMs: { min: number; median: number; p95: number; max: number };
  fsckAfterKill: Record<string, number>;
  tempFilesLeftAfterKill: number;
  /** Total milliseconds spent in each phase over the run. */
  phases: Record<'life' | 'fsck' | 'restart' | 'tempClean' | 'verify', number>;
  itemsVerified: number;
  finalImages: number;
  finalBlobs: number;
  violations: string[];
}

export function quantiles(values: number[]): { min: number; median: number; p95: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
  return { min: s[0] ?? 0, median: at(0.5), p95: at(0.95), max: s[s.length - 1] ?? 0 };
}

/** The report as markdown for docs/reliability.md. */
export function crashMarkdown(r: CrashReport): string {
  const a = r.acknowledged;
  const g = r.gcOutcomes;
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  return [
    `- Run: ${r.kills} SIGKILLs of \`regctl serve\`, seed ${r.seed}, ${(r.durationMs / 60_000).toFixed(1)} minutes, ${new Date().toISOString().slice(0, 16)}Z${r.maxLive ? `; at most ${r.maxLive} live images and ${r.maxLive} live standalone blobs (a push at the bound becomes a delete)` : ''}.`,
    `- Acknowledged before the kills: ${a.image} image pushes (${a.blobMonolithic} monolithic and ${a.blobChunked} chunked blob uploads, ${a.mount} cross-repository mounts), ${a.tagWrite} tag writes, ${a.deleteByTag} deletes by tag, ${a.deleteByDigest} by digest, ${a.deleteBlob} blob deletes, ${a.gc} GCs; ${r.interrupted} operations cut by a kill.`,
    `- GCs started: ${g.done} reports read and checked, ${g.maybe} cut by a kill, ${g.refused} refused (409 or 429), ${g.failed} failed. Standalone blobs found missing: ${r.blobsGoneByGc.listed} listed as swept by a report, ${r.blobsGoneByGc.maybe} accounted for only by a GC cut by a kill.`,
    `- Verified after restarts: ${r.itemsVerified} model entries (every new one after each restart plus a sample of older ones, all of them at the end); at the end ${r.finalImages} live images and ${r.finalBlobs} standalone blobs.`,
    `- Violations: ${r.violations.length}.`,
    `- Startup to listening: min ${r.startupMs.min} ms, median ${r.startupMs.median} ms, p95 ${r.startupMs.p95} ms, max ${r.startupMs.max} ms (every restart succeeded).`,
    `- Left by the kills, found by the offline fsck before each restart (cumulative, repaired or cleaned later): ${
      Object.entries(r.fsckAfterKill)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || 'nothing'
    }; temporary files ${r.tempFilesLeftAfterKill}, all removed by the next start.`,
    `- Time spent: server lives ${s(r.phases.life)}, offline fsck ${s(r.phases.fsck)}, restarts ${s(r.phases.restart)}, temp cleanup wait ${s(r.phases.tempClean)}, verification ${s(r.phases.verify)}.`,
  ].join('\n');
}
