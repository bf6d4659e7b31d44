/**
 * `regctl robots add|list|remove`: robot accounts, kept in `auth/robots.yaml` (0600, beside htpasswd; format in
 * registry/auth/robots.ts). A robot signs in as `robot$NAME` at the token endpoint only, so they exist on stacks
 * with `registry.auth: token` alone. `add` prints the generated secret once (only its bcrypt hash is stored);
 * `remove` marks the robot revoked (kept in the file for the record), which the registry enforces at the next
 * request once it has re-read the file: at once after the `POST /admin/v1/reload` each change ends with.
 * Last use lives in the registry (its metadata store), so `list` asks the running registry for it.
 * `add --oidc-issuer URL --oidc-audience AUD --oidc-claim k=v…` binds the robot to an OIDC issuer instead of a
 * secret: its pipeline signs in as `robot$NAME` with an ID token from the issuer as the password (auth/oidc.ts).
 * At least one claim is required: an issuer such as GitHub's signs tokens for every repository on it, so issuer and
 * audience alone would admit anyone's pipeline that asks for that audience.
 */
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { RegctlError } from '../common/errors.js';
import { readIfExists } from '../common/fs.js';
import type { Output } from '../common/io.js';
import { parseDuration } from '../common/units.js';
import { CONFIG_FILE, parseStackConfigText } from '../config/load.js';
import { issuerUrlProblem, type OidcBinding } from '../registry/auth/oidc.js';
import { parseRobotsFile, ROBOT_NAME, ROBOT_PREFIX, type RobotEntry } from '../registry/auth/robots.js';
import { hashPassword } from '../stack/htpasswd.js';
import { generatePassword } from '../stack/secrets.js';
import { atomicWrite } from '../stack/write.js';
import { AdminClient, stackEndpoint } from './admin-client.js';
import { reloadRegistry } from './users.js';

export const ROBOTS_FILE = 'auth/robots.yaml';

export interface RobotPatterns {
  pull: string[];
  push: string[];
  delete: string[];
}

export interface RobotInfo extends RobotPatterns {
  name: string;
  /** What to sign in with (`robot$NAME`). */
  user: string;
  created: string;
  expires: string | null;
  revoked: string | null;
  /** The OIDC binding; null for a robot with a secret. */
  oidc: OidcBinding | null;
  /** Last token issued to it; null: never, undefined: the registry could not be asked. */
  lastUse?: string | null;
}

interface Target {
  dir: string;
  out: Output;
  env?: NodeJS.ProcessEnv;
}

/** The stack's `registry.auth` (`basic` or `token`). */
export async function stackAuthMode(dir: string): Promise<'basic' | 'token'> {
  const configText = await readIfExists(join(dir, CONFIG_FILE));
  if (configText === undefined)
    throw new RegctlError('CONFIG_MISSING', `no ${CONFIG_FILE} in ${dir}`, {
      hint: `run \`regctl init --dir ${dir}\`, or pass --dir to the stack's directory`,
    });
  return parseStackConfigText(configText, join(dir, CONFIG_FILE)).registry.auth;
}

/** Reads the robots file after checking the stack uses token auth (robots are token-only). */
async function readRobots(dir: string): Promise<Record<string, RobotEntry>> {
  if ((await stackAuthMode(dir)) !== 'token')
    throw new RegctlError('USAGE', 'robot accounts need token auth, and this stack uses basic auth', {
      hint: `set registry.auth: token in ${CONFIG_FILE} and run regctl up`,
    });
  try {
    return parseRobotsFile((await readIfExists(join(dir, ROBOTS_FILE))) ?? '');
  } catch (err) {
    throw new RegctlError('CONFIG_INVALID', `${join(dir, ROBOTS_FILE)}: ${(err as Error).message}`, {
      hint: 'fix the file, or restore it from a backup',
    });
  }
}

async function writeRobots(dir: string, robots: Record<string, RobotEntry>): Promise<void> {
  const doc = parseDocument('robots: {}\n');
  doc.set('robots', doc.createNode(robots));
  await atomicWrite(join(dir, ROBOTS_FILE), doc.toString(), 0o600);
}

function info(name: string, e: RobotEntry): RobotInfo {
  return {
    name,
    user: ROBOT_PREFIX + name,
    pull: e.pull,
    push: e.push,
    delete: e.delete,
    created: e.created,
    expires: e.expires,
    revoked: e.revoked ?? null,
    oidc: e.oidc ?? null,
  };
}

export interface AddRobotOptions extends Target {
  name: string;
  patterns: RobotPatterns;
  /** A duration (`90d`), or `never`. */
  expires: string;
  /** Bind to an OIDC issuer instead of generating a secret. */
  oidc?: { issuer: string; audience?: string; claims: string[] };
  now?: Date;
}

/** `--oidc-*` options → a binding; throws a USAGE error saying what to fix. */
export function oidcBinding(o: { issuer: string; audience?: string; claims: string[] }): OidcBinding {
  if (o.issuer === '')
    throw new RegctlError('USAGE', '--oidc-audience and --oidc-claim need --oidc-issuer', {
      hint: 'e.g. --oidc-issuer https://token.actions.githubusercontent.com',
    });
  const problem = issuerUrlProblem(o.issuer);
  if (problem)
    throw new RegctlError('USAGE', `--oidc-issuer ${problem}`, {
      hint: 'e.g. --oidc-issuer https://token.actions.githubusercontent.com',
    });
  if (!o.audience)
    throw new RegctlError('USAGE', '--oidc-issuer needs --oidc-audience', {
      hint: 'the audience the pipeline asks its token for, e.g. the registry host',
    });
  const claims: Record<string, string> = {};
  for (const c of o.claims) {
    const eq = c.indexOf('=');
    if (eq <= 0 || eq === c.length - 1)
      throw new RegctlError('USAGE', `--oidc-claim "${c}" is not NAME=VALUE`, {
        hint: 'e.g. --oidc-claim repository=org/app --oidc-claim ref=refs/heads/main',
      });
    claims[c.slice(0, eq)] = c.slice(eq + 1);
  }
  if (Object.keys(claims).length === 0)
    throw new RegctlError('USAGE', 'an OIDC robot needs at least one --oidc-claim', {
      hint: 'bind it to your pipeline, e.g. --oidc-claim repository=org/app (GitLab: project_path=group/app)',
    });
  return { issuer: o.issuer, audience: o.audience, claims };
}

interface Added<S> {
  robot: RobotInfo;
  /** The generated secret (shown once); undefined for an OIDC robot, which has none. */
  secret: S;
  reloaded: boolean;
}

export async function addRobot(opts: AddRobotOptions & { oidc?: undefined }): Promise<Added<string>>;
export async function addRobot(opts: AddRobotOptions): Promise<Added<string | undefined>>;
export async function addRobot(opts: AddRobotOptions): Promise<Added<string | undefined>> {
  if (!ROBOT_NAME.test(opts.name))
    throw new RegctlError('USAGE', `"${opts.name}" is not a robot name`, {
      hint: 'use lower-case letters, digits, ".", "_" or "-" (the sign-in name is robot$NAME)',
    });
  const p = opts.patterns;
  if (p.pull.length + p.push.length + p.delete.length === 0)
    throw new RegctlError('USAGE', 'a robot without patterns could do nothing', {
      hint: 'give --pull, --push or --delete PATTERN',
    });
  let ttl: number | undefined;
  if (opts.expires !== 'never') {
    try {
      ttl = parseDuration(opts.expires);
    } catch (err) {
      throw new RegctlError('USAGE', `--expires: ${(err as Error).message}`, { hint: 'e.g. --expires 90d' });
    }
    if (ttl <= 0) throw new RegctlError('USAGE', '--expires must be longer than 0', { hint: 'e.g. --expires 90d' });
  }
  const oidc = opts.oidc && oidcBinding(opts.oidc);
  const robots = await readRobots(opts.dir);
  if (robots[opts.name])
    throw new RegctlError('FILE_EXISTS', `robot ${opts.name} already exists`, {
      hint: 'pick another name (a removed robot keeps its name, for the record)',
    });
  const now = opts.now ?? new Date();
  const secret = oidc ? undefined : generatePassword(40);
  const entry: RobotEntry = {
    ...(secret === undefined ? { oidc } : { secret: hashPassword(secret) }),
    ...p,
    created: now.toISOString(),
    expires: ttl === undefined ? null : new Date(now.getTime() + ttl).toISOString(),
  };
  await writeRobots(opts.dir, { ...robots, [opts.name]: entry });
  const reloaded = await reloadRegistry(opts.dir, opts.out, opts.env ?? process.env);
  return { robot: info(opts.name, entry), secret, reloaded };
}

export async function removeRobot(opts: Target & { name: string; now?: Date }): Promise<{ reloaded: boolean }> {
  const robots = await readRobots(opts.dir);
  const entry = robots[opts.name];
  if (!entry)
    throw new RegctlError('NOT_FOUND', `no robot named ${opts.name}`, { hint: 'regctl robots list shows them' });
  if (entry.revoked === undefined)
    await writeRobots(opts.dir, {
      ...robots,
      [opts.name]: { ...entry, revoked: (opts.now ?? new Date()).toISOString() },
    });
  return { reloaded: await reloadRegistry(opts.dir, opts.out, opts.env ?? process.env) };
}

/** The robots of the file, with their last use when the running registry answers. */
export async function listRobots(opts: Target): Promise<RobotInfo[]> {
  const list = Object.entries(await readRobots(opts.dir)).map(([name, e]) => info(name, e));
  let used: Map<string, string | null> | undefined;
  try {
    const endpoint = await stackEndpoint(opts.dir, opts.env ?? process.env);
    const client = new AdminClient(endpoint);
    const r = await client.json<{ robots: { name: string; lastUse: string | null }[] }>(
      'robots',
      'GET',
      '/admin/v1/robots',
      undefined,
      endpoint.credentials ? { auth: endpoint.credentials, timeoutMs: 5000 } : { timeoutMs: 5000 },
    );
    used = new Map(r.robots.map((x) => [x.name, x.lastUse]));
  } catch (err) {
    opts.out.warn(`last use unknown: ${(err as Error).message}`);
  }
  return list.map((r) => (used ? { ...r, lastUse: used.get(r.name) ?? null } : r));
}
