/**
 * Robot accounts (`auth/robots.yaml`, beside htpasswd, 0600): token-only credentials whose rights are exactly their
 * repository patterns, whatever the access file says of users.
 *
 *   robots:
 *     ci-app:
 *       secret: $2a$10$…            # bcrypt of the generated secret, which is shown once
 *       pull: [ "apps/**" ]
 *       push: [ "apps/**" ]
 *       delete: []
 *       created: 2026-12-06T01:00:00.000Z
 *       expires: 2027-03-06T01:00:00.000Z   # null: never
 *       revoked: 2026-12-07T09:00:00.000Z   # set by `regctl robots remove`; the entry stays for the record
 *     ci-oidc:                      # no secret: bound to an OIDC issuer, its ID token is the password (oidc.ts)
 *       oidc:
 *         issuer: https://token.actions.githubusercontent.com
 *         audience: registry.example.com
 *         claims: { repository: org/app, ref: refs/heads/main }
 *       push: [ "apps/**" ]
 *       …
 *
 * A robot signs in as `robot$NAME`. User names cannot hold `$` (config/schema.ts USER_NAME), so a robot and a user
 * never share a name, and the prefix tells every check which of the two it holds without a lookup. Robots are
 * accepted at the token endpoint only: Basic credentials on `/v2/` and the admin API are users' alone.
 * Expiry and revocation are checked at every request a robot's token makes, not only when the token is issued.
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { repoPatternToRegExp } from '../../common/repo-pattern.js';
import { issuerUrlProblem } from './oidc.js';

/** The actions a robot's patterns grant (access.ts's Action, which imports this file). */
type Action = 'pull' | 'push' | 'delete';

export const ROBOT_PREFIX = 'robot$';
export const ROBOTS_FILE_NAME = 'robots.yaml';
export const ROBOT_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

const BCRYPT_RE = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/;

const OidcBindingSchema = z.object({
  issuer: z.string().superRefine((v, ctx) => {
    const problem = issuerUrlProblem(v);
    if (problem) ctx.addIssue({ code: 'custom', message: `issuer ${problem}` });
  }),
  audience: z.string().min(1),
  claims: z.record(z.string().min(1), z.string().min(1)).default({}),
});

const RobotSchema = z
  .object({
    /** A robot has a secret or an OIDC binding, never both: a bound robot's only credential is its issuer's token. */
    secret: z.string().regex(BCRYPT_RE, 'secret must be a bcrypt hash').optional(),
    oidc: OidcBindingSchema.optional(),
    pull: z.array(z.string().min(1)).default([]),
    push: z.array(z.string().min(1)).default([]),
    delete: z.array(z.string().min(1)).default([]),
    created: z.string().datetime(),
    expires: z.string().datetime().nullable().default(null),
    revoked: z.string().datetime().optional(),
  })
  .refine((r) => (r.secret === undefined) !== (r.oidc === undefined), {
    message: 'a robot has either a secret or an oidc binding',
  });
const RobotsSchema = z.object({ robots: z.record(z.string().regex(ROBOT_NAME), RobotSchema).default({}) });

export type RobotEntry = z.infer<typeof RobotSchema>;

/** Parses the text of a robots file; throws with a readable message on invalid content. */
export function parseRobotsFile(text: string): Record<string, RobotEntry> {
  const result = RobotsSchema.safeParse(parseYaml(text) ?? {});
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new Error(`invalid robots file at ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  return result.data.robots;
}

/** `robot$NAME` → `NAME`; undefined for anything else. */
export function robotName(user: string): string | undefined {
  return user.startsWith(ROBOT_PREFIX) ? user.slice(ROBOT_PREFIX.length) : undefined;
}

/** Why a robot cannot act now (`revoked`, `expired`), or undefined while it can. */
export function robotRefusal(entry: RobotEntry | undefined, nowMs: number): string | undefined {
  if (!entry) return 'unknown';
  if (entry.revoked !== undefined) return `revoked on ${entry.revoked}`;
  if (entry.expires !== null && Date.parse(entry.expires) <= nowMs) return `expired on ${entry.expires}`;
  return undefined;
}

/** The robots in force, with their patterns compiled. */
export class RobotSet {
  private readonly compiled: Map<string, { entry: RobotEntry; re: Record<Action, RegExp[]> }>;
  private readonly now: () => number;

  constructor(robots: Record<string, RobotEntry> = {}, now: () => number = Date.now) {
    this.now = now;
    this.compiled = new Map(
      Object.entries(robots).map(([name, entry]) => [
        name,
        {
          entry,
          re: {
            pull: entry.pull.map(repoPatternToRegExp),
            push: entry.push.map(repoPatternToRegExp),
            delete: entry.delete.map(repoPatternToRegExp),
          },
        },
      ]),
    );
  }

  get size(): number {
    return this.compiled.size;
  }

  get(name: string): RobotEntry | undefined {
    return this.compiled.get(name)?.entry;
  }

  names(): string[] {
    return [...this.compiled.keys()];
  }

  /** Whether robot `name` may do `action` on `repo` now: live (not revoked, not expired) and a pattern matches. */
  can(name: string, repo: string, action: Action): boolean {
    const r = this.compiled.get(name);
    if (!r || robotRefusal(r.entry, this.now()) !== undefined) return false;
    return r.re[action].some((re) => re.test(repo));
  }
}
