/**
 * `regctl login --mirror`: makes the local engines pull through the stack's pull-through cache.
 *
 * - dockerd: adds the registry to `registry-mirrors` in daemon.json (every other key kept, the diff shown first),
 *   writes it atomically and sends dockerd SIGHUP, which reloads `registry-mirrors` without a restart. dockerd
 *   consults its mirrors for Docker Hub images only; every other registry is pulled from directly.
 * - containerd (and kubelets on it): prints the `hosts.toml` for `/etc/containerd/certs.d/<registry>/`, which
 *   sends pulls to us with `?ns=<registry>`; the registry maps that onto the proxy prefix of that upstream.
 */
import { readFile } from 'node:fs/promises';
import { createTwoFilesPatch } from 'diff';
import { RegctlError } from '../common/errors.js';
import { readIfExists } from '../common/fs.js';
import { atomicWrite } from '../stack/write.js';

export const DOCKERD_PIDFILE = '/var/run/docker.pid';

/** Docker Hub's registry host, as containerd names it in `?ns=` and in its certs.d directory. */
export const DOCKER_HUB = 'docker.io';

export interface MirrorPlan {
  path: string;
  /** The mirror URL written to `registry-mirrors`. */
  url: string;
  unchanged: boolean;
  before: string;
  after: string;
  /** Unified diff of the change, for the person to read before agreeing. */
  diff: string;
}

/** The mirror URL dockerd and containerd are given for a client address (`host[:port]`, HTTP or HTTPS). */
export function mirrorUrl(address: string, http: boolean): string {
  return `${http ? 'http' : 'https'}://${address}`;
}

function parseDaemonJson(path: string, text: string): Record<string, unknown> {
  if (!text.trim()) return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as Record<string, unknown>;
  } catch (err) {
    throw new RegctlError('CONFIG_INVALID', `${path} is not valid JSON (${(err as Error).message})`, {
      hint: `fix ${path} by hand first; regctl does not overwrite a file it cannot read`,
    });
  }
}

const sameMirror = (a: string, b: string): boolean => a.replace(/\/+$/, '') === b.replace(/\/+$/, '');

/**
 * The daemon.json that adds `url` to `registry-mirrors` after any mirrors already there, every other key as it
 * was. Idempotent: a file that already lists the mirror (with or without a trailing slash) is left unchanged.
 */
export function mergeMirror(path: string, before: string, url: string): MirrorPlan {
  const settings = parseDaemonJson(path, before);
  const raw = settings['registry-mirrors'];
  if (raw !== undefined && (!Array.isArray(raw) || raw.some((m) => typeof m !== 'string')))
    throw new RegctlError('CONFIG_INVALID', `${path}: "registry-mirrors" is not a list of URLs`, {
      hint: `fix ${path} by hand first; regctl does not overwrite a file it cannot read`,
    });
  const current = (raw ?? []) as string[];
  if (current.some((m) => sameMirror(m, url))) return { path, url, unchanged: true, before, after: before, diff: '' };
  const after = JSON.stringify({ ...settings, 'registry-mirrors': [...current, url] }, null, 2) + '\n';
  const diff = createTwoFilesPatch(path, path, before, after, 'now', 'after regctl login --mirror');
  return { path, url, unchanged: false, before, after, diff };
}

export async function planMirror(url: string, path: string): Promise<MirrorPlan> {
  return mergeMirror(path, (await readIfExists(path)) ?? '', url);
}

export interface MirrorApplyOptions {
  /** dockerd's pid file (daemon.json's `pidfile`, else /var/run/docker.pid). */
  pidfile?: string;
  /** Sends the signal; tests and dry runs replace it. */
  kill?: (pid: number, signal: NodeJS.Signals) => void;
}

/**
 * Writes the planned daemon.json atomically (its mode kept at 0644, as dockerd writes it) and sends dockerd
 * SIGHUP so it reloads `registry-mirrors`. Returns the pid signalled.
 */
export async function applyMirror(plan: MirrorPlan, opts: MirrorApplyOptions = {}): Promise<number> {
  if (!plan.unchanged) await atomicWrite(plan.path, plan.after, 0o644);
  const configured = parseDaemonJson(plan.path, plan.after).pidfile;
  const pidfile = opts.pidfile ?? (typeof configured === 'string' ? configured : DOCKERD_PIDFILE);
  let pid: number;
  try {
    pid = Number((await readFile(pidfile, 'utf8')).trim());
  } catch (err) {
    throw new RegctlError(
      'DOCKER_UNREACHABLE',
      `cannot read dockerd's pid from ${pidfile} (${(err as Error).message})`,
      {
        hint: `${plan.path} is written; reload dockerd yourself: sudo kill -HUP $(pidof dockerd)`,
      },
    );
  }
  if (!Number.isInteger(pid) || pid <= 1)
    throw new RegctlError('DOCKER_UNREACHABLE', `${pidfile} holds no pid`, {
      hint: `${plan.path} is written; reload dockerd yourself: sudo kill -HUP $(pidof dockerd)`,
    });
  (opts.kill ?? process.kill)(pid, 'SIGHUP');
  return pid;
}

/**
 * containerd's `hosts.toml` for `registry` (a directory of that name under /etc/containerd/certs.d): pulls go to
 * `url` first, as a mirror (`pull` and `resolve`), and to the registry itself when the mirror fails.
 */
export function containerdHostsToml(registry: string, url: string): string {
  const server = registry === DOCKER_HUB ? 'https://registry-1.docker.io' : `https://${registry}`;
  return [
    `# /etc/containerd/certs.d/${registry}/hosts.toml: pull ${registry} images through ${url}`,
    `server = "${server}"`,
    '',
    `[host."${url}"]`,
    '  capabilities = ["pull", "resolve"]',
    '',
  ].join('\n');
}

/** The registry mirrors dockerd has in force (`docker info`); undefined when no engine answers. */
export async function dockerMirrors(env: NodeJS.ProcessEnv = process.env): Promise<string[] | undefined> {
  const { execa } = await import('execa');
  const r = await execa('docker', ['info', '--format', '{{json .RegistryConfig.Mirrors}}'], { reject: false, env });
  if (r.exitCode !== 0) return undefined;
  try {
    const parsed: unknown = JSON.parse(r.stdout.trim() || 'null');
    return Array.isArray(parsed) ? parsed.map(String) : [];
  } catch {
    return undefined;
  }
}
