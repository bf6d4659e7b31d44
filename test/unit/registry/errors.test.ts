import { describe, expect, it } from 'vitest';
import { ERROR_TABLE, RegistryError, errorEnvelope, toRegistryError } from '../../../src/registry/errors.js';

describe('error table and envelope', () => {
  it('carries the spec statuses', () => {
    const expected: Record<string, number> = {
      BLOB_UNKNOWN: 404,
      BLOB_UPLOAD_INVALID: 400,
      BLOB_UPLOAD_UNKNOWN: 404,
      DIGEST_INVALID: 400,
      MANIFEST_BLOB_UNKNOWN: 400,
      MANIFEST_INVALID: 400,
      MANIFEST_UNKNOWN: 404,
      NAME_INVALID: 400,
      NAME_UNKNOWN: 404,
      SIZE_INVALID: 400,
      UNAUTHORIZED: 401,
      DENIED: 403,
      UNSUPPORTED: 415,
      TOOMANYREQUESTS: 429,
      UNAVAILABLE: 503,
      RANGE_INVALID: 416,
      MANIFEST_TOO_BIG: 413,
    };
    for (const [code, status] of Object.entries(expected))
      expect(ERROR_TABLE[code as keyof typeof ERROR_TABLE].status).toBe(status);
  });

  it('serializes {errors:[{code,message,detail}]} with the spec code on the wire', () => {
    expect(errorEnvelope(new RegistryError('BLOB_UNKNOWN', { digest: 'sha256:x' }))).toEqual({
      errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry', detail: { digest: 'sha256:x' } }],
    });
    const big = new RegistryError('MANIFEST_TOO_BIG');
    expect(big.status).toBe(413);
    expect(errorEnvelope(big).errors[0]?.code).toBe('MANIFEST_INVALID');
    expect(errorEnvelope(new RegistryError('RANGE_INVALID')).errors[0]?.code).toBe('BLOB_UPLOAD_INVALID');
    expect(errorEnvelope(new RegistryError('METHOD_NOT_ALLOWED')).errors[0]).toEqual({
      code: 'UNSUPPORTED',
      message: 'the method is not allowed on this resource',
    });
  });

  it('turns unknown failures into INTERNAL without their message', () => {
    const e = toRegistryError(new Error('EACCES /secret/path'));
    expect(e.status).toBe(500);
    expect(JSON.stringify(errorEnvelope(e))).not.toContain('secret');
  });
});
