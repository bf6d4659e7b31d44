/**
 * The trial services of a swarm stack (`trial:` in regctl.yaml, config/trial.ts): PostgreSQL and an S3 server
 * (versitygw) the registry reaches by their names on the stack network. `swarm-model.ts` turns these drafts into
 * Swarm services beside the others: one task each, held on a manager with their data volume, replaced stop-first
 * (two servers on one data directory would corrupt it), no published port, never a Traefik route.
 *
 * Secrets stay out of their environment as for the registry:
 * - PostgreSQL reads its password from the `metadata-password` secret (POSTGRES_PASSWORD_FILE, the official
 *   image's own contract);
 * - versitygw reads its root keys from its environment or flags only, so its entry point is a short `sh` script
 *   that reads them from the `s3-credentials` secret (the AWS shared-credentials file the registry reads too) into
 *   the gateway process's own environment just before it starts: never in the service's definition or a compose
 *   file. The script also makes the bucket, which on versitygw's posix backend is a directory of its data volume.
 */
import {
  DEFAULT_POSTGRES_IMAGE,
  DEFAULT_S3_IMAGE,
  TRIAL_POSTGRES_PORT,
  TRIAL_POSTGRES_SERVICE,
  TRIAL_S3_PORT,
  TRIAL_S3_SERVICE,
  trialBucket,
  trialDatabase,
} from '../config/trial.js';
import type { StackConfig } from '../config/schema.js';
import { METADATA_PASSWORD_FILE, S3_CREDENTIALS_FILE } from './build-model.js';
import type { HealthcheckModel, MountModel } from './model.js';

/** Where a secret is mounted in a trial service (Swarm's own default directory for secrets). */
export const TRIAL_SECRETS_DIR = '/run/secrets';
export const POSTGRES_DATA_DIR = '/var/lib/postgresql/data';
/** PGDATA one level below the volume's root, as the official image's documentation advises for mounts. */
export const POSTGRES_PGDATA = `${POSTGRES_DATA_DIR}/pgdata`;
export const S3_DATA_DIR = '/data';
export const S3_HEALTH_PATH = '/health';

export interface TrialServiceDraft {
  /** Service key: its name on the stack network. */
  key: string;
  image: string;
  entrypoint?: string[];
  environment: Record<string, string>;
  /** Its data volume: the key its mount names, and the engine name (`<project>_<key>`). */
  volume: { key: string; name: string };
  mounts: MountModel[];
  /** Secret keys of the SwarmModel (`metadata-password`, `s3-credentials`) and where they are mounted. */
  secrets: { source: string; target: string }[];
  healthcheck: HealthcheckModel;
}

const TRIAL_HEALTH = { intervalMs: 5_000, timeoutMs: 5_000, retries: 5 };

/**
 * The S3 service's entry point: `$1` is the bucket. `sed` takes the keys out of the shared-credentials file (the
 * `key = value` lines regctl writes, s3CredentialsText in ops/init-secrets.ts); `exec` leaves the gateway as the
 * container's first process, so it receives the stop signal itself. `--keep-alive` keeps the registry's
 * connections open between requests, as S3 services do (the gateway's default closes each after one answer).
 */
export const S3_ENTRYPOINT_SCRIPT = [
  'set -eu',
  `f=${TRIAL_SECRETS_DIR}/${S3_CREDENTIALS_FILE}`,
  `ROOT_ACCESS_KEY_ID="$(sed -n 's/^aws_access_key_id = //p' "$f")"`,
  `ROOT_SECRET_ACCESS_KEY="$(sed -n 's/^aws_secret_access_key = //p' "$f")"`,
  'export ROOT_ACCESS_KEY_ID ROOT_SECRET_ACCESS_KEY',
  `mkdir -p "${S3_DATA_DIR}/$1"`,
  `exec versitygw --port :${TRIAL_S3_PORT} --health ${S3_HEALTH_PATH} --keep-alive posix ${S3_DATA_DIR}`,
].join('\n');

function postgresDraft(config: StackConfig, project: string): TrialServiceDraft {
  const { user, database } = trialDatabase(config.metadata ?? '');
  const volumeKey = 'postgres-data';
  return {
    key: TRIAL_POSTGRES_SERVICE,
    image: config.images.postgres ?? DEFAULT_POSTGRES_IMAGE,
    environment: {
      POSTGRES_USER: user,
      POSTGRES_DB: database,
      POSTGRES_PASSWORD_FILE: `${TRIAL_SECRETS_DIR}/${METADATA_PASSWORD_FILE}`,
      PGDATA: POSTGRES_PGDATA,
    },
    volume: { key: volumeKey, name: `${project}_${volumeKey}` },
    mounts: [{ type: 'volume', source: volumeKey, target: POSTGRES_DATA_DIR }],
    secrets: [{ source: 'metadata-password', target: `${TRIAL_SECRETS_DIR}/${METADATA_PASSWORD_FILE}` }],
    // Over TCP: while the image's first start initialises the volume, its temporary server listens on no address,
    // so the service is healthy only once the real server answers the network.
    healthcheck: {
      test: ['CMD', 'pg_isready', '-h', '127.0.0.1', '-p', String(TRIAL_POSTGRES_PORT), '-U', user, '-d', database],
      ...TRIAL_HEALTH,
      startPeriodMs: 60_000,
    },
  };
}

function s3Draft(config: StackConfig, project: string): TrialServiceDraft {
  const volumeKey = 's3-data';
  return {
    key: TRIAL_S3_SERVICE,
    image: config.images.s3 ?? DEFAULT_S3_IMAGE,
    entrypoint: ['/bin/sh', '-c', S3_ENTRYPOINT_SCRIPT, 'regctl-s3', trialBucket(config.storage.url ?? '')],
    environment: {},
    volume: { key: volumeKey, name: `${project}_${volumeKey}` },
    mounts: [{ type: 'volume', source: volumeKey, target: S3_DATA_DIR }],
    secrets: [{ source: 's3-credentials', target: `${TRIAL_SECRETS_DIR}/${S3_CREDENTIALS_FILE}` }],
    healthcheck: {
      test: ['CMD', 'wget', '-q', '-O', '/dev/null', `http://127.0.0.1:${TRIAL_S3_PORT}${S3_HEALTH_PATH}`],
      ...TRIAL_HEALTH,
      startPeriodMs: 20_000,
    },
  };
}

/** The trial services `config.trial` asks for (none without it); the config was validated (config/trial.ts). */
export function trialServiceDrafts(config: StackConfig, project: string): TrialServiceDraft[] {
  const drafts: TrialServiceDraft[] = [];
  if (config.trial?.postgres) drafts.push(postgresDraft(config, project));
  if (config.trial?.s3) drafts.push(s3Draft(config, project));
  return drafts;
}
