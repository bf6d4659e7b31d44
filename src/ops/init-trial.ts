/**
 * `regctl init --with-postgres` / `--with-s3`: the trial services of a swarm stack (config/trial.ts) written into
 * the config document with the settings that name them, so that the registry reaches them as any other store.
 */
import { RegctlError } from '../common/errors.js';
import type { StackConfig } from '../config/schema.js';
import { TRIAL_METADATA_URL, TRIAL_S3_ENDPOINT, TRIAL_STORAGE_URL } from '../config/trial.js';

export interface TrialOptions {
  withPostgres?: boolean;
  withS3?: boolean;
  postgresImage?: string;
  s3Image?: string;
  metadata?: string;
  storage?: string;
  s3Endpoint?: string;
}

/** The one line init prints for a stack with trial services; undefined without them. */
export function trialNotice(config: StackConfig): string | undefined {
  const names = [config.trial?.postgres ? 'PostgreSQL' : '', config.trial?.s3 ? 'S3' : ''].filter(Boolean);
  if (names.length === 0) return undefined;
  return (
    `trial: ${names.join(' and ')} run as services of this stack on one manager, whose volumes hold all the data: ` +
    'for trying regctl out, not for production (see docs/swarm.md)'
  );
}

type Section = (key: string) => Record<string, unknown>;

function refuse(message: string, hint: string): never {
  throw new RegctlError('USAGE', message, { hint });
}

/**
 * Sets `trial`, `metadata`, `storage` and the trial images in `input` from the flags; a store named elsewhere (by a
 * flag, or by the existing regctl.yaml) is refused in one line rather than replaced.
 */
export function applyTrialOptions(
  input: Record<string, unknown>,
  section: Section,
  opts: TrialOptions,
  env: Readonly<Record<string, string | undefined>>,
  existing: StackConfig | undefined,
): void {
  const images = section('images');
  if (opts.withPostgres) {
    if (opts.metadata !== undefined)
      refuse("--with-postgres runs the stack's own PostgreSQL: leave out --metadata", 'give one of the two');
    if (existing?.metadata && existing.metadata !== TRIAL_METADATA_URL && !existing.trial?.postgres)
      refuse(
        `--with-postgres: this stack already keeps its metadata in ${existing.metadata}`,
        'leave out --with-postgres, or start a new stack directory for the trial',
      );
    section('trial').postgres = true;
    // A stack that already runs its trial PostgreSQL keeps the user and database its volume was made with.
    if (!existing?.trial?.postgres) input.metadata = TRIAL_METADATA_URL;
  }
  if (opts.withS3) {
    if (opts.storage !== undefined || opts.s3Endpoint !== undefined)
      refuse("--with-s3 runs the stack's own S3 server: leave out --storage and --s3-endpoint", 'give one of the two');
    if (existing?.storage.url && !existing.trial?.s3)
      refuse(
        `--with-s3: this stack already keeps its images in ${existing.storage.url}`,
        'leave out --with-s3, or start a new stack directory for the trial',
      );
    section('trial').s3 = true;
    if (!existing?.trial?.s3) {
      const storage = section('storage');
      storage.url = TRIAL_STORAGE_URL;
      storage.endpoint = TRIAL_S3_ENDPOINT;
      storage.pathStyle = true;
    }
  }
  const trial = input.trial as { postgres?: boolean; s3?: boolean } | undefined;
  const postgresImage = opts.postgresImage ?? (existing ? undefined : env.REGCTL_POSTGRES_IMAGE || undefined);
  const s3Image = opts.s3Image ?? (existing ? undefined : env.REGCTL_S3_IMAGE || undefined);
  if (postgresImage !== undefined && trial?.postgres) images.postgres = postgresImage;
  if (s3Image !== undefined && trial?.s3) images.s3 = s3Image;
  if (opts.postgresImage !== undefined && !trial?.postgres)
    refuse("--postgres-image names the trial PostgreSQL's image: it needs --with-postgres", 'add --with-postgres');
  if (opts.s3Image !== undefined && !trial?.s3)
    refuse("--s3-image names the trial S3 server's image: it needs --with-s3", 'add --with-s3');
}
