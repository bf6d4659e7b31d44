/**
 * The policies in force in a registry: read from the `policies:` key of its config file (`regctl serve --config`)
 * at start-up and again on reload (`POST /admin/v1/reload`, or SIGHUP to `regctl serve`). A file with any
 * mistake changes nothing: the policies in force stay, and each mistake is logged as one line naming its field.
 * The registry also re-reads the file when its size or modification time changes (`watch`, a stat every few
 * seconds), so a stack's re-rendered file (stack/registry-config.ts) applies with no call at all.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { NO_EVENTS, parseEvents, type EventsConfig } from '../../common/events.js';
import { formatProblem, NO_POLICIES, parsePolicies, type Policies } from '../../common/policies.js';
import type { LogFn } from '../logger.js';
import { readSignatureKeys } from './signature-keys.js';

/** The file could not be read or holds mistakes: `lines` are the one-line messages, one per mistake. */
export class PolicyFileError extends Error {
  constructor(readonly lines: string[]) {
    super(lines.join('; '));
    this.name = 'PolicyFileError';
  }
}

/** An event endpoint's secret, read from its `secretFile` (trailing newline dropped); never logged. */
export type EventSecrets = ReadonlyMap<string, Buffer>;

/**
 * Reads and validates the `policies:` and `events:` of a config file, and the events' secret files; throws
 * `PolicyFileError` listing every mistake, so that one bad line in either changes neither.
 */
export async function readConfigPolicies(
  path: string,
): Promise<{ policies: Policies; events: EventsConfig; secrets: EventSecrets }> {
  let doc: unknown;
  try {
    doc = parseYaml(await readFile(path, 'utf8')) ?? {};
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message.split('\n')[0];
    throw new PolicyFileError([`config: cannot read the policies of ${path} (${reason})`]);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new PolicyFileError([`config: ${path} must be a YAML mapping`]);
  const parsed = parsePolicies((doc as Record<string, unknown>).policies);
  const events = parseEvents((doc as Record<string, unknown>).events);
  const lines = [...parsed.problems, ...events.problems].map(formatProblem);
  if (parsed.policies) lines.push(...(await readSignatureKeys(parsed.policies, path)));
  const secrets = new Map<string, Buffer>();
  for (const e of events.events?.endpoints ?? []) {
    if (e.secretFile === undefined) continue;
    const secret = await readFile(resolve(dirname(path), e.secretFile)).catch((err: NodeJS.ErrnoException) => {
      lines.push(`${e.id}.secretFile: cannot read ${e.secretFile} (${err.code ?? err.message})`);
      return undefined;
    });
    if (secret !== undefined && secret.toString().trim() === '')
      lines.push(`${e.id}.secretFile: ${e.secretFile} is empty; put the shared secret in it`);
    else if (secret) secrets.set(e.name, Buffer.from(secret.toString().replace(/\r?\n$/, '')));
  }
  if (!parsed.policies || !events.events || lines.length > 0) throw new PolicyFileError(lines);
  return { policies: parsed.policies, events: events.events, secrets };
}

export class PolicyHolder {
  private policies: Policies;
  private eventsConfig: { events: EventsConfig; secrets: EventSecrets } = { events: NO_EVENTS, secrets: new Map() };
  private readonly listeners: ((p: Policies) => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private seen = '';

  /** `file`: the config file to read; without one the policies are fixed (`initial`, or none). */
  constructor(
    private readonly file: string | undefined,
    private readonly log: LogFn,
    initial: Policies = NO_POLICIES,
  ) {
    this.policies = initial;
  }

  get current(): Policies {
    return this.policies;
  }

  /** The event endpoints in force (`events:` of the same file) and their secrets. */
  get events(): { events: EventsConfig; secrets: EventSecrets } {
    return this.eventsConfig;
  }

  /** Called with the new policies after each successful (re)load. */
  onChange(fn: (p: Policies) => void): void {
    this.listeners.push(fn);
  }

  /** Re-reads the file whenever it changes, checked every `everyMs`; `unwatch` stops. */
  watch(everyMs = 2000): void {
    const file = this.file;
    if (file === undefined || this.timer) return;
    const check = async (): Promise<void> => {
      const s = await stat(file).catch(() => undefined);
      const key = s ? `${s.size}:${s.mtimeMs}:${s.ino}` : 'missing';
      if (key === this.seen) return;
      this.seen = key;
      await this.reload().catch(() => undefined);
    };
    void stat(file).then(
      (s) => (this.seen ||= `${s.size}:${s.mtimeMs}:${s.ino}`),
      () => undefined,
    );
    this.timer = setInterval(() => void check(), everyMs);
    this.timer.unref();
  }

  unwatch(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Reads the file again. On a mistake the policies in force stay, each mistake is logged on its own line, and
   * `PolicyFileError` is thrown for the caller to report. Without a file: a no-op.
   */
  async reload(): Promise<void> {
    try {
      await this.load();
    } catch (err) {
      if (err instanceof PolicyFileError)
        for (const line of err.lines) this.log('error', 'policy reload refused, the policies in force stay', { line });
      throw err;
    }
  }

  /** The first read, at start-up: like `reload`, but leaves reporting a bad file to the caller (nothing is in force). */
  async load(): Promise<void> {
    if (this.file === undefined) return;
    const read = await readConfigPolicies(this.file);
    const next = read.policies;
    this.policies = next;
    this.eventsConfig = { events: read.events, secrets: read.secrets };
    for (const fn of this.listeners) fn(next);
    this.log('info', 'policies loaded', {
      immutableTagRules: next.immutableTags.length,
      retentionRules: next.retention.rules.length,
      quotaRules: next.quotas?.length ?? 0,
      signatureRules: next.signatures.length,
      eventEndpoints: read.events.endpoints.length,
    });
  }
}
