/**
 * The typed user-facing error. Every failure a person can fix is a `RegctlError` with a stable code, a one-line
 * message saying what is wrong and a hint saying how to fix it. Any layer may throw it; only the CLI's entry point
 * (`src/cli/main.ts`) turns it into output and an exit code (the code → exit-code table lives there).
 */
export type RegctlErrorCode =
  | 'USAGE'
  | 'CONFIG_INVALID'
  | 'CONFIG_MISSING'
  | 'DOCKER_UNREACHABLE'
  | 'PORT_IN_USE'
  | 'FILE_EXISTS'
  | 'STACK_NOT_RUNNING'
  | 'HEALTH_TIMEOUT'
  | 'BUILD_FAILED'
  | 'REGISTRY_ERROR'
  | 'BACKUP_INVALID'
  | 'NOT_FOUND'
  | 'CHECKS_FAILED'
  | 'CANCELLED'
  | 'INTERNAL';

export interface RegctlErrorOptions {
  hint?: string;
  /** Extra lines shown under the message (for example a container's last log lines). */
  details?: string[];
  cause?: unknown;
}

export class RegctlError extends Error {
  readonly code: RegctlErrorCode;
  readonly hint: string | undefined;
  readonly details: string[];

  constructor(code: RegctlErrorCode, message: string, options: RegctlErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = 'RegctlError';
    this.code = code;
    this.hint = options.hint;
    this.details = options.details ?? [];
  }
}

export function isRegctlError(value: unknown): value is RegctlError {
  return value instanceof RegctlError;
}
