/**
 * The one error table of the registry. Handlers throw `RegistryError`s carrying a code from this table; the
 * HTTP status and default message come only from here, and `errorEnvelope` is the one serializer of the
 * OCI `{"errors":[{code,message,detail}]}` body.
 * Codes: https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#error-codes
 */
import { StorageUnavailableError } from './storage/driver.js';

export const ERROR_TABLE = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: 'manifest references a manifest or blob unknown to registry' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_TOO_BIG: { status: 413, message: 'manifest exceeds the size limit' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  TAG_INVALID: { status: 400, message: 'invalid tag' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 415, message: 'the operation is unsupported' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'the method is not allowed on this resource' },
  NOT_FOUND: { status: 404, message: 'not found' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  GC_RUNNING: { status: 409, message: 'a garbage collection is already running' },
  RETENTION_RUNNING: { status: 409, message: 'a retention run is already running' },
  UNAVAILABLE: { status: 503, message: 'service unavailable' },
  RANGE_INVALID: { status: 416, message: 'requested range not satisfiable' },
  INVALID_REQUEST: { status: 400, message: 'invalid request' },
  INTERNAL: { status: 500, message: 'internal server error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_TABLE;

/** What the spec's envelope calls the code: a few of our table keys share one spec code with another status. */
const WIRE_CODE: Partial<Record<ErrorCode, string>> = {
  MANIFEST_TOO_BIG: 'MANIFEST_INVALID',
  METHOD_NOT_ALLOWED: 'UNSUPPORTED',
  RANGE_INVALID: 'BLOB_UPLOAD_INVALID',
};

export class RegistryError extends Error {
  readonly code: ErrorCode;
  readonly detail: unknown;
  /** Extra response headers (Range on 416, Retry-After on 429/503, WWW-Authenticate on 401). */
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, detail?: unknown, opts: { message?: string; headers?: Record<string, string> } = {}) {
    super(opts.message ?? ERROR_TABLE[code].message);
    this.name = 'RegistryError';
    this.code = code;
    this.detail = detail;
    this.headers = opts.headers ?? {};
  }

  get status(): number {
    return ERROR_TABLE[this.code].status;
  }

  get wireCode(): string {
    return WIRE_CODE[this.code] ?? this.code;
  }
}

export interface ErrorEnvelope {
  errors: { code: string; message: string; detail?: unknown }[];
}

export function errorEnvelope(err: RegistryError): ErrorEnvelope {
  const entry: { code: string; message: string; detail?: unknown } = { code: err.wireCode, message: err.message };
  if (err.detail !== undefined) entry.detail = err.detail;
  return { errors: [entry] };
}

/** Turns anything thrown into a RegistryError; unknown failures become INTERNAL without leaking internals. */
export function toRegistryError(err: unknown): RegistryError {
  if (err instanceof RegistryError) return err;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new RegistryError(
      'UNAVAILABLE',
      { reason: 'storage full' },
      { message: 'no space left on the registry storage', headers: { 'Retry-After': '60' } },
    );
  }
  if (err instanceof StorageUnavailableError) {
    return new RegistryError(
      'UNAVAILABLE',
      { reason: 'storage unavailable' },
      { message: 'the registry storage is unavailable, retry later', headers: { 'Retry-After': '10' } },
    );
  }
  return new RegistryError('INTERNAL');
}
