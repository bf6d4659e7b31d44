/**
 * The S3 client for the driver, built from the settings, and the one-line explanation of why S3 cannot be used.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { S3Client } from '@aws-sdk/client-s3';
import type { LogFn } from '../../logger.js';
import { StorageUnavailableError } from '../driver.js';
import type { S3Settings } from './s3-config.js';

/**
 * The SDK's logger. Without one, the SDK prints some warnings straight to the console (one for each streaming
 * upload that fails, which includes every upload the registry aborts itself because the client went away or sent
 * a wrong digest). What it reports goes to the registry's log at debug level instead: each failure it reports
 * also reaches the registry as an error, which the registry reports where it matters. Only a command's name and
 * an error's name and message are kept (never a request's input).
 */
function sdkLogger(log: LogFn | undefined) {
  const describe = (c: unknown): string => {
    if (typeof c !== 'object' || c === null) return String(c);
    const o = c as { commandName?: unknown; error?: unknown; name?: unknown; message?: unknown };
    if (o.error !== undefined)
      return `${typeof o.commandName === 'string' ? `${o.commandName} ` : ''}${describe(o.error)}`;
    return `${typeof o.name === 'string' ? o.name : 'Error'}: ${typeof o.message === 'string' ? o.message : ''}`;
  };
  const report = (...content: unknown[]) => log?.('debug', 'S3 client', { detail: content.map(describe).join(' ') });
  return { trace: () => undefined, debug: () => undefined, info: () => undefined, warn: report, error: report };
}

export function createS3Client(s: S3Settings, log?: LogFn): S3Client {
  // The SDK warns on every start that releases after January 2027 will need Node 22: we pin 3.1178.x for Node 20
  // on purpose (package.json), so the warning would only be noise in the registry's output. An explicit setting wins.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
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
    logger: sdkLogger(log),
  });
}

interface ErrorLike {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** Network failures Node reports while connecting (no answer from the endpoint at all). */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET']);

/**
 * What went wrong talking to S3, in one line naming the setting to fix. Never includes credentials: SDK messages
 * name the access key id at most, and only the error code is kept for refusals.
 */
export function describeS3Error(err: unknown, s: Pick<S3Settings, 'bucket' | 'endpoint'>): string {
  const cause = err instanceof StorageUnavailableError ? err.cause : err;
  const e = (typeof cause === 'object' && cause !== null ? cause : {}) as ErrorLike;
  const where = s.endpoint ?? 'the AWS endpoint';
  const code = e.code ?? e.name ?? '';
  if (UNREACHABLE.has(code) || e.name === 'TimeoutError')
    return `S3 endpoint ${where} is unreachable (${code}): check --s3-endpoint and that the server runs`;
  if (e.name === 'NoSuchBucket') return `bucket "${s.bucket}" does not exist at ${where}: create it or fix --storage`;
  if (e.name === 'CredentialsProviderError')
    return 'no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)';
  if (['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'Forbidden'].includes(e.name ?? ''))
    return `S3 at ${where} refused the credentials for bucket "${s.bucket}" (${e.name}): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`;
  const status = e.$metadata?.httpStatusCode;
  return `S3 at ${where} failed for bucket "${s.bucket}": ${e.name ?? 'Error'}${status ? ` (HTTP ${status})` : ''}${
    e.message && e.message !== e.name ? `: ${e.message.split('\n')[0]}` : ''
  }`;
}

/** True when S3 did not answer, or failed on its side (5xx) after the SDK's retries: worth a later retry. */
export function isS3Unavailable(err: unknown): boolean {
  const e = (typeof err === 'object' && err !== null ? err : {}) as ErrorLike;
  const status = e.$metadata?.httpStatusCode;
  return (
    UNREACHABLE.has(e.code ?? e.name ?? '') || e.name === 'TimeoutError' || (status !== undefined && status >= 500)
  );
}

/**
 * Makes every call of `client` fail with StorageUnavailableError when S3 is unreachable or failing (after the SDK's
 * own retries), so the registry answers 503 with Retry-After instead of 500. Installed once per client.
 */
export function reportUnavailable(client: S3Client, s: Pick<S3Settings, 'bucket' | 'endpoint'>): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (err) {
        if (isS3Unavailable(err)) throw new StorageUnavailableError(describeS3Error(err, s), { cause: err });
        throw err;
      }
    },
    { step: 'initialize', name: 'regctlStorageUnavailable', override: true },
  );
}

/** How often a write refused with DIRECTORY_RACE is tried in all. */
const DIRECTORY_RACE_TRIES = 4;
/**
 * S3-compatible servers that keep objects as files (versitygw's posix backend) create an object's parent
 * directories when they write it, and report a failure to, such as a concurrent delete removing the emptied
 * parent in between, as `409 ExistingObjectIsDirectory`. S3 itself has no directories and never answers so.
 */
const DIRECTORY_RACE = 'ExistingObjectIsDirectory';

/**
 * Makes every call of `client` whose request body can be sent again (none, a string or bytes: not a stream) try
 * again, after a short pause, when refused with DIRECTORY_RACE. Installed once per client.
 */
export function retryDirectoryRace(client: S3Client, pause = (ms: number) => sleep(ms)): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      const body = (args.input as { Body?: unknown }).Body;
      const replayable = body === undefined || typeof body === 'string' || body instanceof Uint8Array;
      for (let attempt = 1; ; attempt++) {
        try {
          return await next(args);
        } catch (err) {
          const e = (typeof err === 'object' && err !== null ? err : {}) as ErrorLike;
          if (e.name !== DIRECTORY_RACE || !replayable || attempt >= DIRECTORY_RACE_TRIES) throw err;
          await pause(25 * attempt);
        }
      }
    },
    { step: 'initialize', name: 'regctlDirectoryRaceRetry', override: true },
  );
}
