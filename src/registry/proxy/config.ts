/**
 * Pull-through cache entries (`proxies:` in the registry's config file, `--proxy` or REGCTL_PROXIES): a path
 * prefix of ours maps to an upstream registry, so `hub/library/alpine` is `library/alpine` at the upstream and is
 * cached under `hub/library/alpine` in our storage.
 *
 * ```yaml
 * proxies:
 *   - prefix: hub
 *     upstream: https://registry-1.docker.io
 *     credentialsFile: /run/secrets/hub   # "user:password", or JSON {"username": "...", "password": "..."}
 *     ttl: 24h                            # how long a cached tag is served before a HEAD revalidates it
 *     mirrorOf: docker.io                 # optional: the registry containerd names in `?ns=` (see below)
 *     dockerMirror: true                  # optional: answer dockerd's registry-mirrors (see below)
 * ```
 * `mirrorOf` is the registry host this entry stands for in containerd's mirror form (`?ns=docker.io`); by default
 * the upstream's own host (Docker Hub's names count as one). Set it when the upstream is itself a copy of that
 * registry, such as an in-house mirror of Docker Hub: clients then name `docker.io` and reach it through us.
 *
 * `dockerMirror: true` (one entry at most, one that stands for Docker Hub) serves dockerd's `registry-mirrors`:
 * dockerd asks its mirror for Docker Hub names without any prefix (`/v2/library/alpine/manifests/3`), so pulls of a
 * name outside every prefix that is not one of this registry's own repositories go to this entry
 * (`hub/library/alpine`). The registry's own repositories always win; pushes are never redirected, and blobs only
 * once the repository's manifest came through the mirror. A manifest asked for in a name that is not yet ours
 * (a client checking before its first push) is asked of the upstream, and fails if Docker Hub is unreachable.
 * The flag and environment form is `PREFIX=URL` (repeatable flag; comma-separated in REGCTL_PROXIES), ttl 24h.
 * Credentials come from the file or from the environment (`REGCTL_PROXY_<PREFIX>_CREDENTIALS=user:password`,
 * the prefix upper-cased with non-alphanumerics as `_`), never from a flag value or the config file itself.
 */
import { readFile } from 'node:fs/promises';
import { parseDuration, UnitError } from '../../common/units.js';

export interface ProxyEntry {
  /** One repository-name component: `hub` serves `hub/<upstream name>`. */
  prefix: string;
  /** The upstream's base URL, without a trailing slash (`https://registry-1.docker.io`). */
  upstream: string;
  credentialsFile: string | undefined;
  /** How long a cached tag is served without asking the upstream. */
  ttlMs: number;
  /** The registry host clients name in containerd's `?ns=`, when it is not the upstream's own host. */
  mirrorOf?: string;
  /** Serves dockerd's registry-mirrors: unprefixed pulls of names that are not the registry's own come here. */
  dockerMirror?: boolean;
}

export interface ProxyCredentials {
  username: string;
  password: string;
}

/** Every mistake found, one line each (`proxies[1].ttl: ...`). */
export class ProxyConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ProxyConfigError';
    this.problems = problems;
  }
}

const PREFIX_RE = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const KEYS = new Set(['prefix', 'upstream', 'credentialsFile', 'ttl', 'mirrorOf', 'dockerMirror']);
/** Docker Hub's names: its registry host, and what clients call it. */
export const DOCKER_HUB_HOSTS: ReadonlySet<string> = new Set(['registry-1.docker.io', 'docker.io', 'index.docker.io']);
const HOST_RE = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$/;
const DEFAULT_TTL = '24h';

/** The env variable holding credentials for `prefix`. */
export function credentialsEnvName(prefix: string): string {
  return `REGCTL_PROXY_${prefix.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_CREDENTIALS`;
}

/** `PREFIX=URL` (the flag and environment form) as an entry object. */
function fromText(text: string): Record<string, unknown> | string {
  const eq = text.indexOf('=');
  if (eq <= 0) return `"${text}" is not PREFIX=URL (example: hub=https://registry-1.docker.io)`;
  return { prefix: text.slice(0, eq).trim(), upstream: text.slice(eq + 1).trim() };
}

function upstreamUrl(v: unknown, where: string, problems: string[]): string | undefined {
  if (typeof v !== 'string' || v === '') {
    problems.push(`${where}.upstream: required, an http(s) URL (example: https://registry-1.docker.io)`);
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    problems.push(`${where}.upstream: "${v}" is not a URL (example: https://registry-1.docker.io)`);
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    problems.push(`${where}.upstream: "${v}" must start with https:// or http://`);
  else if (url.username || url.password)
    problems.push(`${where}.upstream: credentials do not belong in the URL; use credentialsFile or the environment`);
  else if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash)
    problems.push(`${where}.upstream: "${v}" must be the registry's base URL, without a path or query`);
  else return `${url.protocol}//${url.host}`;
  return undefined;
}

function entry(raw: unknown, where: string, problems: string[]): ProxyEntry | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    problems.push(`${where}: must be a mapping with prefix, upstream and optionally credentialsFile and ttl`);
    return undefined;
  }
  const r = raw as Record<string, unknown>;
  const before = problems.length;
  for (const key of Object.keys(r))
    if (!KEYS.has(key))
      problems.push(
        `${where}: unknown key "${key}" (known: prefix, upstream, credentialsFile, ttl, mirrorOf, dockerMirror)`,
      );
  const prefix = r.prefix;
  if (typeof prefix !== 'string' || !PREFIX_RE.test(prefix))
    problems.push(`${where}.prefix: ${JSON.stringify(prefix)} must be one lower-case name component (example: hub)`);
  const upstream = upstreamUrl(r.upstream, where, problems);
  const file = r.credentialsFile;
  if (file !== undefined && (typeof file !== 'string' || file === ''))
    problems.push(`${where}.credentialsFile: must be the path of a file holding user:password`);
  let ttlMs = 0;
  const ttl = r.ttl ?? DEFAULT_TTL;
  try {
    if (typeof ttl !== 'string' && typeof ttl !== 'number')
      throw new UnitError(`${JSON.stringify(ttl)} is not a duration`);
    ttlMs = parseDuration(String(ttl));
  } catch (err) {
    if (!(err instanceof UnitError)) throw err;
    problems.push(`${where}.ttl: ${err.message}`);
  }
  const mirrorOf = r.mirrorOf;
  if (mirrorOf !== undefined && (typeof mirrorOf !== 'string' || !HOST_RE.test(mirrorOf)))
    problems.push(`${where}.mirrorOf: ${JSON.stringify(mirrorOf)} must be a registry host[:port] (example: docker.io)`);
  const dockerMirror = r.dockerMirror;
  if (dockerMirror !== undefined && typeof dockerMirror !== 'boolean')
    problems.push(`${where}.dockerMirror: must be true or false`);
  else if (dockerMirror === true && upstream !== undefined) {
    const standsFor = typeof mirrorOf === 'string' ? mirrorOf : new URL(upstream).host;
    if (!DOCKER_HUB_HOSTS.has(standsFor))
      problems.push(
        `${where}.dockerMirror: dockerd's registry-mirrors are for Docker Hub only; this entry stands for ${standsFor} (set mirrorOf: docker.io if its upstream is a copy of Docker Hub)`,
      );
  }
  if (problems.length > before || upstream === undefined) return undefined;
  const e: ProxyEntry = { prefix: prefix as string, upstream, credentialsFile: file as string | undefined, ttlMs };
  if (mirrorOf !== undefined) e.mirrorOf = mirrorOf as string;
  if (dockerMirror === true) e.dockerMirror = true;
  return e;
}

/**
 * Validates the `proxies` setting: a list of entries (config file), a list of `PREFIX=URL` strings (flags) or one
 * comma-separated string (environment). Throws `ProxyConfigError` listing every mistake.
 */
export function parseProxies(v: unknown): ProxyEntry[] {
  if (v === undefined || v === null || v === '') return [];
  const list: unknown[] =
    typeof v === 'string' ? v.split(',').filter((s) => s.trim() !== '') : Array.isArray(v) ? v : [v];
  const problems: string[] = [];
  const entries: ProxyEntry[] = [];
  list.forEach((item, i) => {
    const where = `proxies[${i}]`;
    const raw = typeof item === 'string' ? fromText(item) : item;
    if (typeof raw === 'string') return void problems.push(`${where}: ${raw}`);
    const e = entry(raw, where, problems);
    if (!e) return;
    if (entries.some((o) => o.prefix === e.prefix)) problems.push(`${where}.prefix: "${e.prefix}" is used twice`);
    else if (e.dockerMirror && entries.some((o) => o.dockerMirror))
      problems.push(`${where}.dockerMirror: only one entry can answer dockerd's registry-mirrors`);
    else entries.push(e);
  });
  if (problems.length > 0) throw new ProxyConfigError(problems);
  return entries;
}

function parseCredentials(text: string, source: string): ProxyCredentials {
  const s = text.trim();
  if (s.startsWith('{')) {
    let doc: unknown;
    try {
      doc = JSON.parse(s);
    } catch {
      throw new ProxyConfigError([`${source}: not valid JSON`]);
    }
    const { username, password } = (doc ?? {}) as Record<string, unknown>;
    if (typeof username === 'string' && typeof password === 'string' && username !== '') return { username, password };
    throw new ProxyConfigError([`${source}: JSON credentials need "username" and "password" strings`]);
  }
  const colon = s.indexOf(':');
  if (colon <= 0) throw new ProxyConfigError([`${source}: expected user:password or JSON {"username","password"}`]);
  return { username: s.slice(0, colon), password: s.slice(colon + 1) };
}

/** The entry's upstream credentials: its file, else its environment variable, else none (anonymous pulls). */
export async function readCredentials(e: ProxyEntry, env: NodeJS.ProcessEnv): Promise<ProxyCredentials | undefined> {
  if (e.credentialsFile) {
    let text: string;
    try {
      text = await readFile(e.credentialsFile, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new ProxyConfigError([`proxy ${e.prefix}: cannot read credentialsFile ${e.credentialsFile} (${code})`]);
    }
    return parseCredentials(text, `proxy ${e.prefix}: credentialsFile ${e.credentialsFile}`);
  }
  const name = credentialsEnvName(e.prefix);
  const fromEnv = env[name];
  return fromEnv ? parseCredentials(fromEnv, name) : undefined;
}
