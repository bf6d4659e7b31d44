/**
 * `regctl gc`: the registry's online mark and sweep (`POST /admin/v1/gc`), with a report a person can read:
 * what went (or would go) and why every kept blob is kept, with bytes.
 */
import type { Output } from '../common/io.js';
import type { GcProgress, GcReport } from '../common/admin-api.js';
import { AdminClient, stackEndpoint } from './admin-client.js';
import { formatBytes } from '../common/units.js';

export interface GcOptions {
  dir: string;
  dryRun: boolean;
  deleteUntagged: boolean;
  /** Blobs younger than this are never swept (ms); the registry's default when undefined. */
  graceMs?: number;
  out: Output;
  env?: NodeJS.ProcessEnv;
  /**
   * Run the GC within one request instead of as a polled job (no progress lines). Not needed behind a load
   * balancer: replicas share the job's status through their metadata store, so a poll may land on any of them.
   */
  oneRequest?: boolean;
}

export interface GcSummary {
  dryRun: boolean;
  registry: string;
  seconds: number;
  deleted: { count: number; bytes: number };
  kept: { count: number; bytes: number; byReason: Record<string, { count: number; bytes: number }> };
  freedBytes: number;
  repositoriesRemoved: string[];
  uploadsPurged: number;
  report: GcReport;
}

export async function gc(opts: GcOptions): Promise<GcSummary> {
  const endpoint = await stackEndpoint(opts.dir, opts.env);
  const client = new AdminClient(endpoint);
  const oneRequest = opts.oneRequest ?? false;
  opts.out.step(`${opts.dryRun ? 'Dry run of garbage collection' : 'Garbage collection'} on ${endpoint.description}`);
  const started = Date.now();
  const report: GcReport = await client.gc(
    {
      dryRun: opts.dryRun,
      deleteUntagged: opts.deleteUntagged,
      ...(opts.graceMs !== undefined ? { graceSeconds: opts.graceMs / 1000 } : {}),
    },
    {
      oneRequest,
      onProgress: (p) => opts.out.progress(`${progressText(p)} (${Math.round((Date.now() - started) / 1000)} s)`),
    },
  );
  const byReason: GcSummary['kept']['byReason'] = {};
  for (const k of report.kept) {
    const r = (byReason[k.reason] ??= { count: 0, bytes: 0 });
    r.count++;
    r.bytes += k.size;
  }
  return {
    dryRun: opts.dryRun,
    registry: endpoint.description,
    seconds: (Date.now() - started) / 1000,
    deleted: { count: report.deleted.length, bytes: report.deleted.reduce((n, d) => n + d.size, 0) },
    kept: { count: report.kept.length, bytes: report.kept.reduce((n, d) => n + d.size, 0), byReason },
    freedBytes: report.freedBytes,
    repositoriesRemoved: report.repositoriesRemoved,
    uploadsPurged: report.uploadsPurged,
    report,
  };
}

const PHASES: Record<GcProgress['phase'], string> = {
  mark: 'marking: repositories read',
  'sweep-manifests': 'removing unreferenced manifests',
  'sweep-blobs': 'sweeping blobs: checked',
  unlink: 'unlinking swept blobs: repositories',
  uploads: 'purging stale uploads',
  done: 'finishing',
};

/** One line of progress, e.g. `sweeping blobs: checked 1,200 of 5,000`. */
export function progressText(p: GcProgress): string {
  const counts = p.total > 1 ? ` ${p.done.toLocaleString('en')} of ${p.total.toLocaleString('en')}` : '';
  return `${PHASES[p.phase] ?? p.phase}${counts}`;
}

/** The human report: totals, then each deleted blob, then kept blobs grouped by reason (listed on a dry run). */
export function printGcSummary(s: GcSummary, out: Output, opts: { verbose?: boolean } = {}): void {
  const verb = s.dryRun ? 'Would delete' : 'Deleted';
  out.ok(
    `${verb} ${s.deleted.count} blob${s.deleted.count === 1 ? '' : 's'} (${formatBytes(s.deleted.bytes)}); kept ${s.kept.count} (${formatBytes(s.kept.bytes)}) in ${s.seconds.toFixed(1)} s`,
  );
  const width = 16;
  const short = (d: string) => d.replace(/^(sha256:[0-9a-f]{12})[0-9a-f]+$/, '$1…');
  if (s.deleted.count > 0) {
    out.line(`  ${s.dryRun ? 'Would go' : 'Gone'}:`);
    for (const d of s.report.deleted)
      out.line(`    ${short(d.digest).padEnd(20)} ${formatBytes(d.size).padStart(10)}  ${d.reason}`);
  }
  out.line('  Kept:');
  for (const [reason, r] of Object.entries(s.kept.byReason).sort((a, b) => b[1].bytes - a[1].bytes)) {
    out.line(
      `    ${reason.padEnd(width + 10)} ${String(r.count).padStart(5)} blob${r.count === 1 ? ' ' : 's'} ${formatBytes(r.bytes).padStart(10)}`,
    );
  }
  if ((s.dryRun || opts.verbose) && s.kept.count > 0) {
    out.line('  Kept, blob by blob:');
    for (const k of s.report.kept)
      out.line(`    ${short(k.digest).padEnd(20)} ${formatBytes(k.size).padStart(10)}  ${k.reason}`);
  }
  if (s.repositoriesRemoved.length > 0)
    out.line(
      `  Empty repositories ${s.dryRun ? 'that would leave' : 'removed from'} the catalog: ${s.repositoriesRemoved.join(', ')}`,
    );
  if (s.uploadsPurged > 0) out.line(`  Stale uploads purged: ${s.uploadsPurged}`);
  if (!s.dryRun) out.line(`  Freed ${formatBytes(s.freedBytes)}`);
}
