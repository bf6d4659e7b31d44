/**
 * The policies that apply to one repository, as the admin API reports them (`GET
 * /admin/v1/repository-policies?name=…`) for the UI's repository page, and a repository's quota with its usage as
 * the usage report carries it. Durations are written as the config writes them (`7d`), sizes in bytes.
 */
export interface RepositoryQuota {
  /** Where the rule is written (`policies.quotas[0]`). */
  rule: string;
  repos: string[];
  limitBytes: number;
  /** What the quota counts: the repository's manifests and what they reference, each digest once. */
  usedBytes: number;
}

export interface RepositoryPolicies {
  name: string;
  /** Every immutable-tag rule whose `repos` match: tags matching `tags` cannot be moved or deleted. */
  immutableTags: { rule: string; repos: string[]; tags: string }[];
  /** The retention rule that applies (the first whose `repos` match), null when none does. */
  retention: {
    rule: string;
    repos: string[];
    keepLast?: number;
    keepTags?: string;
    removeOlderThan?: string;
    untaggedOlderThan?: string;
    keepPulledWithin?: string;
    /** The schedule of the registry's runs (`24h`), null when retention runs on demand only. */
    schedule: string | null;
    dryRun: boolean;
  } | null;
  quota: RepositoryQuota | null;
}
