/**
 * The policies in force in a registry: read from the `policies:` key of its config file (`regctl serve --config`)
 * at start-up and again on reload (`POST /admin/v1/reload`, or SIGHUP to `regctl serve`). A file with any
 * mistake changes nothing: the policies in force stay, and each mistake is logged as one line naming its field.
 * The registry also re-reads the file when its size or modification time changes (`watch`, a stat every few
 * seconds), so a stack's re-rendered file (stack/registry-config.ts) applies with no call at all.
 */
import { readFile, stat } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { formatProblem, NO_POLICIES, parsePolicies, type Policies } from '../../common/policies.js';
import type { LogFn } from '../logger.js';

/** The file could not be read or holds mistakes: `lines` are the one-line messages, one per mistake. */
export class PolicyFileError extends Error {
  constructor(readonly lines: string[]) {
    super(lines.join('; '));
    this.name = 'PolicyFileError';
  }
}

/** Reads and validates the `policies:` of a config file; throws `PolicyFileError` listing every mistake. */
export async function readPolicyFile(path: string): Promise<Policies> {
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
  if (!parsed.policies) throw new PolicyFileError(parsed.problems.map(formatProblem));
  return parsed.policies;
}

export class PolicyHolder {
  private policies: Policies;
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
    const next = await readPolicyFile(this.file);
    this.policies = next;
    for (const fn of this.listeners) fn(next);
    this.log('info', 'policies loaded', {
      immutableTagRules: next.immutableTags.length,
      retentionRules: next.retention.rules.length,
    });
  }
}
