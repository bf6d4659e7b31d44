/**
 * Trial services: on a swarm stack, `trial: { postgres: true, s3: true }` runs PostgreSQL and an S3 server as
 * services of the stack itself, for someone who has neither yet. The registry then reaches them by their names on
 * the stack's overlay network, through the ordinary settings, which must name them:
 *
 * ```yaml
 * trial: { postgres: true, s3: true }
 * metadata: postgres://regctl@postgres:5432/regctl
 * storage: { url: s3://registry, endpoint: http://s3:7070, pathStyle: true }
 * images: { postgres: postgres:16-alpine, s3: versity/versitygw:v1.8.0 }   # the defaults
 * ```
 *
 * Both keep their data on a volume of one manager: a trial, not a production store (docs/swarm.md).
 */
import { parseS3Url } from '../common/s3-url.js';

export const DEFAULT_POSTGRES_IMAGE = 'postgres:16-alpine';
export const DEFAULT_S3_IMAGE = 'versity/versitygw:v1.8.0';
/** Service keys, which are also their names on the stack network. */
export const TRIAL_POSTGRES_SERVICE = 'postgres';
export const TRIAL_S3_SERVICE = 's3';
export const TRIAL_POSTGRES_PORT = 5432;
export const TRIAL_S3_PORT = 7070;
/** What `regctl init --with-postgres` and `--with-s3` write. */
export const TRIAL_METADATA_URL = `postgres://regctl@${TRIAL_POSTGRES_SERVICE}:${TRIAL_POSTGRES_PORT}/regctl`;
export const TRIAL_S3_ENDPOINT = `http://${TRIAL_S3_SERVICE}:${TRIAL_S3_PORT}`;
export const TRIAL_STORAGE_URL = 's3://registry';

/** The part of the config the rules below read (the config type itself is defined on top of this file's rules). */
export interface TrialInput {
  trial?: { postgres: boolean; s3: boolean } | undefined;
  deploy: { mode: string };
  metadata?: string | undefined;
  storage: { url?: string | undefined; endpoint?: string | undefined; pathStyle?: boolean | undefined };
}

export interface TrialProblem {
  path: (string | number)[];
  message: string;
}

/** The trial PostgreSQL's user and database, from `metadata` (postgres://USER@postgres:5432/DB). */
export function trialDatabase(metadata: string): { user: string; database: string } {
  const u = new URL(metadata);
  return { user: decodeURIComponent(u.username), database: decodeURIComponent(u.pathname.slice(1)) };
}

/** The bucket the trial S3 service creates at its start, from `storage.url`. */
export function trialBucket(storageUrl: string): string {
  return parseS3Url(storageUrl).bucket;
}

/** One problem per mistake; none when `trial` is absent or off. */
export function trialProblems(config: TrialInput): TrialProblem[] {
  const trial = config.trial;
  if (!trial || (!trial.postgres && !trial.s3)) return [];
  const problems: TrialProblem[] = [];
  if (config.deploy.mode !== 'swarm') {
    problems.push({
      path: ['trial'],
      message: 'trial services (PostgreSQL, S3) run in a swarm stack only: set deploy.mode: swarm (init --mode swarm)',
    });
  }
  if (trial.postgres) {
    if (!config.metadata) {
      problems.push({
        path: ['metadata'],
        message: `trial.postgres runs PostgreSQL as the service ${TRIAL_POSTGRES_SERVICE}: set metadata: ${TRIAL_METADATA_URL}`,
      });
    } else {
      const u = new URL(config.metadata);
      if (u.hostname !== TRIAL_POSTGRES_SERVICE || (u.port !== '' && Number(u.port) !== TRIAL_POSTGRES_PORT)) {
        problems.push({
          path: ['metadata'],
          message: `with trial.postgres, metadata names the service: postgres://USER@${TRIAL_POSTGRES_SERVICE}:${TRIAL_POSTGRES_PORT}/DB, not ${u.host}`,
        });
      }
    }
  }
  if (trial.s3) {
    const { url, endpoint, pathStyle } = config.storage;
    if (!url) {
      problems.push({
        path: ['storage', 'url'],
        message: `trial.s3 runs an S3 server as the service ${TRIAL_S3_SERVICE}: set storage.url: ${TRIAL_STORAGE_URL}`,
      });
    }
    if (endpoint !== TRIAL_S3_ENDPOINT) {
      problems.push({
        path: ['storage', 'endpoint'],
        message: `with trial.s3, storage.endpoint is the service: ${TRIAL_S3_ENDPOINT}${endpoint ? `, not ${endpoint}` : ''}`,
      });
    }
    if (pathStyle !== true) {
      problems.push({
        path: ['storage', 'pathStyle'],
        message: 'with trial.s3, storage.pathStyle must be true (the service has no per-bucket host names)',
      });
    }
  }
  return problems;
}
