/**
 * The registry's admin API (`/admin/v1/`) as its clients see it: the bodies of its answers. The registry builds
 * them, `regctl` (src/ops) and the web UI (src/ui) read them; all three import these types from here.
 */
import type { RepositoryQuota } from './repository-policies.js';

/** `GET /admin/v1/whoami`: the authenticated user and the rules that apply to them. */
export interface WhoAmI {
  user: string;
  admin: boolean;
  rules: { repos: string; actions: string[] }[];
}

/** `GET /admin/v1/usage`: bytes stored, with each repository's exclusive and shared share. */
export interface UsageReport {
  totalBytes: number;
  blobCount: number;
  repositories: RepositoryUsage[];
  /** Bytes of blobs no repository links to: what a GC would free, untagged manifests aside. */
  reclaimableBytes: number;
}

export interface RepositoryUsage {
  name: string;
  tags: number;
  manifests: number;
  /** Bytes of blobs linked by this repository only. */
  exclusiveBytes: number;
  /** Bytes of blobs this repository links and at least one other does too. */
  sharedBytes: number;
  /** ISO 8601 time of the last manifest push, or null when unknown. */
  lastPush: string | null;
  /** Set on repositories of the pull-through cache: the upstream registry their content comes from. */
  cachedFrom?: string;
  /** Set when a quota applies (policies.quotas): its limit and the usage it counts. */
  quota?: RepositoryQuota;
}

/**
 * `GET /admin/v1/robots`: the robot accounts of the robots file (never their secrets) and when each last got a
 * token. `oidc` is set for a robot bound to an OIDC issuer (its ID token is its password), null otherwise.
 */
export interface RobotsReport {
  robots: RobotSummary[];
}

export interface RobotSummary {
  name: string;
  pull: string[];
  push: string[];
  delete: string[];
  created: string;
  expires: string | null;
  revoked: string | null;
  lastUse: string | null;
  oidc: { issuer: string; audience: string; claims: Record<string, string> } | null;
}

export type GcPhase = 'mark' | 'sweep-manifests' | 'sweep-blobs' | 'unlink' | 'uploads' | 'done';

export interface GcProgress {
  phase: GcPhase;
  /** Items of the phase done so far, out of `total`. */
  done: number;
  total: number;
}

/** One blob in a GC report, with why it was deleted or kept. */
export interface GcEntry {
  digest: string;
  size: number;
  reason: string;
}

/** The result of a GC (`POST /admin/v1/gc` with `wait: true`, or the `report` of a finished job). */
export interface GcReport {
  deleted: GcEntry[];
  kept: GcEntry[];
  freedBytes: number;
  repositoriesRemoved: string[];
  manifestsRemoved: { repository: string; digest: string }[];
  uploadsPurged: number;
  dryRun: boolean;
}

/** `GET /admin/v1/gc`: the running or the last GC job, or `{ state: 'idle' }` when none ran yet. */
export interface GcJobStatus {
  id?: number;
  state: 'idle' | 'running' | 'done' | 'failed';
  dryRun?: boolean;
  deleteUntagged?: boolean;
  startedAt?: string;
  finishedAt?: string;
  progress?: GcProgress;
  report?: GcReport;
  error?: string;
}
