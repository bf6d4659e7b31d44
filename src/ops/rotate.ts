/**
 * `regctl rotate-credentials`: a new password for one user (the `.env` admin by default), live.
 *
 * Order of writes, each atomic, so that no request made with a valid secret fails in between:
 * 1. with a grace window, the old hash goes to `auth/htpasswd.grace` (`user:hash:expires`) first;
 * 2. `auth/htpasswd` gets the new bcrypt hash;
 * 3. `.env` gets the new password when the user is its REGISTRY_USERNAME;
 * 4. `POST /admin/v1/reload` (the registry also watches the directory) so the new secret works at once.
 * The registry refuses the old secret once the window ends, at the first request after it, with no reload. The
 * web UI ends a user's sessions the first time the registry answers 401 for the credentials they hold.
 *
 * Where the new secret appears: generated passwords are shown once on a terminal or in `--json` (asked for by a
 * script that captures it); the `.env` admin's is also in `.env` (0600). For another user, a generated password
 * with neither a terminal nor `--json` would be shown nowhere, so that is refused before anything changes.
 */
import { join } from 'node:path';
import { RegctlError } from '../common/errors.js';
import { readIfExists } from '../common/fs.js';
import type { Output } from '../common/io.js';
import {
  formatGraceFile,
  graceFilePath,
  liveGraceEntries,
  parseGraceFile,
  type GraceEntry,
} from '../registry/auth/grace.js';
import { hashPassword } from '../stack/htpasswd.js';
import { ENV_KEYS, envValueProblem, setEnvValues } from '../stack/env.js';
import { generatePassword } from '../stack/secrets.js';
import { atomicWrite } from '../stack/write.js';
import type { DockerEngine } from '../docker/engine.js';
import { AdminClient, stackEndpoint } from './admin-client.js';
import { up } from './up.js';
import { retryUntil } from './http-probe.js';
import { HTPASSWD_FILE, checkGivenPassword, readUsersFiles, reloadRegistry, writeHtpasswd } from './users.js';

export interface RotateOptions {
  dir: string;
  user?: string;
  /** The new password (from stdin); generated when absent. */
  password?: string;
  /** How long the old secret keeps working (ms); 0 = refused at once. */
  graceMs: number;
  out: Output;
  env?: NodeJS.ProcessEnv;
  /** Whether the caller will show a generated password (terminal or --json). */
  canShowSecret: boolean;
  now?: () => number;
  /** The engine, for a swarm stack: its new htpasswd (and grace file) roll out as new secret versions. */
  engine?: DockerEngine;
}

export interface RotateResult {
  user: string;
  generated: boolean;
  /** Only when generated (the caller decides where it is shown). */
  password?: string;
  graceUntil: string | null;
  envUpdated: boolean;
  reloaded: boolean;
  /** GET /v2/ with the new secret answered 200 (undefined when the registry was not reachable). */
  verified: boolean | undefined;
  registry: string;
  loginCommand: string;
}

export async function rotateCredentials(opts: RotateOptions): Promise<RotateResult> {
  const now = opts.now ?? Date.now;
  const env = opts.env ?? process.env;
  const files = await readUsersFiles(opts.dir);
  const user = opts.user ?? files.envAdmin ?? Object.entries(files.config.users).find(([, u]) => u.admin)?.[0];
  if (!user) throw new RegctlError('USAGE', 'no user to rotate', { hint: 'pass --user NAME' });
  const entry = files.htpasswd.find((e) => e.user === user);
  if (!entry) {
    throw new RegctlError('NOT_FOUND', `user ${user} has no password in ${HTPASSWD_FILE}`, {
      hint: '`regctl users list` shows the users; `regctl users add` creates one',
    });
  }
  const isEnvAdmin = user === files.envAdmin;
  if (opts.password !== undefined) {
    checkGivenPassword(opts.password);
    const problem = isEnvAdmin ? envValueProblem(opts.password, { secret: true }) : undefined;
    if (problem) {
      throw new RegctlError('USAGE', `${user}'s password goes into .env, and it ${problem}`, {
        hint: 'choose another password, or omit --password-stdin for a generated one',
      });
    }
  } else if (!isEnvAdmin && !opts.canShowSecret) {
    throw new RegctlError(
      'USAGE',
      `the generated password of ${user} would be shown nowhere (no terminal, no --json); nothing was changed`,
      {
        hint: 'add --json to capture it, or give one with --password-stdin',
      },
    );
  }
  const password = opts.password ?? generatePassword();
  const htpasswdPath = join(opts.dir, HTPASSWD_FILE);
  const gracePath = graceFilePath(htpasswdPath);

  const nowSeconds = Math.floor(now() / 1000);
  const graceText = await readIfExists(gracePath);
  let grace: GraceEntry[] = liveGraceEntries(
    graceText === undefined ? [] : parseGraceFile(graceText).entries,
    nowSeconds,
  );
  let graceUntil: string | null = null;
  if (opts.graceMs > 0) {
    const expiresAt = Math.ceil((now() + opts.graceMs) / 1000);
    grace.push({ user, hash: entry.hash, expiresAt });
    graceUntil = new Date(expiresAt * 1000).toISOString();
  } else {
    grace = grace.filter((g) => g.user !== user);
  }
  if (graceText !== undefined || grace.length > 0) await atomicWrite(gracePath, formatGraceFile(grace), 0o600);

  const oldSecret = isEnvAdmin ? (await stackEndpoint(opts.dir, env).catch(() => undefined))?.credentials : undefined;
  await writeHtpasswd(
    opts.dir,
    files.htpasswd.map((e) => (e.user === user ? { user, hash: hashPassword(password) } : e)),
  );

  let envUpdated = false;
  if (isEnvAdmin) {
    const envPath = join(opts.dir, '.env');
    const text = (await readIfExists(envPath)) ?? '';
    await atomicWrite(envPath, setEnvValues(text, { [ENV_KEYS.password]: password }), 0o600);
    envUpdated = true;
  }

  // A swarm stack's tasks read htpasswd from a secret: the new version is rolled out (start-first) by `up`.
  if (files.config.deploy.mode === 'swarm') {
    if (!opts.engine) throw new Error('rotating on a swarm stack needs the engine');
    opts.out.step('Rolling out the new htpasswd as a new secret version');
    await up({ dir: opts.dir, out: opts.out, engine: opts.engine, skipProbes: true });
  }

  // The .env admin reloads with its new secret, or with the old one while the registry has not re-read htpasswd.
  const reloadWith = isEnvAdmin ? [{ username: user, password }, ...(oldSecret ? [oldSecret] : [])] : [];
  const reloaded = await reloadRegistry(opts.dir, opts.out, env, reloadWith);

  let verified: boolean | undefined;
  let registry = '';
  try {
    const endpoint = await stackEndpoint(opts.dir, env);
    registry = endpoint.publicHost;
    if (reloaded) {
      const client = new AdminClient(endpoint);
      verified = await retryUntil(
        async () => ((await client.v2Status({ username: user, password })) === 200 ? true : undefined),
        {
          timeoutMs: 5000,
          intervalMs: 250,
          describe: () => 'the new password is not accepted yet',
        },
      ).catch(() => false);
    }
  } catch {
    verified = undefined;
  }
  const source = isEnvAdmin
    ? `grep '^REGISTRY_PASSWORD=' ${join(opts.dir, '.env')} | cut -d= -f2- | `
    : `printf '%s' "$NEW_PASSWORD" | `;
  return {
    user,
    generated: opts.password === undefined,
    ...(opts.password === undefined ? { password } : {}),
    graceUntil,
    envUpdated,
    reloaded,
    verified,
    registry,
    loginCommand: `${source}docker login ${registry} -u ${user} --password-stdin`,
  };
}
