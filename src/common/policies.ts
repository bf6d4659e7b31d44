/**
 * Registry policies (`policies:` in the registry's config file and in `regctl.yaml`), read by one parser so the
 * two never disagree. Validation collects every mistake, one line each naming its field
 * (`policies.retention.rules[2].keepLast: …`); a document with any mistake yields no policies at all, so nothing
 * is ever applied half.
 *
 * ```yaml
 * policies:
 *   immutableTags:
 *     - { repos: "apps/**", tags: "v*" }                # glob: * any characters, ? one
 *     - { repos: "**", tags: "/^\\d+\\.\\d+\\.\\d+$/" }   # /…/ is a regular expression
 *   retention:
 *     schedule: 24h            # run inside the registry every 24h (absent: only on demand)
 *     dryRun: false            # scheduled runs only report what they would remove
 *     rules:                   # the first rule whose `repos` matches a repository applies to it
 *       - { repos: "ci/**", keepLast: 20, keepTags: "release-*", removeOlderThan: 30d,
 *           untaggedOlderThan: 7d, keepPulledWithin: 14d }
 *   quotas:                    # the first rule whose `repos` matches a repository applies to it
 *     - { repos: "ci/**", limit: 10GiB }
 * ```
 * `repos` is a repository pattern as the access rules read it (repo-pattern.ts), or a list of them.
 * A quota's `limit` holds for EACH repository the rule matches (as Harbor's project quotas do per project), not
 * for the sum of the pattern's repositories: adding a repository under `ci/**` gives it its own 10 GiB.
 */
import { repoPatternToRegExp } from './repo-pattern.js';
import { parseDuration, parseSize, UnitError } from './units.js';

/** A tag pattern as written, and its compiled form. */
export interface TagPattern {
  source: string;
  test(tag: string): boolean;
}

export interface RepoMatcher {
  source: string[];
  test(repo: string): boolean;
}

export interface ImmutableTagRule {
  /** Where the rule is written (`policies.immutableTags[0]`), for messages. */
  id: string;
  repos: RepoMatcher;
  tags: TagPattern;
}

export interface RetentionRule {
  id: string;
  repos: RepoMatcher;
  keepLast?: number;
  keepTags?: TagPattern;
  /** Durations in milliseconds. */
  removeOlderThan?: number;
  untaggedOlderThan?: number;
  keepPulledWithin?: number;
}

export interface RetentionPolicy {
  /** Interval of scheduled runs; undefined: on demand only. */
  scheduleMs?: number;
  dryRun: boolean;
  rules: RetentionRule[];
}

/** A storage quota: each repository `repos` matches may hold at most `limitBytes` (policy/quota.ts counts). */
export interface QuotaRule {
  id: string;
  repos: RepoMatcher;
  limitBytes: number;
}

export interface Policies {
  immutableTags: ImmutableTagRule[];
  retention: RetentionPolicy;
  /** Absent in policies built before quotas existed: read as none. */
  quotas?: QuotaRule[];
}

export const NO_POLICIES: Policies = { immutableTags: [], retention: { dryRun: false, rules: [] }, quotas: [] };

/** One mistake: the field's path and what is wrong with it. */
export interface PolicyProblem {
  path: string;
  message: string;
}

export function formatProblem(p: PolicyProblem): string {
  return `${p.path}: ${p.message}`;
}

/** `v*` (glob: `*` any characters, `?` one) or `/regex/`; throws with the reason when the regex is invalid. */
export function tagPattern(source: string): TagPattern {
  if (source.length >= 2 && source.startsWith('/') && source.endsWith('/')) {
    const re = new RegExp(source.slice(1, -1));
    return { source, test: (tag) => re.test(tag) };
  }
  const body = source
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  const re = new RegExp(`^${body}$`);
  return { source, test: (tag) => re.test(tag) };
}

/** The first rule that applies to a repository, if any. */
export function retentionRuleFor(policies: Policies, repo: string): RetentionRule | undefined {
  return policies.retention.rules.find((r) => r.repos.test(repo));
}

/** The immutable-tag rule protecting `tag` in `repo`, if any. */
export function immutableRuleFor(policies: Policies, repo: string, tag: string): ImmutableTagRule | undefined {
  return policies.immutableTags.find((r) => r.repos.test(repo) && r.tags.test(tag));
}

/** The first quota rule that applies to a repository, if any. */
export function quotaRuleFor(policies: Policies, repo: string): QuotaRule | undefined {
  return policies.quotas?.find((r) => r.repos.test(repo));
}

type Obj = Record<string, unknown>;

class Collector {
  readonly problems: PolicyProblem[] = [];
  add(path: string, message: string): void {
    this.problems.push({ path, message });
  }
  object(v: unknown, path: string, keys: readonly string[]): Obj | undefined {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      this.add(path, `must be a mapping with ${keys.join(', ')}`);
      return undefined;
    }
    for (const k of Object.keys(v))
      if (!keys.includes(k)) this.add(`${path}.${k}`, `unknown field (known: ${keys.join(', ')})`);
    return v as Obj;
  }
  list(v: unknown, path: string): unknown[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      this.add(path, 'must be a list');
      return [];
    }
    return v;
  }
  repos(v: unknown, path: string): RepoMatcher | undefined {
    const list = typeof v === 'string' ? [v] : Array.isArray(v) ? v : undefined;
    if (!list || list.length === 0 || list.some((p) => typeof p !== 'string' || p === '')) {
      this.add(path, 'must be a repository pattern such as "apps/**", or a list of them');
      return undefined;
    }
    const res = (list as string[]).map(repoPatternToRegExp);
    return { source: list as string[], test: (repo) => res.some((re) => re.test(repo)) };
  }
  tags(v: unknown, path: string): TagPattern | undefined {
    if (typeof v !== 'string' || v === '') {
      this.add(path, 'must be a tag pattern: a glob such as "v*", or a regular expression between slashes');
      return undefined;
    }
    try {
      return tagPattern(v);
    } catch (err) {
      this.add(path, `is not a valid regular expression (${(err as Error).message})`);
      return undefined;
    }
  }
  duration(v: unknown, path: string): number | undefined {
    if (v === undefined) return undefined;
    try {
      if (typeof v !== 'string' && typeof v !== 'number') throw new UnitError('');
      return parseDuration(String(v));
    } catch (err) {
      if (!(err instanceof UnitError)) throw err;
      this.add(path, `${JSON.stringify(v)} is not a duration (examples: 24h, 7d, 30d; a number needs a unit)`);
      return undefined;
    }
  }
  size(v: unknown, path: string): number | undefined {
    try {
      // A bare number is refused: `limit: 10` is far likelier a forgotten unit than ten bytes.
      if (typeof v !== 'string' || !/[a-z]\s*$/i.test(v)) throw new UnitError('');
      const bytes = parseSize(v);
      if (bytes > 0) return bytes;
    } catch (err) {
      if (!(err instanceof UnitError)) throw err;
    }
    this.add(path, `${JSON.stringify(v)} is not a size above 0 (examples: 500MiB, 10GiB, 2TB; a number needs a unit)`);
    return undefined;
  }
}

function quotaRule(c: Collector, v: unknown, path: string): QuotaRule | undefined {
  const o = c.object(v, path, ['repos', 'limit']);
  if (!o) return undefined;
  const repos = c.repos(o.repos, `${path}.repos`);
  const limitBytes = c.size(o.limit, `${path}.limit`);
  return repos && limitBytes !== undefined ? { id: path, repos, limitBytes } : undefined;
}

const RETENTION_KEYS = ['schedule', 'dryRun', 'rules'] as const;
const RETENTION_RULE_KEYS = [
  'repos',
  'keepLast',
  'keepTags',
  'removeOlderThan',
  'untaggedOlderThan',
  'keepPulledWithin',
] as const;

function retentionRule(c: Collector, v: unknown, path: string): RetentionRule | undefined {
  const o = c.object(v, path, RETENTION_RULE_KEYS);
  if (!o) return undefined;
  const before = c.problems.length;
  const repos = c.repos(o.repos, `${path}.repos`);
  const keepLast = o.keepLast;
  if (keepLast !== undefined && (typeof keepLast !== 'number' || !Number.isInteger(keepLast) || keepLast < 0))
    c.add(`${path}.keepLast`, `${JSON.stringify(keepLast)} is not a whole number of tags (0 or more)`);
  const rule: RetentionRule = { id: path, repos: repos as RepoMatcher };
  if (typeof keepLast === 'number') rule.keepLast = keepLast;
  if (o.keepTags !== undefined) rule.keepTags = c.tags(o.keepTags, `${path}.keepTags`);
  for (const k of ['removeOlderThan', 'untaggedOlderThan', 'keepPulledWithin'] as const) {
    const ms = c.duration(o[k], `${path}.${k}`);
    if (ms !== undefined) rule[k] = ms;
  }
  if (o.keepLast === undefined && o.removeOlderThan === undefined && o.untaggedOlderThan === undefined)
    c.add(path, 'removes nothing: give keepLast, removeOlderThan or untaggedOlderThan');
  return c.problems.length === before ? rule : undefined;
}

/**
 * Validates `raw` (the value of `policies:`, possibly absent) and returns the policies, or every problem found.
 * `base` is the path the messages start with.
 */
export function parsePolicies(
  raw: unknown,
  base = 'policies',
): { policies: Policies; problems: [] } | { policies?: undefined; problems: PolicyProblem[] } {
  if (raw === undefined || raw === null) return { policies: NO_POLICIES, problems: [] };
  const c = new Collector();
  const top = c.object(raw, base, ['immutableTags', 'retention', 'quotas']);
  const immutableTags: ImmutableTagRule[] = [];
  const quotas: QuotaRule[] = [];
  const retention: RetentionPolicy = { dryRun: false, rules: [] };
  if (top) {
    c.list(top.immutableTags, `${base}.immutableTags`).forEach((v, i) => {
      const path = `${base}.immutableTags[${i}]`;
      const o = c.object(v, path, ['repos', 'tags']);
      if (!o) return;
      const repos = c.repos(o.repos, `${path}.repos`);
      const tags = c.tags(o.tags, `${path}.tags`);
      if (repos && tags) immutableTags.push({ id: path, repos, tags });
    });
    const r = top.retention === undefined ? undefined : c.object(top.retention, `${base}.retention`, RETENTION_KEYS);
    if (r) {
      const schedule = c.duration(r.schedule, `${base}.retention.schedule`);
      if (schedule !== undefined && schedule < 60_000)
        c.add(`${base}.retention.schedule`, 'must be at least 1m (or absent: retention then runs on demand only)');
      else if (schedule !== undefined) retention.scheduleMs = schedule;
      if (r.dryRun !== undefined && typeof r.dryRun !== 'boolean')
        c.add(`${base}.retention.dryRun`, 'must be true or false');
      retention.dryRun = r.dryRun === true;
      c.list(r.rules, `${base}.retention.rules`).forEach((v, i) => {
        const rule = retentionRule(c, v, `${base}.retention.rules[${i}]`);
        if (rule) retention.rules.push(rule);
      });
    }
    c.list(top.quotas, `${base}.quotas`).forEach((v, i) => {
      const rule = quotaRule(c, v, `${base}.quotas[${i}]`);
      if (rule) quotas.push(rule);
    });
  }
  if (c.problems.length > 0) return { problems: c.problems };
  return { policies: { immutableTags, retention, quotas }, problems: [] };
}
