/**
 * S3 storage settings: the `s3://BUCKET[/PREFIX]` URL of `--storage` (parsed by src/common/s3-url.ts), the endpoint, region and addressing style
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
