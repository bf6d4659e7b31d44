/**
 * `regctl users add|remove|list|set`: the stack's users and what each may do, kept in three files that must
 * agree: `auth/htpasswd` (bcrypt, 0600), `auth/access.yaml` (what the registry enforces) and the `users` of
 * `regctl.yaml` (so a re-render with `regctl init --force` keeps them). Each file is replaced atomically, in an
 * order that never grants more than intended in between: adding writes the password before the permissions,
 * removing revokes the permissions before the password. YAML files are edited as documents, so comments stay.
 * The running registry watches its auth directory; `POST /admin/v1/reload` makes the change immediate. A swarm
 * stack's tasks read the files from secrets and configs, which cannot change: the new versions are rolled out
 * (start-first, as `regctl up` does) before the reload.
 */
import { join } from 'node:path';
import { parseDocument, type Document } from 'yaml';
import { RegctlError } from '../common/errors.js';
import { readIfExists } from '../common/fs.js';
import type { Output } from '../common/io.js';
import { CONFIG_FILE, parseStackConfigText } from '../config/load.js';
import { ACTIONS, USER_NAME, primaryAdmin, type Action, type StackConfig } from '../config/schema.js';
import { formatGraceFile, graceFilePath, parseGraceFile } from '../registry/auth/grace.js';
import { formatHtpasswd, hashPassword, parseHtpasswd, type HtpasswdEntry } from '../stack/htpasswd.js';
import { generatePassword } from '../stack/secrets.js';
import { STATE_FILE, atomicWrite, sha256 } from '../stack/write.js';
import { AdminClient, stackEndpoint, type Credentials } from './admin-client.js';
import { readEnvFile } from '../stack/env.js';
import type { DockerEngine } from '../docker/engine.js';
import { up } from './up.js';

export const HTPASSWD_FILE = 'auth/htpasswd';
export const ACCESS_FILE = 'auth/access.yaml';

export interface UserPermissions {
  admin: boolean;
  rules: { repos: string; actions: Action[] }[];
}

export interface UserInfo extends UserPermissions {
  name: string;
  /** Has an htpasswd entry (can sign in). */
  hasPassword: boolean;
  /** The admin whose password `.env` holds. */
  envAdmin: boolean;
}

/** Turns `--pull/--push/--delete PATTERN` lists into rules, one per pattern, actions in canonical order. */
export function permissionsFromFlags(flags: {
  admin?: boolean;
  pull?: string[];
  push?: string[];
  delete?: string[];
}): UserPermissions {
  if (flags.admin) return { admin: true, rules: [] };
  const byPattern = new Map<string, Set<Action>>();
  for (const action of ACTIONS) {
    for (const pattern of flags[action] ?? []) {
      const p = pattern.trim();
      if (!p)
        throw new RegctlError('USAGE', `--${action} needs a repository pattern`, {
          hint: 'for example --pull "apps/**"',
        });
      if (!byPattern.has(p)) byPattern.set(p, new Set());
      byPattern.get(p)?.add(action);
    }
  }
  return {
    admin: false,
    rules: [...byPattern].map(([repos, set]) => ({ repos, actions: ACTIONS.filter((a) => set.has(a)) })),
  };
}

function permissionsNode(p: UserPermissions): Record<string, unknown> {
  return p.admin ? { admin: true } : { rules: p.rules.map((r) => ({ repos: r.repos, actions: [...r.actions] })) };
}

/** Sets (or with `undefined` removes) one user under `users:` of a YAML document text, keeping the rest. */
export function editUsersYaml(text: string, user: string, perms: UserPermissions | undefined): string {
  const doc: Document = parseDocument(text);
  if (doc.errors.length > 0) throw new Error(`not valid YAML: ${doc.errors[0]?.message.split('\n')[0] ?? ''}`);
  if (perms === undefined) doc.deleteIn(['users', user]);
  else {
    const node = doc.createNode(permissionsNode(perms));
    if (!doc.hasIn(['users'])) doc.setIn(['users'], doc.createNode({}));
    doc.setIn(['users', user], node);
  }
  return doc.toString({ lineWidth: 0, indentSeq: true });
}

/** Records a file regctl rewrote in the render state, when the state knew the previous content (no false "edited"). */
async function recordRendered(dir: string, path: string, before: string, after: string): Promise<void> {
  const statePath = join(dir, STATE_FILE);
  const text = await readIfExists(statePath);
  if (!text) return;
  let state: Record<string, string>;
  try {
    state = JSON.parse(text) as Record<string, string>;
  } catch {
    return;
  }
  if (state[path] !== sha256(before)) return;
  state[path] = sha256(after);
  const sorted = Object.fromEntries(Object.entries(state).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  await atomicWrite(statePath, JSON.stringify(sorted, null, 2) + '\n', 0o644);
}

export interface StackUsersFiles {
  dir: string;
  config: StackConfig;
  configText: string;
  accessText: string;
  htpasswd: HtpasswdEntry[];
  /** REGISTRY_USERNAME of `.env`. */
  envAdmin: string | undefined;
}

export async function readUsersFiles(dir: string): Promise<StackUsersFiles> {
  const configText = await readIfExists(join(dir, CONFIG_FILE));
  if (configText === undefined) {
    throw new RegctlError('CONFIG_MISSING', `no ${CONFIG_FILE} in ${dir}`, {
      hint: `run \`regctl init --dir ${dir}\`, or pass --dir to the stack's directory`,
    });
  }
  const config = parseStackConfigText(configText, join(dir, CONFIG_FILE));
  const accessText = (await readIfExists(join(dir, ACCESS_FILE))) ?? 'users: {}\n';
  const htpasswdText = (await readIfExists(join(dir, HTPASSWD_FILE))) ?? '';
  let htpasswd: HtpasswdEntry[];
  try {
    htpasswd = parseHtpasswd(htpasswdText);
  } catch (err) {
    throw new RegctlError('CONFIG_INVALID', `${join(dir, HTPASSWD_FILE)}: ${(err as Error).message}`, {
      hint: 'fix or remove the line; each is user:bcrypt-hash',
    });
  }
  const env = await readEnvFile(join(dir, '.env'));
  return { dir, config, configText, accessText, htpasswd, envAdmin: env.REGISTRY_USERNAME };
}

export function listUsers(files: StackUsersFiles): UserInfo[] {
  const names = new Set([...Object.keys(files.config.users), ...files.htpasswd.map((e) => e.user)]);
  return [...names].sort().map((name) => {
    const u = files.config.users[name];
    return {
      name,
      admin: u?.admin ?? false,
      rules: u?.rules ?? [],
      hasPassword: files.htpasswd.some((e) => e.user === name),
      envAdmin: name === files.envAdmin,
    };
  });
}

/** Writes the users of `regctl.yaml` and `auth/access.yaml` (validated first), recording both in the render state. */
async function writeUserYaml(files: StackUsersFiles, user: string, perms: UserPermissions | undefined): Promise<void> {
  const configPath = join(files.dir, CONFIG_FILE);
  const accessPath = join(files.dir, ACCESS_FILE);
  let nextConfig: string;
  let nextAccess: string;
  try {
    nextConfig = editUsersYaml(files.configText, user, perms);
    nextAccess = editUsersYaml(files.accessText, user, perms);
  } catch (err) {
    throw new RegctlError('CONFIG_INVALID', `cannot edit the users: ${(err as Error).message}`, {
      hint: 'fix regctl.yaml and auth/access.yaml, or re-run `regctl init --force`',
    });
  }
  parseStackConfigText(nextConfig, configPath);
  await atomicWrite(accessPath, nextAccess, 0o644);
  await recordRendered(files.dir, ACCESS_FILE, files.accessText, nextAccess);
  await atomicWrite(configPath, nextConfig, 0o644);
  await recordRendered(files.dir, CONFIG_FILE, files.configText, nextConfig);
}

export async function writeHtpasswd(dir: string, entries: HtpasswdEntry[]): Promise<void> {
  await atomicWrite(join(dir, HTPASSWD_FILE), formatHtpasswd(entries), 0o600);
}

export function checkUserName(name: string): void {
  if (!USER_NAME.test(name)) {
    throw new RegctlError('USAGE', `"${name}" is not a valid user name`, {
      hint: 'letters, digits, ".", "_" or "-", at most 64 characters, no ":"',
    });
  }
}

/** A password given by a person: refused when too short or holding line breaks. */
export function checkGivenPassword(password: string): void {
  if (password.length < 12)
    throw new RegctlError('USAGE', 'the password given on stdin is shorter than 12 characters', {
      hint: 'omit --password-stdin to get a generated one',
    });
  if (/[\r\n\0]/.test(password))
    throw new RegctlError('USAGE', 'the password given on stdin holds a line break or NUL', { hint: 'give one line' });
}

/** Asks the running registry to re-read its auth files now; a stopped stack is not an error (it reads them at start). */
export async function reloadRegistry(
  dir: string,
  out: Output,
  env: NodeJS.ProcessEnv,
  tryCredentials: Credentials[] = [],
): Promise<boolean> {
  let endpoint;
  try {
    endpoint = await stackEndpoint(dir, env);
  } catch {
    return false;
  }
  const client = new AdminClient(endpoint);
  const candidates = [...tryCredentials, ...(endpoint.credentials ? [endpoint.credentials] : [])];
  const deadline = Date.now() + 10_000;
  for (;;) {
    for (const auth of candidates) {
      let status: number;
      try {
        status = (await client.request('POST', '/admin/v1/reload', { auth, timeoutMs: 10_000 })).status;
      } catch {
        out.warn(`the registry at ${endpoint.description} does not answer: it reads the new files when it starts`);
        return false;
      }
      if (status === 200) return true;
      if (status !== 401 && status !== 429) {
        out.warn(
          `the registry answered ${status} to the reload; it still picks the change up from the files within seconds`,
        );
        return false;
      }
    }
    // 401 for every candidate: the registry's watcher may be between two files; try again shortly.
    if (Date.now() >= deadline) {
      out.warn(
        'the registry did not accept the admin credentials for a reload; it picks the change up from the files within seconds',
      );
      return false;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** Where the users' files go live: the stack directory, and the engine a swarm stack's rollout needs. */
export interface PublishTarget {
  dir: string;
  out: Output;
  env?: NodeJS.ProcessEnv;
  /** Needed for a swarm stack (deploy.mode: swarm). */
  engine?: DockerEngine;
}

/** Makes the running registry use the files as they are now; true when it confirmed a reload. */
async function publishUsers(config: StackConfig, target: PublishTarget): Promise<boolean> {
  if (config.deploy.mode === 'swarm') {
    if (!target.engine) throw new Error('changing users on a swarm stack needs the engine');
    target.out.step('Rolling out the users as new secret and config versions');
    await up({ dir: target.dir, out: target.out, engine: target.engine, skipProbes: true });
  }
  return reloadRegistry(target.dir, target.out, target.env ?? process.env);
}

export interface AddUserResult {
  user: string;
  permissions: UserPermissions;
  /** Present only when regctl generated it: shown once. */
  password?: string;
  generated: boolean;
  reloaded: boolean;
}

export async function addUser(
  opts: PublishTarget & { name: string; permissions: UserPermissions; password?: string },
): Promise<AddUserResult> {
  checkUserName(opts.name);
  const files = await readUsersFiles(opts.dir);
  if (files.config.users[opts.name] || files.htpasswd.some((e) => e.user === opts.name)) {
    throw new RegctlError('FILE_EXISTS', `user ${opts.name} already exists`, {
      hint: '`regctl users set` changes permissions, `regctl rotate-credentials --user` the password',
    });
  }
  if (!opts.permissions.admin && opts.permissions.rules.length === 0) {
    throw new RegctlError('USAGE', `give ${opts.name} some permission: --admin, or --pull/--push/--delete PATTERN`, {
      hint: 'for example: regctl users add ci --pull "**" --push "apps/**"',
    });
  }
  if (opts.password !== undefined) checkGivenPassword(opts.password);
  const password = opts.password ?? generatePassword();
  await writeHtpasswd(opts.dir, [...files.htpasswd, { user: opts.name, hash: hashPassword(password) }]);
  await writeUserYaml(files, opts.name, opts.permissions);
  const reloaded = await publishUsers(files.config, opts);
  return {
    user: opts.name,
    permissions: opts.permissions,
    ...(opts.password === undefined ? { password } : {}),
    generated: opts.password === undefined,
    reloaded,
  };
}

export async function setUser(
  opts: PublishTarget & { name: string; permissions: UserPermissions },
): Promise<{ user: string; permissions: UserPermissions; reloaded: boolean }> {
  const files = await readUsersFiles(opts.dir);
  if (!files.config.users[opts.name] && !files.htpasswd.some((e) => e.user === opts.name)) {
    throw new RegctlError('NOT_FOUND', `no user ${opts.name}`, {
      hint: '`regctl users list` shows the users; `regctl users add` creates one',
    });
  }
  if (!opts.permissions.admin && opts.permissions.rules.length === 0) {
    throw new RegctlError('USAGE', `give ${opts.name} some permission: --admin, or --pull/--push/--delete PATTERN`, {
      hint: '`regctl users remove` takes every right away',
    });
  }
  const wasAdmin = files.config.users[opts.name]?.admin ?? false;
  if (wasAdmin && !opts.permissions.admin && opts.name === files.envAdmin) {
    throw new RegctlError(
      'USAGE',
      `${opts.name} is the admin regctl uses (REGISTRY_USERNAME in .env) and must stay admin`,
      { hint: 'make another user admin and point .env at it first' },
    );
  }
  await writeUserYaml(files, opts.name, opts.permissions);
  const reloaded = await publishUsers(files.config, opts);
  return { user: opts.name, permissions: opts.permissions, reloaded };
}

export async function removeUser(opts: PublishTarget & { name: string }): Promise<{ user: string; reloaded: boolean }> {
  const files = await readUsersFiles(opts.dir);
  const known = files.config.users[opts.name] || files.htpasswd.some((e) => e.user === opts.name);
  if (!known)
    throw new RegctlError('NOT_FOUND', `no user ${opts.name}`, { hint: '`regctl users list` shows the users' });
  if (
    opts.name === files.envAdmin ||
    (opts.name === primaryAdmin(files.config) && Object.values(files.config.users).filter((u) => u.admin).length === 1)
  ) {
    throw new RegctlError('USAGE', `${opts.name} is the admin regctl itself uses and cannot be removed`, {
      hint: 'rotate its password with `regctl rotate-credentials` instead',
    });
  }
  await writeUserYaml(files, opts.name, undefined);
  await writeHtpasswd(
    opts.dir,
    files.htpasswd.filter((e) => e.user !== opts.name),
  );
  const gracePath = graceFilePath(join(opts.dir, HTPASSWD_FILE));
  const graceText = await readIfExists(gracePath);
  if (graceText !== undefined) {
    const entries = parseGraceFile(graceText).entries.filter((e) => e.user !== opts.name);
    await atomicWrite(gracePath, formatGraceFile(entries), 0o600);
  }
  const reloaded = await publishUsers(files.config, opts);
  return { user: opts.name, reloaded };
}
