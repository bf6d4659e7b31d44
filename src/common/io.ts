/**
 * How regctl talks to a person: what every operation receives instead of writing to the terminal or asking
 * through a library itself. The terminal implementations live in the CLI (`src/cli/output.ts` with chalk,
 * `src/cli/prompts.ts` with inquirer); tests pass capturing or scripted ones.
 */

/** The few colours output uses; a no-colour implementation returns its argument. */
export interface Colors {
  dim: (text: string) => string;
  green: (text: string) => string;
  yellow: (text: string) => string;
  red: (text: string) => string;
  cyan: (text: string) => string;
}

/** Its members are plain functions (no `this`), so a caller may pass `out.warn` on its own. */
export interface Output {
  /** Plain line on stdout. */
  line: (text?: string) => void;
  /** A step of long work: "→ text". */
  step: (text: string) => void;
  /** A finished step: "✓ text". */
  ok: (text: string) => void;
  warn: (text: string) => void;
  /** An error line on stderr. */
  error: (text: string) => void;
  /** Machine-readable output: one JSON document on stdout. */
  json: (value: unknown) => void;
  /** Progress that rewrites one line on a terminal and prints sparsely otherwise. */
  progress: (text: string) => void;
  readonly color: Colors;
  readonly isTTY: boolean;
}

/**
 * Questions to a person. With no terminal attached (`interactive` false) asking is an error rather than a hang,
 * so callers check `interactive` and fall back to flags and defaults.
 */
export interface Prompts {
  readonly interactive: boolean;
  input(message: string, opts?: { default?: string; validate?: (value: string) => true | string }): Promise<string>;
  password(message: string, opts?: { validate?: (value: string) => true | string }): Promise<string>;
  confirm(message: string, opts?: { default?: boolean }): Promise<boolean>;
  select<T extends string>(message: string, choices: { value: T; name?: string }[], opts?: { default?: T }): Promise<T>;
}
