/**
 * Registry events (webhooks): `events:` in the registry's config file and in `regctl.yaml`, read by one parser so
 * the two never disagree. As for `policies:` (policies.ts), validation collects every mistake, one line each
 * naming its field (`events.endpoints[1].url: …`), and a document with any mistake yields no endpoints at all.
 *
 * ```yaml
 * events:
 *   endpoints:
 *     - name: ci
 *       url: https://hooks.example.com/registry
 *       secretFile: /run/secrets/hook   # HMAC-SHA256 key of X-Regctl-Signature (absent: no signature header)
 *       actions: [push, delete]         # default: every action but pull
 *       repos: "apps/**"                # a repository pattern (repo-pattern.ts) or a list; default: all
 *       timeout: 5s                     # per delivery attempt
 *       allowPrivate: false             # true: link-local and cloud-metadata targets allowed
 * ```
 *
 * Also here, so the registry and the tests share one definition: the signature, the retry backoff, and which
 * addresses a target may not resolve to.
 */
import { createHmac } from 'node:crypto';
import { isIP } from 'node:net';
import { repoPatternToRegExp } from './repo-pattern.js';
import { parseDuration, UnitError } from './units.js';

export const EVENT_ACTIONS = ['push', 'delete', 'tag-move', 'retention', 'gc', 'pull'] as const;
export type EventAction = (typeof EVENT_ACTIONS)[number];

/** Media type of the envelope, as distribution's notifications send it (receivers written for it key on it). */
export const EVENTS_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v1+json';
export const SIGNATURE_HEADER = 'X-Regctl-Signature';
export const EVENT_ID_HEADER = 'X-Regctl-Event-Id';

export interface EventEndpoint {
  /** Where the endpoint is written (`events.endpoints[0]`), for messages. */
  id: string;
  name: string;
  url: URL;
  secretFile?: string;
  actions: ReadonlySet<EventAction>;
  repos?: { source: string[]; test(repo: string): boolean };
  timeoutMs: number;
  allowPrivate: boolean;
}

export interface EventsConfig {
  endpoints: EventEndpoint[];
}

export const NO_EVENTS: EventsConfig = { endpoints: [] };

export interface EventsProblem {
  path: string;
  message: string;
}

const ENDPOINT_KEYS = ['name', 'url', 'secretFile', 'actions', 'repos', 'timeout', 'allowPrivate'] as const;
const DEFAULT_ACTIONS = EVENT_ACTIONS.filter((a) => a !== 'pull');
const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** Host names that are cloud metadata services whatever they resolve to. */
const METADATA_HOSTS = new Set(['metadata.google.internal', 'metadata.goog', 'metadata', 'instance-data']);

/**
 * Why an address may not be a target (undefined: it may): link-local IPv4 169.254.0.0/16 (AWS, GCP, Azure
 * metadata at 169.254.169.254), link-local IPv6 fe80::/10, and the other clouds' metadata addresses (AWS IPv6
 * fd00:ec2::254, Alibaba 100.100.100.200, Oracle 192.0.0.192). IPv4-mapped IPv6 forms are read as IPv4.
 */
export function forbiddenAddress(address: string): string | undefined {
  let a = address.toLowerCase().replace(/^\[|\]$/g, '');
  // The URL parser writes an IPv6 address in its one canonical short form (`fd00:ec2:0::0:254` → `fd00:ec2::254`,
  // `::ffff:169.254.1.1` → `::ffff:a9fe:101`).
  if (isIP(a) === 6) a = new URL(`http://[${a}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(a);
  if (mapped) {
    const n = (parseInt(mapped[1] as string, 16) << 16) | parseInt(mapped[2] as string, 16);
    a = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
  }
  const family = isIP(a);
  if (family === 4) {
    const o = a.split('.').map(Number);
    if (o[0] === 169 && o[1] === 254) return `${address} is link-local (169.254.0.0/16, cloud metadata)`;
    if (a === '100.100.100.200' || a === '192.0.0.192') return `${address} is a cloud metadata address`;
    return undefined;
  }
  if (family === 6) {
    const first = parseInt(a.split(':')[0] || '0', 16);
    if ((first & 0xffc0) === 0xfe80) return `${address} is link-local (fe80::/10)`;
    if (a === 'fd00:ec2::254') return `${address} is a cloud metadata address`;
  }
  return undefined;
}

/** Why a URL's host may not be a target, judged on its text (the sender checks again after DNS). */
export function forbiddenHost(host: string): string | undefined {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (METADATA_HOSTS.has(h.replace(/\.$/, ''))) return `${host} is a cloud metadata host`;
  return forbiddenAddress(h);
}

/** Whether any endpoint wants an event of `action` in `repository` (events nobody wants are not recorded). */
export function wantsEvent(config: EventsConfig, action: EventAction, repository: string): boolean {
  return config.endpoints.some((e) => e.actions.has(action) && (!e.repos || e.repos.test(repository)));
}

/** `sha256=<hex>`: HMAC-SHA256 of the exact body bytes with the endpoint's secret. */
export function signBody(body: Buffer | string, secret: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * The longest wait between two attempts at a failing endpoint. A design choice: an endpoint back from an outage
 * of any length hears again within 30 s (plus one sender tick), while a dead one costs two requests a minute.
 * Doubling with no lower cap would leave a receiver that was down for a minute idle for another minute or more.
 */
export const BACKOFF_CAP_MS = 30_000;

/**
 * Wait before retry number `attempt` (1 = after the first failure): `baseMs` doubled each time, capped at `capMs`,
 * then spread by up to ±20 % (`random` in [0, 1)) so endpoints that failed together do not retry in lock step;
 * the spread never exceeds the cap.
 */
export function backoffMs(
  attempt: number,
  baseMs = 1000,
  capMs = BACKOFF_CAP_MS,
  random: () => number = Math.random,
): number {
  const raw = Math.min(capMs, baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.min(capMs, Math.round(raw * (0.8 + 0.4 * random())));
}

type Obj = Record<string, unknown>;

function endpoint(v: unknown, path: string, add: (p: string, m: string) => void): EventEndpoint | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    add(path, `must be a mapping with ${ENDPOINT_KEYS.join(', ')}`);
    return undefined;
  }
  const o = v as Obj;
  let ok = true;
  const bad = (field: string, message: string): void => {
    ok = false;
    add(`${path}.${field}`, message);
  };
  for (const k of Object.keys(o))
    if (!(ENDPOINT_KEYS as readonly string[]).includes(k)) bad(k, `unknown field (known: ${ENDPOINT_KEYS.join(', ')})`);
  if (typeof o.name !== 'string' || !NAME.test(o.name))
    bad('name', 'must be a short name: lower-case letters, digits, ".", "_" or "-" (e.g. "ci")');
  let url: URL | undefined;
  try {
    url = new URL(String(o.url));
    if (typeof o.url !== 'string' || !['http:', 'https:'].includes(url.protocol)) throw new Error();
  } catch {
    bad('url', `${JSON.stringify(o.url)} is not an http:// or https:// URL`);
    url = undefined;
  }
  const allowPrivate = o.allowPrivate ?? false;
  if (typeof allowPrivate !== 'boolean') bad('allowPrivate', 'must be true or false');
  const refused = url && forbiddenHost(url.hostname);
  if (refused && allowPrivate !== true) bad('url', `${refused}: refused unless allowPrivate: true`);
  if (o.secretFile !== undefined && (typeof o.secretFile !== 'string' || o.secretFile === ''))
    bad('secretFile', 'must be the path of a file holding the secret');
  const actions = new Set<EventAction>(DEFAULT_ACTIONS);
  if (o.actions !== undefined) {
    actions.clear();
    const list = Array.isArray(o.actions) ? (o.actions as unknown[]) : [];
    if (list.length === 0) bad('actions', `must be a list of ${EVENT_ACTIONS.join(', ')}`);
    list.forEach((a, i) => {
      if ((EVENT_ACTIONS as readonly unknown[]).includes(a)) actions.add(a as EventAction);
      else bad(`actions[${i}]`, `${JSON.stringify(a)} is not an action (known: ${EVENT_ACTIONS.join(', ')})`);
    });
  }
  let repos: EventEndpoint['repos'];
  if (o.repos !== undefined) {
    const list = typeof o.repos === 'string' ? [o.repos] : Array.isArray(o.repos) ? o.repos : [];
    if (list.length === 0 || list.some((p) => typeof p !== 'string' || p === ''))
      bad('repos', 'must be a repository pattern such as "apps/**", or a list of them');
    else {
      const res = (list as string[]).map(repoPatternToRegExp);
      repos = { source: list as string[], test: (repo) => res.some((re) => re.test(repo)) };
    }
  }
  let timeoutMs = 5000;
  if (o.timeout !== undefined) {
    try {
      if (typeof o.timeout !== 'string') throw new UnitError('');
      timeoutMs = parseDuration(o.timeout);
      if (timeoutMs < 100 || timeoutMs > 300_000) throw new UnitError('');
    } catch (err) {
      if (!(err instanceof UnitError)) throw err;
      bad('timeout', `${JSON.stringify(o.timeout)} is not a duration between 100ms and 5m (e.g. 5s)`);
    }
  }
  if (!ok || !url) return undefined;
  const e: EventEndpoint = { id: path, name: o.name as string, url, actions, timeoutMs, allowPrivate: !!allowPrivate };
  if (typeof o.secretFile === 'string') e.secretFile = o.secretFile;
  if (repos) e.repos = repos;
  return e;
}

/**
 * Validates `raw` (the value of `events:`, possibly absent) and returns the endpoints, or every problem found.
 * `base` is the path the messages start with.
 */
export function parseEvents(
  raw: unknown,
  base = 'events',
): { events: EventsConfig; problems: [] } | { events?: undefined; problems: EventsProblem[] } {
  if (raw === undefined || raw === null) return { events: NO_EVENTS, problems: [] };
  const problems: EventsProblem[] = [];
  const add = (path: string, message: string): void => void problems.push({ path, message });
  const endpoints: EventEndpoint[] = [];
  if (typeof raw !== 'object' || Array.isArray(raw)) add(base, 'must be a mapping with endpoints');
  else {
    const top = raw as Obj;
    for (const k of Object.keys(top)) if (k !== 'endpoints') add(`${base}.${k}`, 'unknown field (known: endpoints)');
    const list = top.endpoints ?? [];
    if (!Array.isArray(list)) add(`${base}.endpoints`, 'must be a list');
    else
      list.forEach((v, i) => {
        const e = endpoint(v, `${base}.endpoints[${i}]`, add);
        if (!e) return;
        if (endpoints.some((x) => x.name === e.name))
          add(`${base}.endpoints[${i}].name`, `"${e.name}" is already the name of another endpoint`);
        endpoints.push(e);
      });
  }
  if (problems.length > 0) return { problems };
  return { events: { endpoints }, problems: [] };
}

/** One delivery attempt, as the delivery log keeps it. */
export interface DeliveryAttempt {
  eventId: string;
  action: string;
  repository: string;
  at: string;
  /** HTTP status, or 0 when no answer came. */
  status: number;
  ok: boolean;
  error?: string;
}

/** The answer of `GET /admin/v1/events` (and what `regctl events --json` prints). */
export interface EventsStatus {
  endpoints: {
    name: string;
    url: string;
    actions: string[];
    repos?: string[];
    signed: boolean;
    /** Events waiting for this endpoint. */
    queued: number;
    attempts: DeliveryAttempt[];
  }[];
  /** Records not yet handed to the endpoints. */
  incoming: number;
}
