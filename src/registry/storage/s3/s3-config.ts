/**
 * S3 storage settings: the `s3://BUCKET[/PREFIX]` URL of `--storage`, the endpoint, region and addressing style
 * (parsed here without loading the AWS SDK; s3-client.ts builds the client). Credentials are never settings of ours: the AWS SDK's default chain finds them
 * (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the shared config files, web identity, ...), so they
 * never pass through our flags, config file or logs.
 */
export interface S3Settings {
  bucket: string;
  /** Key prefix, distribution's `rootdirectory` (no leading or trailing `/`; empty for the bucket root). */
  prefix: string;
  /** e.g. http://127.0.0.1:7070; undefined: AWS's own endpoint for the region. */
  endpoint: string | undefined;
  region: string;
  /** Path-style addressing (`endpoint/bucket/key`), which most S3-compatible servers need. */
  pathStyle: boolean;
  /** Answer blob GETs with a redirect to a presigned URL on the S3 endpoint (off by default). */
  redirect: boolean;
}

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
