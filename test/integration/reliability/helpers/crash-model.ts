/**
 * What the crash harness knows about the registry it drives: every write the server acknowledged, with the
 * times that decide what a GC may legitimately have removed, and every GC it started with what it learnt of it.
 * The workers (crash-workload.ts) fill it in; the rules (crash-rules.ts) and checks (crash-verify.ts) read it.
 */
import type { GcReport } from '../../../../src/common/admin-api.js';

export type OpKind =
  | 'image'
  | 'blobMonolithic'
  | 'blobChunked'
  | 'mount'
  | 'tagWrite'
  | 'deleteByTag'
  | 'deleteByDigest'
  | 'deleteBlob'
  | 'gc';

export const OP_KINDS: OpKind[] = [
  'image',
  'blobMonolithic',
  'blobChunked',
  'mount',
  'tagWrite',
  'deleteByTag',
  'deleteByDigest',
  'deleteBlob',
  'gc',
];

/** An image whose manifest PUT was acknowledged. */
export interface ImageEntry {
  repo: string;
  tag: string;
  digest: string;
  manifest: Buffer;
  /** Config and layer digests. */
  blobs: string[];
  /** When the manifest PUT was acknowledged (ms since the epoch): referenced from then on. */
  ackedAt: number;
  /** Seq and time of the first delete issued against it; undefined while live. */
  deleteIssued?: number;
  deleteIssuedAt?: number;
  deletedBy?: 'tag' | 'digest';
  deleteAcked?: boolean;
  /** A tag write re-puts the manifest, which may bring it back after a delete by digest. */
  retagIssued?: boolean;
  /** Cycle of the last check, -1 before the first. */
  checkedAt: number;
}

/** A blob pushed on its own (no manifest ever references it), acknowledged. */
export interface BlobEntry {
  repo: string;
  digest: string;
  startedSeq: number;
  /** When its upload started: its data file cannot be older than this. */
  pushStartedAt: number;
  ackedAt: number;
  deleteIssued?: number;
  deleteAcked?: boolean;
  /** The delete answered 404: only a GC that accounts for the blob could have removed it before. */
  deleteAnswered404?: boolean;
  /** Set when it was found missing with a GC accounting for it: that GC's description. */
  goneBy?: string;
  checkedAt: number;
}

/**
 * A GC the harness started (`POST /admin/v1/gc` with `wait: false`, then `GET /admin/v1/gc` polled).
 * - `done`: the job's report arrived; `startedAt` is the server's.
 * - `maybe`: the kill cut the exchange. With the 202 in hand `startedAt` is known; without it the GC may or may
 *   not have started, at any time up to the kill (`latestStartAt`). Either way nothing is known of what it swept.
 * - `refused`: answered 409 (a GC already running) or 429 (a backup running), never started.
 * - `pending`: still in flight (turned into `maybe` at the kill).
 */
export interface GcRecord {
  seq: number;
  cycle: number;
  issuedAt: number;
  deleteUntagged: boolean;
  outcome: 'pending' | 'done' | 'maybe' | 'refused' | 'failed';
  id?: number;
  startedAt?: number;
  finishedAt?: number;
  /** The latest moment it can have started: `startedAt` when known, else the kill (set when it becomes `maybe`). */
  latestStartAt?: number;
  report?: GcReport;
}

/** A delete by digest, which takes every tag pointing at the manifest with it (`latest` included). */
export interface DigestDelete {
  digest: string;
  cycle: number;
  /** When it was acknowledged; undefined when the kill cut it (it may then act until the end of its life). */
  ackedAt?: number;
}

export interface LatestState {
  /** Every digest ever written to `latest` in the repository. */
  written: Set<string>;
  /** The acknowledged write to `latest` that started last. */
  lastAckedWrite?: { startedAt: number; cycle: number };
  digestDeletes: DigestDelete[];
}

/**
 * `latest` may be absent only when a delete by digest of something written there is not superseded by an
 * acknowledged write that started after the delete had ended (acknowledged, or in a later life than a delete
 * the kill cut). Without any acknowledged write it may be absent anyway.
 */
export function latestMayBeAbsent(s: LatestState): boolean {
  const w = s.lastAckedWrite;
  if (!w) return true;
  return s.digestDeletes.some(
    (d) => s.written.has(d.digest) && !(w.cycle > d.cycle || (d.ackedAt !== undefined && w.startedAt > d.ackedAt)),
  );
}

/** The model, plus the violation log (each line prefixed with the seed and the cycle it was found in). */
export class CrashModel {
  readonly images: ImageEntry[] = [];
  readonly blobs: BlobEntry[] = [];
  readonly gcs: GcRecord[] = [];
  readonly latest = new Map<string, LatestState>();
  /** Layer data of live images, for cross-repository mounts. */
  readonly layerData = new Map<string, { repo: string; data: Buffer }>();
  readonly acknowledged = Object.fromEntries(OP_KINDS.map((k) => [k, 0])) as Record<OpKind, number>;
  readonly violations: string[] = [];
  seq = 0;
  cycle = 0;

  constructor(
    readonly seed: number,
    /** The grace window every GC of the run is started with. */
    readonly graceMs: number,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  violation(text: string): void {
    this.violations.push(`[seed ${this.seed}, cycle ${this.cycle}] ${text}`);
    this.log(`VIOLATION ${text}`);
  }

  nextSeq(): number {
    return ++this.seq;
  }

  latestState(repo: string): LatestState {
    let s = this.latest.get(repo);
    if (!s) this.latest.set(repo, (s = { written: new Set<string>(), digestDeletes: [] }));
    return s;
  }

  liveImages(): ImageEntry[] {
    return this.images.filter((i) => i.deleteIssued === undefined);
  }

  liveBlobs(): BlobEntry[] {
    return this.blobs.filter((b) => b.deleteIssued === undefined);
  }

  /** GCs whose request was sent during the current server life. */
  gcsIssuedThisLife(): GcRecord[] {
    return this.gcs.filter((g) => g.cycle === this.cycle && g.outcome !== 'refused');
  }

  /** At the kill, every GC still in flight becomes "maybe", started at the latest at `killAt`. */
  settleAtKill(killAt: number): void {
    for (const g of this.gcs) {
      if (g.outcome !== 'pending') continue;
      g.outcome = 'maybe';
      g.latestStartAt = g.startedAt ?? killAt;
    }
  }
}
