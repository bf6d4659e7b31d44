/**
 * The S3 location settings as users type them: `s3://BUCKET[/PREFIX]` and the endpoint URL. Parsed in one place
 * for `regctl serve` (src/registry/config.ts) and the stack's `regctl.yaml` (src/config/schema.ts).
 */

/** Bucket names as S3 allows them (3-63 characters of lower-case letters, digits, `.` and `-`). */
const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export class S3UrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'S3UrlError';
  }
}

/** Parses `s3://BUCKET[/PREFIX]`; the error says what is wrong in one line. */
export function parseS3Url(text: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]*)(?:\/(.*))?$/.exec(text);
  if (!m)
    throw new S3UrlError(
      `"${text}" is not an s3:// URL (example: s3://my-bucket/registry; a directory goes in --data)`,
    );
  const bucket = m[1] ?? '';
  if (!BUCKET_RE.test(bucket)) {
    throw new S3UrlError(
      `"${bucket}" in ${text} is not a bucket name (3-63 characters: lower-case letters, digits, "." and "-")`,
    );
  }
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix.split('/').some((s) => s === '.' || s === '..') || /\/\//.test(prefix)) {
    throw new S3UrlError(`the prefix "${prefix}" in ${text} has an empty, "." or ".." segment`);
  }
  return { bucket, prefix };
}

/** Checks an endpoint URL (http or https, no path); the error says what is wrong in one line. */
export function parseS3Endpoint(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new S3UrlError(`"${text}" is not a URL (example: http://127.0.0.1:7070)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new S3UrlError(`"${text}" must be an http:// or https:// URL`);
  if (url.username || url.password)
    throw new S3UrlError('the S3 endpoint must not carry credentials: use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY');
  return text.replace(/\/+$/, '');
}
