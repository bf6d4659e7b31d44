/**
 * `regctl login`: logs the local docker client in with the stack's credentials, passing the password on
 * standard input only (never as an argument, so it is in no process listing or shell history), and in
 * dev can add the registry to the engine's `insecure-registries` after showing the change.
 */
import { createTwoFilesPatch } from 'diff';
import { RegctlError } from '../common/errors.js';
import { readIfExists } from '../common/fs.js';
import { atomicWrite } from '../stack/write.js';
import { adminCredentials, loadStack } from './stack.js';

export const DAEMON_JSON = '/etc/docker/daemon.json';

export interface RegistryAddress {
  /** `host[:port]` as docker image names and `docker login` write it. */
  address: string;
  /** Whether the address is served over plain HTTP. */
  http: boolean;
}

/**
 * The address clients use: through Traefik by name, or the dev direct port on localhost. `tls` asks for the dev
 * stack's HTTPS address (served with the local CA's certificate), which `login --trust` logs in to.
 */
export async function clientAddress(
  dir: string,
  opts: { prod?: boolean; direct?: boolean; tls?: boolean } = {},
): Promise<RegistryAddress> {
  const { config, model } = await loadStack(dir, opts.prod ? { prod: true } : {});
  if (opts.direct) {
    if (model.mode !== 'dev' || config.ports.registry === 0) {
      throw new RegctlError('USAGE', 'this stack has no direct registry port', {
        hint: 'drop --direct, or set ports.registry in regctl.yaml (dev only)',
      });
    }
    return { address: `localhost:${config.ports.registry}`, http: true };
  }
  const host = model.hostnames.registry;
  if (model.mode === 'prod' || opts.tls)
    return { address: config.ports.https === 443 ? host : `${host}:${config.ports.https}`, http: false };
  return { address: config.ports.http === 80 ? host : `${host}:${config.ports.http}`, http: true };
}

export interface LoginOptions {
  dir: string;
  prod?: boolean;
  direct?: boolean;
  /** dev: the HTTPS address (see clientAddress). */
  tls?: boolean;
  /** Another user than the stack's admin; its password comes from `password`. */
  user?: string;
  password?: string;
  /** docker CLI to run (tests point it at a specific binary). */
  docker?: string;
  env?: NodeJS.ProcessEnv;
}

export async function login(opts: LoginOptions): Promise<{ address: string; user: string }> {
  const { address } = await clientAddress(opts.dir, opts);
  let user = opts.user;
  let password = opts.password;
  if (!user || password === undefined) {
    const creds = await adminCredentials(opts.dir);
    if (!creds) {
      throw new RegctlError('CONFIG_MISSING', "no admin credentials in this stack's .env", {
        hint: 'pass --user NAME --password-stdin, or run `regctl init` here',
      });
    }
    if (user && user !== creds.username) {
      throw new RegctlError('USAGE', `the password of ${user} is not stored in .env`, {
        hint: `pipe it in: regctl login --user ${user} --password-stdin`,
      });
    }
    user = creds.username;
    password = creds.password;
  }
  const r = await (
    await import('execa')
  ).execa(opts.docker ?? 'docker', ['login', address, '--username', user, '--password-stdin'], {
    input: password,
    reject: false,
    env: opts.env ?? process.env,
  });
  if (r.exitCode !== 0) {
    const reason = (r.stderr || r.stdout).split('\n').filter(Boolean).pop() ?? `exit code ${r.exitCode}`;
    const http = /HTTP response to HTTPS client/i.test(reason);
    throw new RegctlError('REGISTRY_ERROR', `docker login ${address} failed: ${reason}`, {
      hint: http
        ? 'the engine does not trust this HTTP registry: run `regctl login --trust` (or `regctl doctor` for the fix)'
        : 'check that the stack is up (`regctl status`) and the credentials are current (`regctl rotate-credentials`)',
    });
  }
  return { address, user };
}

export interface TrustPlan {
  path: string;
  address: string;
  /** Already trusted: nothing to write. */
  unchanged: boolean;
  before: string;
  after: string;
  /** Unified diff of the change, for the person to read before agreeing. */
  diff: string;
}

/** Computes the daemon.json change that adds `address` to `insecure-registries`, keeping every other key. */
export async function planTrust(address: string, path = DAEMON_JSON): Promise<TrustPlan> {
  const before = (await readIfExists(path)) ?? '';
  let settings: Record<string, unknown> = {};
  if (before.trim()) {
    try {
      const parsed: unknown = JSON.parse(before);
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      settings = parsed as Record<string, unknown>;
    } catch (err) {
      throw new RegctlError('CONFIG_INVALID', `${path} is not valid JSON (${(err as Error).message})`, {
        hint: `fix ${path} by hand first; regctl does not overwrite a file it cannot read`,
      });
    }
  }
  const current = Array.isArray(settings['insecure-registries'])
    ? (settings['insecure-registries'] as unknown[]).map(String)
    : [];
  if (current.includes(address)) return { path, address, unchanged: true, before, after: before, diff: '' };
  const after = JSON.stringify({ ...settings, 'insecure-registries': [...current, address] }, null, 2) + '\n';
  const diff = createTwoFilesPatch(path, path, before, after, 'now', 'after regctl login --trust');
  return { path, address, unchanged: false, before, after, diff };
}

/** Writes the planned daemon.json atomically; the engine reads it only when restarted, which regctl never does. */
export async function applyTrust(plan: TrustPlan): Promise<void> {
  if (plan.unchanged) return;
  await atomicWrite(plan.path, plan.after, 0o644);
}
