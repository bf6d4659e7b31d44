/**
 * Per-user permissions from the access file (`auth/access.yaml`):
 *
 *   users:
 *     admin:  { admin: true }
 *     ci:     { rules: [ { repos: "apps/**", actions: [pull, push] } ] }
 *     viewer: { rules: [ { repos: "**", actions: [pull] } ] }
 *
 * Repository patterns are globs (`*` within one path segment, `**` across segments, `a/**\/b` also matching
 * `a/b`), read by `src/common/repo-pattern.ts`, which the UI shares. A user absent from the file gets nothing. With no
 * access file at all every authenticated user is admin (registry:2 behaviour).
 *
 * Robot accounts (`robot$NAME`, robots.ts) are not in this file: their rights are exactly their own patterns, and
 * they are never admin, with or without an access file.
 *
 * Anonymous pull, per repository pattern (public repositories; nothing else is ever anonymous):
 *
 *   anonymous: { pull: [ "public/**" ] }
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { repoPatternToRegExp } from '../../common/repo-pattern.js';
import { robotName, RobotSet } from './robots.js';

export type Action = 'pull' | 'push' | 'delete';

const RuleSchema = z.object({
  repos: z.string().min(1),
  actions: z.array(z.enum(['pull', 'push', 'delete'])),
});
const UserSchema = z.object({
  admin: z.boolean().optional(),
  rules: z.array(RuleSchema).optional(),
});
const AccessSchema = z.object({
  users: z.record(z.string(), UserSchema.nullable()).default({}),
  anonymous: z.object({ pull: z.array(z.string().min(1)).default([]) }).optional(),
});

export interface AccessRule {
  repos: string;
  actions: Action[];
}

export interface UserAccess {
  admin: boolean;
  rules: AccessRule[];
}

export class AccessPolicy {
  private readonly users: Map<string, { admin: boolean; rules: { re: RegExp; rule: AccessRule }[] }> | undefined;
  private readonly anonymousPull: RegExp[];
  /** The robots in force; set by the authenticator when it loads the robots file. */
  robots: RobotSet = new RobotSet();

  /** `undefined` users: no access file, everyone authenticated is admin (and nothing is anonymous). */
  constructor(users?: Record<string, UserAccess>, anonymousPull: readonly string[] = []) {
    this.anonymousPull = users ? anonymousPull.map(repoPatternToRegExp) : [];
    if (!users) return;
    this.users = new Map(
      Object.entries(users).map(([name, u]) => [
        name,
        { admin: u.admin, rules: u.rules.map((rule) => ({ re: repoPatternToRegExp(rule.repos), rule })) },
      ]),
    );
  }

  static open(): AccessPolicy {
    return new AccessPolicy();
  }

  /** Parses the YAML text of an access file; throws with a readable message on invalid content. */
  static parse(text: string): AccessPolicy {
    const raw: unknown = parseYaml(text) ?? {};
    const result = AccessSchema.safeParse(raw);
    if (!result.success) {
      const issue = result.error.issues[0];
      throw new Error(`invalid access file at ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
    }
    const users: Record<string, UserAccess> = {};
    for (const [name, u] of Object.entries(result.data.users))
      users[name] = { admin: u?.admin ?? false, rules: u?.rules ?? [] };
    return new AccessPolicy(users, result.data.anonymous?.pull ?? []);
  }

  get hasFile(): boolean {
    return this.users !== undefined;
  }

  isAdmin(user: string): boolean {
    if (robotName(user) !== undefined) return false;
    if (!this.users) return true;
    return this.users.get(user)?.admin ?? false;
  }

  can(user: string, repo: string, action: Action): boolean {
    const robot = robotName(user);
    if (robot !== undefined) return this.robots.can(robot, repo, action);
    if (!this.users) return true;
    const u = this.users.get(user);
    if (!u) return false;
    if (u.admin) return true;
    return u.rules.some(({ re, rule }) => rule.actions.includes(action) && re.test(repo));
  }

  /** Whether a client without credentials may do `action` on `repo`: pull on the `anonymous.pull` patterns only. */
  anonymousCan(repo: string, action: Action): boolean {
    return action === 'pull' && this.anonymousPull.some((re) => re.test(repo));
  }

  /** Whether any repository is public: then the catalog answers clients without credentials, listing those only. */
  get hasPublic(): boolean {
    return this.anonymousPull.length > 0;
  }

  rulesOf(user: string): AccessRule[] {
    const robot = this.robots.get(robotName(user) ?? '');
    if (robotName(user) !== undefined)
      return robot
        ? (['pull', 'push', 'delete'] as const).flatMap((a) => robot[a].map((repos) => ({ repos, actions: [a] })))
        : [];
    if (!this.users) return [{ repos: '**', actions: ['pull', 'push', 'delete'] }];
    return this.users.get(user)?.rules.map((r) => r.rule) ?? [];
  }
}
