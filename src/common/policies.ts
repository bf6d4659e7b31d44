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
 *   signatures:                # a valid signature by one of `keys` is required (registry/policy/signatures.ts)
 *     - { repos: "prod/**", tags: "v*", keys: [ keys/cosign.pub ], enforce: pull }   # refuse the pull by tag
 *     - { repos: "rel/**", keys: [ "-----BEGIN PUBLIC KEY-----\n…" ], enforce: push } # refuse setting the tag
 * ```
 * `repos` is a repository pattern as the access rules read it (repo-pattern.ts), or a list of them.
 * A quota's `limit` holds for EACH repository the rule matches (as Harbor's project quotas do per project), not
 * for the sum of the pattern's repositories: adding a repository under `ci/**` gives it its own 10 GiB.
 */
import { createPublicKey } from 'node:crypto';
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

/**
 * A key of a signature rule: a PEM public key (cosign) or certificate (notation's trust anchor), written inline or
 * as a file path relative to the config file; `pem` is empty until the file is read (registry/policy/holder.ts).
 */
export interface SignatureKey {
  source: string;
  pem: string;
}

export interface SignatureRule {
  id: string;
  repos: RepoMatcher;
  /** Absent: every tag. */
  tags?: TagPattern;
  keys: SignatureKey[];
  /** `pull`: a GET/HEAD by a matching tag is refused; `push`: a matching tag can only be set on a signed manifest. */
  enforce: 'push' | 'pull';
}

export interface Policies {
  immutableTags: ImmutableTagRule[];
  retention: RetentionPolicy;
  /** Absent in policies built before quotas existed: read as none. */
  quotas?: QuotaRule[];
  signatures: SignatureRule[];
}

export const NO_POLICIES: Policies = {
  immutableTags: [],
  retention: { dryRun: false, rules: [] },
  quotas: [],
  signatures: [],
};

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

/** The signature rules enforced on `enforce` for `tag` in `repo`. */
export function signatureRulesFor(
  policies: Policies,
  repo: string,
  tag: string,
  enforce: SignatureRule['enforce'],
): SignatureRule[] {
  return policies.signatures.filter(
    (r) => r.enforce === enforce && r.repos.test(repo) && (r.tags === undefined || r.tags.test(tag)),
  );
}

/** True when `key` is written inline (PEM text) rather than as a file path. */
export function isInlineKey(key: string): boolean {
  return key.includes('-----BEGIN ');
}

/** Why `pem` is not a usable public key or certificate, or undefined when it is. */
export function publicKeyProblem(pem: string): string | undefined {
  try {
    createPublicKey(pem);
    return undefined;
  } catch (err) {
    return (err as Error).message.split('\n')[0];
  }
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

const SIGNATURE_RULE_KEYS = ['repos', 'tags', 'keys', 'enforce'] as const;

function signatureRule(c: Collector, v: unknown, path: string): SignatureRule | undefined {
  const o = c.object(v, path, SIGNATURE_RULE_KEYS);
  if (!o) return undefined;
  const before = c.problems.length;
  const repos = c.repos(o.repos, `${path}.repos`);
  const tags = o.tags === undefined ? undefined : c.tags(o.tags, `${path}.tags`);
  if (o.enforce !== 'push' && o.enforce !== 'pull')
    c.add(
      `${path}.enforce`,
      `${JSON.stringify(o.enforce)} must be push (refuse setting the tag) or pull (refuse the pull)`,
    );
  const keys: SignatureKey[] = [];
  if (!Array.isArray(o.keys) || o.keys.length === 0)
    c.add(`${path}.keys`, 'must be a list of public keys: PEM file paths (relative to the config file) or PEM text');
  else
    o.keys.forEach((k, i) => {
      if (typeof k !== 'string' || k.trim() === '')
        return c.add(`${path}.keys[${i}]`, 'must be a file path or PEM text');
      if (!isInlineKey(k)) return keys.push({ source: k, pem: '' });
      const problem = publicKeyProblem(k);
      if (problem) c.add(`${path}.keys[${i}]`, `is not a PEM public key or certificate (${problem})`);
      keys.push({ source: `${path}.keys[${i}] (inline)`, pem: k });
    });
  if (c.problems.length > before) return undefined;
  const rule: SignatureRule = { id: path, repos: repos as RepoMatcher, keys, enforce: o.enforce as 'push' | 'pull' };
  if (tags) rule.tags = tags;
  return rule;
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
  const top = c.object(raw, base, ['immutableTags', 'retention', 'quotas', 'signatures']);
  const immutableTags: ImmutableTagRule[] = [];
  const quotas: QuotaRule[] = [];
  const signatures: SignatureRule[] = [];
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
    c.list(top.signatures, `${base}.signatures`).forEach((v, i) => {
      const rule = signatureRule(c, v, `${base}.signatures[${i}]`);
      if (rule) signatures.push(rule);
    });
  }
  if (c.problems.length > 0) return { problems: c.problems };
  return { policies: { immutableTags, retention, quotas, signatures }, problems: [] };
}
