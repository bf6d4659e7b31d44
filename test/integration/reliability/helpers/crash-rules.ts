/**
 * The crash harness's rules for what a GC may take away, as pure functions over the model (crash-model.ts), so
 * that each is shown failing on planted data (test/unit/reliability/crash-rules.test.ts).
 *
 * - An acknowledged standalone blob (no delete issued) may be missing only when a GC accounts for it:
 *   a GC whose report arrived lists it as swept, and it could have been older than the grace window when that
 *   GC started; or a GC whose answer was lost to a kill could have started when it was that old. Standalone blobs
 *   are never referenced by a manifest, so "unreferenced" holds for them throughout.
 * - Every report that arrived is checked on its own: a swept blob that a live image referenced for the whole GC
 *   (acknowledged before it started, no delete issued before it ended), or that was pushed less than the grace
 *   window before it started, is a violation, missing or not.
 * - Dangling links (a link whose blob is absent) found after a kill are what a GC cut between sweeping blobs
 *   and unlinking them leaves: tolerated when a GC ran in that life, provided the next GC whose report arrives
 *   removes them; found in a life without any GC, or still there after such a GC, they are violations.
 *
 * Ages are judged by the push's start: a blob's data file is written after its upload starts, so if the upload
 * started less than the grace window before a GC, the GC saw a younger file. File times come from the kernel's
 * coarse clock, which can lag the clock the harness reads by up to a tick; CLOCK_SLACK_MS covers it.
 */
import type { BlobEntry, CrashModel, GcRecord } from './crash-model.js';

/** More than a kernel tick (4 ms at HZ=250, 10 ms at HZ=100), the most a file time lags `Date.now()`. */
export const CLOCK_SLACK_MS = 20;

/** Could the blob's data file have been at least `graceMs` old at `at`? */
export function couldBeOlderThanGrace(blob: Pick<BlobEntry, 'pushStartedAt'>, at: number, graceMs: number): boolean {
  return at - (blob.pushStartedAt - CLOCK_SLACK_MS) >= graceMs;
}

/** Why an acknowledged, never-deleted standalone blob may be missing; undefined when nothing excuses it. */
export function absenceExcuse(blob: BlobEntry, gcs: GcRecord[], graceMs: number): string | undefined {
  for (const g of gcs) {
    if (g.outcome === 'done' && g.startedAt !== undefined && g.report?.deleted.some((d) => d.digest === blob.digest)) {
      if (couldBeOlderThanGrace(blob, g.startedAt, graceMs)) return `swept by GC #${g.id}`;
    }
  }
  for (const g of gcs) {
    if (
      g.outcome === 'maybe' &&
      g.latestStartAt !== undefined &&
      couldBeOlderThanGrace(blob, g.latestStartAt, graceMs)
    ) {
      return `may have been swept by GC seq ${g.seq} (cycle ${g.cycle}), whose answer was lost to the kill`;
    }
  }
  return undefined;
}

/** Digest → what referenced it for the whole of a GC (an image acknowledged before it, not deleted during it). */
export function referencedThroughout(model: CrashModel, startedAt: number, finishedAt: number): Map<string, string> {
  const refs = new Map<string, string>();
  for (const img of model.images) {
    if (img.ackedAt >= startedAt) continue;
    if (img.deleteIssuedAt !== undefined && img.deleteIssuedAt <= finishedAt) continue;
    for (const d of [img.digest, ...img.blobs]) refs.set(d, `${img.repo}:${img.tag}`);
  }
  return refs;
}

/** Violations in the report of a GC that finished (`done`); none for other outcomes, which carry no report. */
export function checkGcReport(model: CrashModel, g: GcRecord): string[] {
  if (g.outcome !== 'done' || !g.report || g.startedAt === undefined) return [];
  const out: string[] = [];
  const what = `GC #${g.id} (started ${new Date(g.startedAt).toISOString()})`;
  if (g.report.dryRun) out.push(`${what} reports a dry run; a real one was asked for`);
  const refs = referencedThroughout(model, g.startedAt, g.finishedAt ?? Date.now());
  const blobs = new Map(model.blobs.map((b) => [b.digest, b]));
  for (const d of g.report.deleted) {
    const ref = refs.get(d.digest);
    if (ref) out.push(`${what} swept ${d.digest}, referenced by ${ref} throughout`);
    const b = blobs.get(d.digest);
    if (b && !couldBeOlderThanGrace(b, g.startedAt, model.graceMs)) {
      out.push(
        `${what} swept ${d.digest}, whose upload started ${g.startedAt - b.pushStartedAt} ms before it (grace ${model.graceMs} ms)`,
      );
    }
  }
  for (const m of g.report.manifestsRemoved) {
    const img = model.images.find((i) => i.repo === m.repository && i.digest === m.digest);
    if (img && refs.has(m.digest))
      out.push(`${what} removed manifest ${m.repository}@${m.digest}, tagged ${img.tag} throughout`);
  }
  return out;
}

/**
 * Dangling links across kills: `afterKill` takes the paths the offline fsck reported as `link-dangling` after
 * the life `cycle` ended, and returns the violations among them.
 */
export class DanglingLinks {
  /** Path → the cycle after which it was first found. */
  private readonly pending = new Map<string, number>();

  afterKill(cycle: number, paths: string[], gcs: GcRecord[]): string[] {
    const out: string[] = [];
    const gcRan = gcs.some((g) => g.cycle === cycle && g.outcome !== 'refused');
    for (const p of paths) {
      const since = this.pending.get(p);
      if (since === undefined) {
        if (!gcRan) out.push(`dangling link ${p} after a life in which no GC ran`);
        this.pending.set(p, cycle);
        continue;
      }
      const next = gcs.find((g) => g.outcome === 'done' && g.cycle > since && g.cycle <= cycle);
      if (next)
        out.push(
          `dangling link ${p} (found after cycle ${since}) still there after GC #${next.id} of cycle ${next.cycle} finished`,
        );
    }
    const now = new Set(paths);
    for (const p of [...this.pending.keys()]) if (!now.has(p)) this.pending.delete(p);
    return out;
  }

  /** After a GC that finished with no writes around it, no link may dangle, old or new. */
  afterFinalGc(paths: string[]): string[] {
    return paths.map((p) => {
      const since = this.pending.get(p);
      return `dangling link ${p} ${since === undefined ? 'left' : `(found after cycle ${since}) not removed`} by the final GC`;
    });
  }

  get pendingCount(): number {
    return this.pending.size;
  }
}
