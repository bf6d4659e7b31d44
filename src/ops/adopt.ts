/**
 * Adoption of a hand-made registry:2 stack (an `.env` with REGISTRY_USERNAME / REGISTRY_PASSWORD, an
 * htpasswd generated at start or kept on disk, a compose file whose registry service keeps its data in a
 * named volume): regctl finds what it has and renders a stack that serves the same volume, with the same
 * credentials, in place. Nothing of the old stack is deleted or rewritten: its data volume is shared as it
 * is (distribution's layout is regctl's own), and its files are only read.
 */
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { RegctlError } from '../common/errors.js';
import { readIfExists } from '../common/fs.js';
import { CONFIG_FILE } from '../config/load.js';
import { USER_NAME } from '../config/schema.js';
import type { DockerEngine } from '../docker/engine.js';
import { ENV_KEYS, envValueProblem, parseEnv, setEnvValues } from '../stack/env.js';
import { parseHtpasswd, setHtpasswdUser } from '../stack/htpasswd.js';
import { atomicWrite } from '../stack/write.js';
import { runInit, validated, type InitIo } from './init.js';

export interface AdoptFinding {
  /** The old stack's directory. */
  from: string;
  envFile?: string;
  username?: string;
  /** The password is found (never reported). */
  hasPassword: boolean;
  deleteEnabled?: boolean;
  host?: string;
  htpasswdFile?: string;
  /** Users whose bcrypt hashes are kept as they are. */
  users: string[];
  composeFile?: string;
  /** Compose project name the old stack ran under (volume names are prefixed with it). */
  composeProject?: string;
  /** The data volume as the compose file names it, and the engine's name for it. */
  volumeKey?: string;
  volume?: string;
  /** The volume holds distribution's layout (`docker/registry/v2`). */
  volumeHasData?: boolean;
  repositories?: number;
  /** Old containers that use the volume and still run (they must stop before the new stack serves it). */
  runningContainers: string[];
  /** What adoption will do, one line each. */
  actions: string[];
  /** Why adoption cannot go ahead, if it cannot. */
  problems: string[];
}

const ENV_NAMES = ['.env'];
const HTPASSWD_CANDIDATES = ['server/registry/htpasswd', 'registry/htpasswd', 'auth/htpasswd', 'htpasswd'];

interface ComposeService {
  image?: string;
  build?: unknown;
  volumes?: (string | { source?: string; target?: string })[];
  container_name?: string;
}

/** The compose file and service that keeps registry data (a volume mounted at /var/lib/registry). */
async function findRegistryService(
  dir: string,
): Promise<{ file: string; volumeKey: string; containerName?: string } | undefined> {
  const names = (await readdir(dir)).filter((n) => /\.ya?ml$/.test(n) && /compose/i.test(n)).sort();
  for (const name of names) {
    let doc: { services?: Record<string, ComposeService>; volumes?: Record<string, { name?: string } | null> };
    try {
      doc = parseYaml(await readFile(join(dir, name), 'utf8')) as typeof doc;
    } catch {
      continue;
    }
    for (const [svcName, svc] of Object.entries(doc?.services ?? {})) {
      for (const v of svc.volumes ?? []) {
        const [source, target] = typeof v === 'string' ? v.split(':') : [v.source, v.target];
        if (target === '/var/lib/registry' && source && !source.startsWith('.') && !source.startsWith('/')) {
          const declared = doc.volumes?.[source]?.name;
          return {
            file: join(dir, name),
            volumeKey: declared ?? source,
            ...(svc.container_name ? { containerName: svc.container_name } : { containerName: svcName }),
          };
        }
      }
    }
  }
  return undefined;
}

export async function inspectSeed(o: {
  from: string;
  engine: DockerEngine;
  volume?: string;
  project?: string;
}): Promise<{ finding: AdoptFinding; password?: string; htpasswd?: string }> {
  const f: AdoptFinding = {
    from: o.from,
    hasPassword: false,
    users: [],
    runningContainers: [],
    actions: [],
    problems: [],
  };
  try {
    if (!(await stat(o.from)).isDirectory()) throw new Error('not a directory');
  } catch {
    throw new RegctlError('NOT_FOUND', `${o.from} is not a directory`, {
      hint: 'give --from the directory of the old stack (where its .env and compose file are)',
    });
  }
  let password: string | undefined;
  for (const name of ENV_NAMES) {
    const text = await readIfExists(join(o.from, name));
    if (text === undefined) continue;
    const env = parseEnv(text);
    f.envFile = join(o.from, name);
    if (env.REGISTRY_USERNAME) f.username = env.REGISTRY_USERNAME;
    if (env.REGISTRY_PASSWORD) {
      password = env.REGISTRY_PASSWORD;
      f.hasPassword = true;
    }
    if (env.REGISTRY_STORAGE_DELETE_ENABLED) f.deleteEnabled = env.REGISTRY_STORAGE_DELETE_ENABLED === 'true';
    if (env.HOST) f.host = env.HOST;
    if (env.COMPOSE_PROJECT_NAME) f.composeProject = env.COMPOSE_PROJECT_NAME;
  }
  let htpasswd: string | undefined;
  for (const rel of HTPASSWD_CANDIDATES) {
    const text = await readIfExists(join(o.from, rel));
    if (text === undefined || parseHtpasswd(text).length === 0) continue;
    htpasswd = text;
    f.htpasswdFile = join(o.from, rel);
    break;
  }
  if (htpasswd) {
    f.users = parseHtpasswd(htpasswd).map((e) => e.user);
    f.actions.push(`keep the bcrypt hashes of ${f.users.join(', ')} from ${f.htpasswdFile}`);
  }
  if (f.username && password !== undefined) {
    if (!USER_NAME.test(f.username))
      f.problems.push(`REGISTRY_USERNAME "${f.username}" is not a user name regctl accepts`);
    else if (!f.users.includes(f.username)) {
      // The old entrypoint generated htpasswd from these at start: do the same, once.
      htpasswd = setHtpasswdUser(htpasswd ?? '', f.username, password);
      f.users.push(f.username);
      f.actions.push(
        `hash the password of ${f.username} from ${f.envFile} with bcrypt, as the old entrypoint did at start`,
      );
    }
  }
  if (f.users.length === 0)
    f.problems.push('no credentials found: neither REGISTRY_USERNAME/REGISTRY_PASSWORD in .env nor an htpasswd file');

  const service = await findRegistryService(o.from);
  if (service) {
    f.composeFile = service.file;
    f.volumeKey = service.volumeKey;
  }
  const volumes = await o.engine.listVolumes({});
  let volume = o.volume;
  if (!volume && f.volumeKey) {
    const project = o.project ?? f.composeProject;
    const candidates = project
      ? [`${project}_${f.volumeKey}`]
      : volumes.filter((v) => v === f.volumeKey || v.endsWith(`_${f.volumeKey}`));
    const existing = candidates.filter((c) => volumes.includes(c));
    if (existing.length === 1) volume = existing[0];
    else if (existing.length > 1)
      f.problems.push(`several volumes could be the data volume (${existing.join(', ')}): name one with --volume`);
  }
  if (!volume) {
    if (!f.problems.some((p) => p.includes('--volume')))
      f.problems.push(
        `no data volume found${f.volumeKey ? ` for "${f.volumeKey}"` : ''}: name it with --volume (see \`docker volume ls\`)`,
      );
  } else if (!volumes.includes(volume)) {
    f.problems.push(`volume ${volume} does not exist`);
  } else {
    f.volume = volume;
    const mp = await o.engine.volumeMountpoint(volume);
    if (mp) {
      try {
        const repos = await countRepositories(join(mp, 'docker/registry/v2/repositories'));
        f.volumeHasData = true;
        f.repositories = repos;
      } catch {
        f.volumeHasData = false;
      }
    }
    f.actions.push(
      `serve volume ${volume} as it is${f.repositories !== undefined ? ` (${f.repositories} repositories)` : ''}: nothing in it is moved or deleted`,
    );
    for (const c of await o.engine.listContainers({})) {
      if (c.state === 'running' && service?.containerName && c.name === service.containerName)
        f.runningContainers.push(c.name);
    }
    if (f.runningContainers.length > 0)
      f.actions.push(
        `the old registry container (${f.runningContainers.join(', ')}) must be stopped first (docker stop; it is not removed)`,
      );
  }
  return {
    finding: f,
    ...(password !== undefined ? { password } : {}),
    ...(htpasswd !== undefined ? { htpasswd } : {}),
  };
}

async function countRepositories(root: string): Promise<number> {
  let count = 0;
  const walk = async (dir: string, depth: number): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    if (entries.some((e) => e.name === '_manifests')) {
      count++;
      return;
    }
    if (depth > 8) return;
    for (const e of entries) if (e.isDirectory() && !e.name.startsWith('_')) await walk(join(dir, e.name), depth + 1);
  };
  await walk(root, 0);
  return count;
}

export interface AdoptWriteOptions {
  dir: string;
  finding: AdoptFinding;
  /** The admin password found in the old `.env`. */
  password: string;
  htpasswd: string | undefined;
  host: string;
  name?: string;
  httpPort?: number;
  registryPort?: number;
  traefikImage?: string;
  baseImage?: string;
  json?: boolean;
}

/**
 * Writes the adopted stack to `dir` and renders it. Everything is checked first (the config against the schema,
 * the credentials against the `.env` rules), so a bad value leaves no file behind.
 */
export async function writeAdoptedStack(io: InitIo, o: AdoptWriteOptions): Promise<void> {
  const images: Record<string, string> = {};
  const traefik = o.traefikImage ?? io.env.REGCTL_TRAEFIK_IMAGE;
  const base = o.baseImage ?? io.env.REGCTL_BASE_IMAGE;
  if (traefik) images.traefik = traefik;
  if (base) images.base = base;
  const ports: Record<string, number> = {};
  if (o.httpPort !== undefined) ports.http = o.httpPort;
  if (o.registryPort !== undefined) ports.registry = o.registryPort;
  const config: Record<string, unknown> = {
    version: 1,
    name: o.name ?? 'regctl',
    host: o.host,
    mode: 'dev',
    users: Object.fromEntries(o.finding.users.map((u) => [u, { admin: true }])),
    storage: { volume: o.finding.volume },
    ...(Object.keys(ports).length > 0 ? { ports } : {}),
    ...(Object.keys(images).length > 0 ? { images } : {}),
  };
  validated(config);
  const username = o.finding.username ?? '';
  const problem = envValueProblem(username) ?? envValueProblem(o.password, { secret: true });
  if (problem) {
    throw new RegctlError(
      'CONFIG_INVALID',
      `the credentials in ${o.finding.envFile ?? '.env'} cannot be carried over: a value ${problem}`,
      {
        hint: 'change the password in the old stack (or give the user a new one after adopting, with `regctl rotate-credentials`)',
      },
    );
  }
  const env = setEnvValues('', { [ENV_KEYS.username]: username, [ENV_KEYS.password]: o.password });

  await mkdir(join(o.dir, 'auth'), { recursive: true, mode: 0o700 });
  await atomicWrite(join(o.dir, CONFIG_FILE), stringify(config), 0o644);
  await atomicWrite(join(o.dir, 'auth', 'htpasswd'), o.htpasswd ?? '', 0o600);
  await atomicWrite(join(o.dir, '.env'), env, 0o600);
  await runInit(io, { dir: o.dir, yes: true, force: true, ui: true, ...(o.json ? { json: true } : {}) });
}
