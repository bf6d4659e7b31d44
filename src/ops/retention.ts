/**
 * `regctl retention`: the registry's retention rules run through the admin API (`POST /admin/v1/retention`),
 * as a dry run that explains every keep and every removal, or for real (`regctl retention run`), after which the
 * blobs nothing references any more are the GC's to sweep (`regctl gc`, or `--gc` here).
 */
import type { Output } from '../common/io.js';
import type { RetentionReport } from '../common/retention-api.js';
import { formatBytes } from '../common/units.js';
import { AdminClient, stackEndpoint } from './admin-client.js';
import { gc, type GcSummary } from './gc.js';

export interface RetentionOptions {
  dir: string;
  dryRun: boolean;
  repository?: string;
  /** After a real run, run the GC too (blobs only the removed manifests referenced). */
  gc?: boolean;
  out: Output;
  env?: NodeJS.ProcessEnv;
}

export interface RetentionSummary {
  registry: string;
  report: RetentionReport;
  gc?: GcSummary;
}

export async function retention(opts: RetentionOptions): Promise<RetentionSummary> {
  const endpoint = await stackEndpoint(opts.dir, opts.env);
  const client = new AdminClient(endpoint);
  opts.out.step(`${opts.dryRun ? 'Dry run of retention' : 'Retention'} on ${endpoint.description}`);
  const body = { dryRun: opts.dryRun, ...(opts.repository !== undefined ? { repository: opts.repository } : {}) };
  const report = await client.json<RetentionReport>('retention', 'POST', '/admin/v1/retention', body, {
    timeoutMs: 30 * 60_000,
  });
  const summary: RetentionSummary = { registry: endpoint.description, report };
  if (opts.gc && !opts.dryRun && report.removed.manifests > 0)
    summary.gc = await gc({ dir: opts.dir, dryRun: false, deleteUntagged: false, out: opts.out, env: opts.env });
  return summary;
}

const short = (d: string): string => d.replace(/^(sha256:[0-9a-f]{12})[0-9a-f]+$/, '$1…');

/** The human report: one line per tag and manifest (what goes first), then the totals and what comes next. */
export function printRetention(s: RetentionSummary, out: Output): void {
  const r = s.report;
  if (r.repositories.length === 0) out.line('  No repository matches a retention rule.');
  for (const repo of r.repositories) {
    out.line(`  ${repo.name} (${repo.rule})`);
    const sorted = [...repo.decisions].sort((a, b) => (a.action === b.action ? 0 : a.action === 'remove' ? -1 : 1));
    for (const d of sorted) {
      const verb = d.action === 'keep' ? 'keep' : r.dryRun ? 'would remove' : 'removed';
      const ref = d.kind === 'tag' ? `tag ${d.ref}` : `manifest ${short(d.ref)}`;
      out.line(`    ${verb.padEnd(12)} ${ref.padEnd(36)} ${d.reason}`);
    }
  }
  const verb = r.dryRun ? 'Would remove' : 'Removed';
  out.ok(
    `${verb} ${r.removed.tags} tag${r.removed.tags === 1 ? '' : 's'} and ${r.removed.manifests} manifest${r.removed.manifests === 1 ? '' : 's'}; kept ${r.kept.tags} tags and ${r.kept.manifests} manifests`,
  );
  for (const line of r.skipped) out.warn(`left alone: ${line}`);
  if (s.gc) out.ok(`Garbage collection freed ${formatBytes(s.gc.freedBytes)}`);
  else if (!r.dryRun && r.removed.manifests > 0)
    out.line('  The blobs only those manifests used stay until a garbage collection: run regctl gc');
  else if (r.dryRun) out.line('  Nothing was removed (dry run): regctl retention run removes it');
}
