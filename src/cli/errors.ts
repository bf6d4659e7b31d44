import type { RegctlError, RegctlErrorCode } from '../common/errors.js';

/** The process exit code of each error code: part of the CLI's contract, so scripts can branch on it. */
const EXIT_CODES: Record<RegctlErrorCode, number> = {
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

export function exitCodeOf(err: RegctlError): number {
  return EXIT_CODES[err.code];
}
