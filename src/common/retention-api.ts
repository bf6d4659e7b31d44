/**
 * What `POST /admin/v1/retention` answers (and `regctl retention` prints): every tag and manifest of each
 * repository a retention rule applies to, kept or removed, with the reason.
 */

export interface RetentionDecision {
  kind: 'tag' | 'manifest';
  /** The tag, or the manifest's digest. */
  ref: string;
  /** The digest the tag points at (for a manifest: its own). */
  digest: string;
  action: 'keep' | 'remove';
  reason: string;
}

export interface RetentionRepositoryReport {
  name: string;
  /** Where the rule that applied is written, e.g. `policies.retention.rules[0]`. */
  rule: string;
  decisions: RetentionDecision[];
}

export interface RetentionReport {
  dryRun: boolean;
  startedAt: string;
  finishedAt: string;
  repositories: RetentionRepositoryReport[];
  /** Counted over every repository; on a real run, what was actually removed. */
  removed: { tags: number; manifests: number };
  kept: { tags: number; manifests: number };
  /** What a run found changed since it decided (a tag moved, a new tag) and so left alone. */
  skipped: string[];
}
