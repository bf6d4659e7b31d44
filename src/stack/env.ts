/**
 * The stack's `.env` (mode 0600): what docker compose reads (project name, build context) and where people
 * and `regctl rotate-credentials` find the admin password. The registry itself reads only auth/htpasswd.
 *
 * This module owns the format; nothing else reads, writes or edits `.env` text:
 * - values are written unquoted, so compose v1 (which keeps quotes as part of the value) and v2 read them alike;
 *   a value that would need quoting is refused instead (`envValueProblem`): line breaks and other control
 *   characters, `$` (interpolation), `#` (comment), quotes, backquote, backslash, and leading or trailing spaces;
 *   a secret (the admin password) must moreover be printable ASCII without spaces, since people also take it out
 *   with `grep | cut` and pipe it to `docker login`;
 * - reading accepts what people write by hand: `# comments`, blank lines, `export KEY=value`, and one pair of
 *   matching quotes around a value, which is removed;
 * - editing (`setEnvValues`) replaces the keys' lines in place and appends missing keys, keeping every other
 *   line, comments and order as they were.
 */
import { readIfExists } from '../common/fs.js';
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

/** What is wrong with `value` as an unquoted `.env` value (of a secret, when `secret`), or undefined when it is safe. */
export function envValueProblem(value: string, opts: { secret?: boolean } = {}): string | undefined {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this rule looks for
  if (/[\x00-\x1f\x7f]/.test(value)) return 'has a line break or another control character';
  if (/[$#'"`\\]/.test(value)) return 'has one of $ # \' " ` \\, which compose would misread';
  if (value !== value.trim()) return 'starts or ends with a space, which compose would drop';
  if (opts.secret && /[^\x21-\x7e]/.test(value)) return 'has a space or a character outside printable ASCII';
  return undefined;
}

/** The keys whose values are secrets (see the module comment). */
const SECRET_KEYS: ReadonlySet<string> = new Set([ENV_KEYS.password]);

/** One `KEY=value` line; throws when the value would be misread (see `envValueProblem`). */
export function envLine(key: string, value: string): string {
  const problem = envValueProblem(value, { secret: SECRET_KEYS.has(key) });
  if (problem) throw new Error(`.env value of ${key} ${problem}`);
  return `${key}=${value}`;
}

export function renderEnv(config: StackConfig, opts: { packageDir: string; secrets: EnvSecrets | undefined }): string {
  const lines = [
    opts.secrets
      ? '# regctl stack environment. Mode 0600, kept out of git: it holds the admin password.'
      : '# Example of the .env `regctl init` writes (mode 0600, never committed) with the admin password.',
    '# regctl.yaml is the source of truth; this file feeds docker compose and scripts.',
    envLine(ENV_KEYS.project, config.name),
    envLine(ENV_KEYS.packageDir, opts.packageDir),
    envLine(ENV_KEYS.host, config.host),
    envLine(ENV_KEYS.registryUrl, hostnamesOf(config).registry),
    envLine(ENV_KEYS.registryImage, config.images.registry),
    envLine(ENV_KEYS.traefikImage, config.images.traefik),
    envLine(ENV_KEYS.baseImage, config.images.base),
  ];
  if (opts.secrets) {
    lines.push(
      '# The first admin user, for `docker login`. The registry checks auth/htpasswd (bcrypt), not this file.',
      envLine(ENV_KEYS.username, opts.secrets.username),
      envLine(ENV_KEYS.password, opts.secrets.password),
    );
  } else {
    lines.push(
      '# REGISTRY_USERNAME / REGISTRY_PASSWORD: written by `regctl init` into .env (never committed).',
      envLine(ENV_KEYS.username, primaryAdmin(config)),
      `${ENV_KEYS.password}=`,
    );
  }
  return lines.join('\n') + '\n';
}

/** Parses `.env` text (see the module comment for what is accepted). Lines that are not `KEY=value` are skipped. */
export function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const l = raw.trim();
    if (!l || l.startsWith('#')) continue;
    const eq = l.indexOf('=');
    if (eq <= 0) continue;
    const key = l
      .slice(0, eq)
      .replace(/^export\s+/, '')
      .trim();
    let value = l.slice(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0])
      value = value.slice(1, -1);
    out[key] = value;
  }
  return out;
}

/** The variables of the `.env` file at `path`; a missing file has none. */
export async function readEnvFile(path: string): Promise<Record<string, string>> {
  return parseEnv((await readIfExists(path)) ?? '');
}

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Sets each key of `values` in `.env` text: its line is replaced where it is (an `export KEY=` line included), a
 * missing key is appended; every other line stays as it was. Throws before changing anything when a value is unsafe.
 */
export function setEnvValues(text: string, values: Record<string, string>): string {
  const wanted = new Map(Object.entries(values).map(([key, value]) => [key, envLine(key, value)]));
  const lines = text === '' ? [] : text.split('\n');
  const trailingNewline = lines.length > 0 && lines.at(-1) === '';
  if (trailingNewline) lines.pop();
  const found = new Set<string>();
  const next = lines.map((l) => {
    for (const [key, replacement] of wanted) {
      if (new RegExp(`^\\s*(?:export\\s+)?${escapeRegExp(key)}\\s*=`).test(l)) {
        found.add(key);
        return replacement;
      }
    }
    return l;
  });
  for (const [key, replacement] of wanted) if (!found.has(key)) next.push(replacement);
  return next.join('\n') + '\n';
}
