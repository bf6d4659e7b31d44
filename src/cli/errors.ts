/**
 * Typed CLI errors. Every failure a user can fix is a `CliError` with a stable code, a one-line message
 * saying what is wrong and a hint saying how to fix it. `main.ts` is the only place that turns them into
 * output and an exit code.
 */
export type CliErrorCode =
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

const EXIT_CODES: Record<CliErrorCode, number> = {
  USAGE: 2,
  CONFIG_INVALID: 3,
  CONFIG_MISSING: 3,
  DOCKER_UNREACHABLE: 4,
  PORT_IN_USE: 5,
  FILE_EXISTS: 6,
  STACK_NOT_RUNNING: 7,
  HEALTH_TIMEOUT: 8,
  BUILD_FAILED: 9,
  REGISTRY_ERROR: 10,
  BACKUP_INVALID: 11,
  NOT_FOUND: 12,
  CHECKS_FAILED: 13,
  CANCELLED: 130,
  INTERNAL: 1,
};

export class CliError extends Error {
  readonly code: CliErrorCode;
  readonly hint: string | undefined;
  /** Extra lines shown under the message (for example a container's last log lines). */
  readonly details: string[];

  constructor(code: CliErrorCode, message: string, options: { hint?: string; details?: string[]; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'CliError';
    this.code = code;
    this.hint = options.hint;
    this.details = options.details ?? [];
  }

  get exitCode(): number {
    return EXIT_CODES[this.code];
  }
}

export function isCliError(value: unknown): value is CliError {
  return value instanceof CliError;
}
