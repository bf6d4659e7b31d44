/**
 * The schema of `regctl.yaml`, the stack's single source of truth. Everything the renderer and the Engine
 * API applier need comes from here; passwords never do (they live in `.env` and `auth/htpasswd`).
 *
 * ```yaml
 * version: 1
 * name: regctl                 # compose project name
 * host: example.com            # routers: registry.example.com, registry-ui.example.com
 * mode: dev                    # what `regctl up` runs without --prod
 * ports: { http: 80, https: 443, registry: 5000, dashboard: 8080 }   # registry: direct port in dev, 0 = none
 *   # registryBind: 127.0.0.1     host address of the direct port (0.0.0.0: every address of the machine)
 * users:
 *   admin: { admin: true }
 *   ci: { rules: [ { repos: "apps/**", actions: [pull, push] } ] }
 * storage: { volume: regctl_registry-data }   # or S3: { url: s3://bucket/prefix, endpoint: http://s3.internal:7070,
 *                                            #          region: us-east-1, pathStyle: true }; keys in auth/s3-credentials
 * ui: { enabled: true }
 * acme: { email: ops@example.com, caServer: https://acme-v02.api.letsencrypt.org/directory }
 * images: { registry: regctl:0.1.0, traefik: traefik:v3.6, base: node:20-bookworm-slim }
 * traefik: { dashboard: false, readTimeout: 0s, writeTimeout: 0s, idleTimeout: 180s, accessLog: true }
 * registry: { uploadPurgeAge: 168h, minFreeDisk: 1GiB, logLevel: info, auth: basic }   # auth: basic | token
 * deploy: { mode: compose, replicas: 1 }   # swarm: `regctl up` deploys services (compose.swarm.yaml)
 * metadata: postgres://regctl@db.internal:5432/regctl   # shared by replicas; password in auth/metadata-password
 * trial: { postgres: true, s3: true }   # swarm: PostgreSQL and S3 as services of the stack (config/trial.ts)
 * policies: { immutableTags: [ { repos: "apps/**", tags: "v*" } ] }   # common/policies.ts; auth/registry.yaml
 * anonymous: { pull: [ "public/**" ] }   # pulled without credentials (auth/access.yaml, same key); never pushed
 * ```
 */
import { isIP } from 'node:net';
import { parseDuration, parseSize } from '../common/units.js';
import { parseS3Endpoint, parseS3Url } from '../common/s3-url.js';
import { z } from 'zod';
import { VERSION } from '../common/version.js';
import { parsePolicies } from '../common/policies.js';
import { parseEvents } from '../common/events.js';
import { trialProblems } from './trial.js';

export const LETS_ENCRYPT_PRODUCTION = 'https://acme-v02.api.letsencrypt.org/directory';
export const DEFAULT_TRAEFIK_IMAGE = 'traefik:v3.6';
export const DEFAULT_BASE_IMAGE = 'node:20-bookworm-slim';
export const DEFAULT_REGISTRY_IMAGE = `regctl:${VERSION}`;

/** Kept as written (the registry reads it again from its config file); each mistake is one issue at its field. */
const policiesSchema = z.record(z.string(), z.unknown()).superRefine((value, ctx) => {
  for (const p of parsePolicies(value).problems)
    ctx.addIssue({
      code: 'custom',
      path: p.path
        .split(/[.[\]]+/)
        .filter(Boolean)
        .slice(1),
      message: p.message,
    });
});

/** Kept as written, like `policies` (the registry reads it from its config file); one issue per mistake. */
const eventsSchema = z.record(z.string(), z.unknown()).superRefine((value, ctx) => {
  for (const p of parseEvents(value).problems)
    ctx.addIssue({
      code: 'custom',
      path: p.path
        .split(/[.[\]]+/)
        .filter(Boolean)
        .slice(1)
        .map((k) => (/^\d+$/.test(k) ? Number(k) : k)),
      message: p.message,
    });
});

const HOST_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** RFC 1123 host name check; returns the problem, or undefined when the name is fine. */
export function hostNameProblem(value: string): string | undefined {
  if (value.length === 0) return 'is empty';
  if (value.length > 253) return 'is longer than 253 characters';
  if (value !== value.toLowerCase()) return 'must be lower case';
  if (value.endsWith('.')) return 'must not end with a dot';
  const labels = value.split('.');
  for (const label of labels) {
    if (!HOST_LABEL.test(label)) {
      return `has an invalid label "${label}" (letters, digits and inner hyphens, 1 to 63 characters)`;
    }
  }
  // registry.<host> must stay a DNS name: an all-digit last label would make it read as an IPv4 address.
  if (/^\d+$/.test(labels.at(-1)!))
    return 'must end with a name, not a number (an IP address cannot carry registry.<host>)';
  if (value.length + 'registry-ui.'.length > 253) return 'is too long once prefixed with registry-ui.';
  return undefined;
}

const hostName = z.string().superRefine((value, ctx) => {
  const problem = hostNameProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: `host name "${value}" ${problem}` });
});

const port = (what: string) =>
  z
    .number({ error: `${what} must be a number` })
    .int(`${what} must be a whole number`)
    .min(1, `${what} must be 1 to 65535`)
    .max(65535, `${what} must be 1 to 65535`);

/** A zod string checked by one of the project's unit parsers, so regctl.yaml reads units as everything else does. */
const parsedBy = (parse: (text: string) => unknown, message: string, also: (text: string) => boolean = () => true) =>
  z.string().refine((value) => {
    try {
      parse(value);
      return also(value);
    } catch {
      return false;
    }
  }, message);

/** Durations handed to Traefik: the common grammar without days, which Go's time.ParseDuration does not read. */
const duration = (example: string) =>
  parsedBy(
    parseDuration,
    `must be a duration such as ${example} (units ns, us, ms, s, m, h)`,
    (value) => !value.includes('d'),
  );

/** A PostgreSQL URL without a password (the password lives in auth/metadata-password, 0600). */
const POSTGRES_URL = /^postgres(?:ql)?:\/\/[A-Za-z0-9._-]+@[A-Za-z0-9.-]+(?::\d{1,5})?\/[A-Za-z0-9_-]+$/;

export const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export const ACTIONS = ['pull', 'push', 'delete'] as const;
export type Action = (typeof ACTIONS)[number];

export const accessRuleSchema = z.strictObject({
  repos: z.string().min(1, 'repository pattern is empty'),
  actions: z.array(z.enum(ACTIONS, { error: 'actions are pull, push and delete' })).min(1, 'give at least one action'),
});

export const userSchema = z.strictObject({
  admin: z.boolean().default(false),
  rules: z.array(accessRuleSchema).default([]),
});

/** A repository pattern (common/repo-pattern.ts): the characters of repository names, and `*`. */
const anonymousPattern = z
  .string()
  .regex(/^[a-z0-9*][a-z0-9._\-/*]*$/, 'must be a repository pattern such as public/** (lower case, / and * only)');

export const stackConfigSchema = z
  .strictObject({
    version: z.literal(1, { error: 'version must be 1' }),
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be lower-case letters, digits, "-" or "_", starting with a letter or digit')
      .max(63)
      .default('regctl'),
    host: hostName.default('localhost'),
    mode: z.enum(['dev', 'prod']).default('dev'),
    ports: z
      .strictObject({
        http: port('ports.http').default(80),
        https: port('ports.https').default(443),
        registry: z.union([z.literal(0), port('ports.registry')]).default(5000),
        /**
         * Host address the dev stack's direct registry port binds to: loopback by default, since requests on it
         * bypass Traefik (its throttling still counts them, by the Docker gateway's address).
         */
        registryBind: z
          .string()
          .refine((v) => isIP(v) !== 0, 'ports.registryBind must be an IP address such as 127.0.0.1 or 0.0.0.0')
          .default('127.0.0.1'),
        /** Traefik dashboard, published on 127.0.0.1 only, when traefik.dashboard is true. */
        dashboard: port('ports.dashboard').default(8080),
      })
      .prefault({}),
    users: z
      .record(z.string().regex(USER_NAME, 'user names are letters, digits, ".", "_" or "-" (no ":")'), userSchema)
      .default({ admin: { admin: true, rules: [] } }),
    storage: z
      .strictObject({
        /** Engine volume name of the registry data; default `<name>_registry-data`. */
        volume: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must be a Docker volume name')
          .optional(),
        /**
         * `s3://BUCKET[/PREFIX]`: the registry stores blobs and manifests in S3 instead of the volume (which then
         * keeps only the embedded metadata store, when no PostgreSQL is named). Keys: auth/s3-credentials.
         */
        url: parsedBy(parseS3Url, 'must be s3://BUCKET[/PREFIX], for example s3://registry/prod').optional(),
        endpoint: parsedBy(
          parseS3Endpoint,
          'must be an http(s) URL without a path, for example http://s3:7070',
        ).optional(),
        region: z
          .string()
          .regex(/^[a-z0-9-]{1,32}$/, 'must be an S3 region such as us-east-1')
          .optional(),
        pathStyle: z.boolean({ error: 'storage.pathStyle is true or false' }).optional(),
      })
      .prefault({}),
    ui: z.strictObject({ enabled: z.boolean().default(true) }).prefault({}),
    acme: z
      .strictObject({
        email: z.email({ error: 'must be an email address' }).optional(),
        caServer: z
          .url({ protocol: /^https?$/, error: 'must be an http(s) URL of an ACME directory' })
          .default(LETS_ENCRYPT_PRODUCTION),
        /** PEM file of a private ACME CA (pebble, step-ca), relative to the stack directory or absolute. */
        caCertificates: z.string().min(1).optional(),
      })
      .prefault({}),
    images: z
      .strictObject({
        registry: z.string().min(1).default(DEFAULT_REGISTRY_IMAGE),
        traefik: z.string().min(1).default(DEFAULT_TRAEFIK_IMAGE),
        base: z.string().min(1).default(DEFAULT_BASE_IMAGE),
        /** Images of the trial services (config/trial.ts); their defaults apply where they are absent. */
        postgres: z.string().min(1).optional(),
        s3: z.string().min(1).optional(),
      })
      .prefault({}),
    traefik: z
      .strictObject({
        dashboard: z.boolean().default(false),
        /** 0s = no limit: Traefik's 60 s default cuts long pushes. */
        readTimeout: duration('0s or 24h').default('0s'),
        writeTimeout: duration('0s or 24h').default('0s'),
        idleTimeout: duration('180s').default('180s'),
        accessLog: z.boolean().default(true),
        logLevel: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR']).default('INFO'),
      })
      .prefault({}),
    registry: z
      .strictObject({
        uploadPurgeAge: parsedBy(
          parseDuration,
          'must be a duration such as 24h, 7d, 90m or 1h30m (a number needs a unit: ms, s, m, h, d)',
        ).default('168h'),
        minFreeDisk: parsedBy(
          parseSize,
          'must be a size such as 1GiB or 500MB (Ki/Mi/Gi: powers of 1024, k/M/G: of 1000)',
        ).default('1GiB'),
        logLevel: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
        /** basic: a password on every request; token: Bearer tokens from the registry (key auth/token-key.pem). */
        auth: z.enum(['basic', 'token'], { error: 'registry.auth is basic or token' }).default('basic'),
      })
      .prefault({}),
    /** How `regctl up` runs the stack: containers on this engine (compose), or Swarm services (swarm). */
    deploy: z
      .strictObject({
        mode: z.enum(['compose', 'swarm'], { error: 'deploy.mode is compose or swarm' }).default('compose'),
        replicas: z
          .number({ error: 'deploy.replicas must be a number' })
          .int('deploy.replicas must be a whole number')
          .min(1, 'deploy.replicas must be at least 1')
          .max(64, 'deploy.replicas must be at most 64')
          .default(1),
      })
      .prefault({}),
    /** Metadata store of the registry: SQLite under the data volume when absent, or a shared PostgreSQL. */
    metadata: z.string().regex(POSTGRES_URL, 'must be postgres://USER@HOST[:PORT]/DB, without a password').optional(),
    /** Registry policies (immutable tags, retention), validated by the registry's own parser. */
    policies: policiesSchema.optional(),
    /** Event endpoints (webhooks), validated by the registry's own parser (common/events.ts). */
    events: eventsSchema.optional(),
    /** Public repositories: rendered as the access file's `anonymous.pull`, under the same name. */
    anonymous: z.strictObject({ pull: z.array(anonymousPattern) }).optional(),
    /** PostgreSQL and S3 run as services of a swarm stack, for a trial (config/trial.ts). */
    trial: z
      .strictObject({
        postgres: z.boolean({ error: 'trial.postgres is true or false' }).default(false),
        s3: z.boolean({ error: 'trial.s3 is true or false' }).default(false),
      })
      .optional(),
  })
  .superRefine((config, ctx) => {
    const admins = Object.entries(config.users).filter(([, u]) => u.admin);
    if (admins.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['users'], message: 'at least one user needs admin: true' });
    }
    const { mode, replicas } = config.deploy;
    if (replicas > 1 && mode !== 'swarm') {
      ctx.addIssue({
        code: 'custom',
        path: ['deploy', 'replicas'],
        message: 'more than one replica needs deploy.mode: swarm',
      });
    } else if (replicas > 1 && !config.metadata) {
      ctx.addIssue({
        code: 'custom',
        path: ['deploy', 'replicas'],
        message: `${replicas} replicas share one store only with PostgreSQL metadata: set metadata: postgres://USER@HOST/DB`,
      });
    }
    const { storage } = config;
    for (const key of ['endpoint', 'region'] as const) {
      if (storage[key] !== undefined && storage.url === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['storage', key],
          message: `storage.${key} needs storage.url: s3://BUCKET`,
        });
    }
    for (const p of trialProblems(config)) ctx.addIssue({ code: 'custom', path: p.path, message: p.message });
    const { http, https, registry, dashboard } = config.ports;
    if (http === https)
      ctx.addIssue({ code: 'custom', path: ['ports', 'https'], message: 'ports.http and ports.https must differ' });
    if (registry !== 0 && (registry === http || registry === https)) {
      ctx.addIssue({
        code: 'custom',
        path: ['ports', 'registry'],
        message: 'ports.registry must differ from ports.http and ports.https',
      });
    }
    if (config.traefik.dashboard && [http, https, registry].includes(dashboard)) {
      ctx.addIssue({
        code: 'custom',
        path: ['ports', 'dashboard'],
        message: 'ports.dashboard must differ from the other ports',
      });
    }
  });

export type StackConfig = z.output<typeof stackConfigSchema>;
export type StackConfigInput = z.input<typeof stackConfigSchema>;
export type UserConfig = z.output<typeof userSchema>;

/** The user whose password `.env` carries (REGISTRY_USERNAME): the first admin. */
export function primaryAdmin(config: StackConfig): string {
  const entry = Object.entries(config.users).find(([, u]) => u.admin);
  if (!entry) throw new Error('config has no admin user');
  return entry[0];
}

/** Hints for fields whose fix is not obvious from the message alone. */
const HINTS: { prefix: string; hint: string }[] = [
  {
    prefix: 'host',
    hint: 'use a DNS name such as example.com (the stack serves registry.<host> and registry-ui.<host>)',
  },
  { prefix: 'ports', hint: 'ports are whole numbers from 1 to 65535 (ports.registry may be 0 for none)' },
  { prefix: 'acme.email', hint: "give an address Let's Encrypt can write to, or remove acme.email" },
  { prefix: 'acme.caServer', hint: `the ACME directory URL, e.g. ${LETS_ENCRYPT_PRODUCTION}` },
  {
    prefix: 'users',
    hint: 'users map names to { admin: true } or { rules: [ { repos: "apps/**", actions: [pull, push] } ] }',
  },
  { prefix: 'version', hint: 'regctl.yaml starts with "version: 1"' },
  {
    prefix: 'deploy',
    hint: 'deploy: { mode: swarm, replicas: 3 } with metadata: postgres://USER@HOST/DB (see docs/swarm.md)',
  },
  {
    prefix: 'storage',
    hint: 'S3 keys go in auth/s3-credentials (0600; regctl init writes it from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)',
  },
  {
    prefix: 'trial',
    hint: 'regctl init --mode swarm --with-postgres --with-s3 writes trial, metadata and storage together (docs/swarm.md)',
  },
  { prefix: 'metadata', hint: 'the database password goes in auth/metadata-password (0600), never in the URL' },
];

export interface ConfigProblem {
  /** Dotted field path, e.g. `ports.http`; empty for the document itself. */
  path: string;
  message: string;
  hint: string;
}

/** Validates parsed YAML; problems carry the field path and a hint. */
export function parseStackConfig(
  input: unknown,
): { config: StackConfig; problems: [] } | { config?: undefined; problems: ConfigProblem[] } {
  const result = stackConfigSchema.safeParse(input);
  if (result.success) return { config: result.data, problems: [] };
  const problems = result.error.issues.map((issue) => {
    const path = issue.path.map(String).join('.');
    let message = issue.message;
    if (issue.code === 'invalid_key') message = `${issue.issues[0]?.message ?? message}`;
    if (issue.code === 'unrecognized_keys')
      message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    const hint =
      HINTS.find((h) => path === h.prefix || path.startsWith(`${h.prefix}.`))?.hint ??
      'fix the field in regctl.yaml, or re-run `regctl init --force`';
    return { path, message, hint };
  });
  return { problems };
}
