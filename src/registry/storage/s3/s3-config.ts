/**
 * S3 storage settings: the `s3://BUCKET[/PREFIX]` URL of `--storage`, the endpoint, region and addressing style,
 * and the client built from them. Credentials are never settings of ours: the AWS SDK's default chain finds them
 * (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the shared config files, web identity, ...), so they
 * never pass through our flags, config file or logs.
 */
import { S3Client } from '@aws-sdk/client-s3';

export interface S3Settings {
  bucket: string;
  /** Key prefix, distribution's `rootdirectory` (no leading or trailing `/`; empty for the bucket root). */
  prefix: string;
  /** e.g. http://127.0.0.1:7070; undefined: AWS's own endpoint for the region. */
  endpoint: string | undefined;
  region: string;
  /** Path-style addressing (`endpoint/bucket/key`), which most S3-compatible servers need. */
  pathStyle: boolean;
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
  if (!m) throw new S3UrlError(`"${text}" is not an s3:// URL (example: s3://my-bucket/registry)`);
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

export function createS3Client(s: S3Settings): S3Client {
  return new S3Client({
    endpoint: s.endpoint,
    region: s.region,
    forcePathStyle: s.pathStyle,
    // Checksums only where S3 requires them: S3-compatible servers differ in the newer checksum headers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // An unreachable endpoint fails within seconds instead of hanging a request (and /healthz) for minutes.
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 120_000 },
    maxAttempts: 3,
  });
}
