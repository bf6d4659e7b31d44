/**
 * The stack's `.env` (mode 0600): what docker compose reads (project name, build context) and where people
 * and `regctl rotate-credentials` find the admin password. The registry itself reads only auth/htpasswd.
 */
import type { StackConfig } from '../config/schema.js';
import { primaryAdmin } from '../config/schema.js';
import { PACKAGE_DIR_VAR } from './compose.js';
import { hostnamesOf } from './build-model.js';

export interface EnvSecrets {
  username: string;
  password: string;
}

export const ENV_KEYS = {
  project: 'COMPOSE_PROJECT_NAME',
  packageDir: PACKAGE_DIR_VAR,
  host: 'HOST',
  registryUrl: 'REGISTRY_URL',
  registryImage: 'REGCTL_IMAGE',
  traefikImage: 'TRAEFIK_IMAGE',
  baseImage: 'BASE_IMAGE',
  username: 'REGISTRY_USERNAME',
  password: 'REGISTRY_PASSWORD',
} as const;

const SAFE_VALUE = /^[^\n\r$#'"`\\]*$/;

function line(key: string, value: string): string {
  if (!SAFE_VALUE.test(value)) throw new Error(`.env value of ${key} has characters compose would misread`);
  return `${key}=${value}`;
}

export function renderEnv(config: StackConfig, opts: { packageDir: string; secrets: EnvSecrets | undefined }): string {
  const lines = [
    opts.secrets
      ? '# regctl stack environment. Mode 0600, kept out of git: it holds the admin password.'
      : '# Example of the .env `regctl init` writes (mode 0600, never committed) with the admin password.',
    '# regctl.yaml is the source of truth; this file feeds docker compose and scripts.',
    line(ENV_KEYS.project, config.name),
    line(ENV_KEYS.packageDir, opts.packageDir),
    line(ENV_KEYS.host, config.host),
    line(ENV_KEYS.registryUrl, hostnamesOf(config).registry),
    line(ENV_KEYS.registryImage, config.images.registry),
    line(ENV_KEYS.traefikImage, config.images.traefik),
    line(ENV_KEYS.baseImage, config.images.base),
  ];
  if (opts.secrets) {
    lines.push(
      '# The first admin user, for `docker login`. The registry checks auth/htpasswd (bcrypt), not this file.',
      line(ENV_KEYS.username, opts.secrets.username),
      line(ENV_KEYS.password, opts.secrets.password),
    );
  } else {
    lines.push(
      '# REGISTRY_USERNAME / REGISTRY_PASSWORD: written by `regctl init` into .env (never committed).',
      line(ENV_KEYS.username, primaryAdmin(config)),
      `${ENV_KEYS.password}=`,
    );
  }
  return lines.join('\n') + '\n';
}

/** Parses `KEY=value` lines (comments and blanks skipped; surrounding quotes removed). */
export function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const l = raw.trim();
    if (!l || l.startsWith('#')) continue;
    const eq = l.indexOf('=');
    if (eq <= 0) continue;
    const key = l.slice(0, eq).trim();
    let value = l.slice(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0]) value = value.slice(1, -1);
    out[key] = value;
  }
  return out;
}
