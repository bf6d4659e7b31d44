/**
 * The stack secrets `regctl init` takes from its environment, never from flags (a flag shows in the process list
 * and the shell's history): the PostgreSQL password of a `metadata:` store and the S3 keys of a `storage.url`
 * bucket. A file already in auth/ is kept as it is; a different value in the environment is then ignored, said.
 * For the trial services (`trial:`, config/trial.ts) the stack makes its own: a generated password (unless
 * $REGCTL_METADATA_PASSWORD gives one) and always generated S3 keys.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { RegctlError } from '../common/errors.js';
import type { Output } from '../common/io.js';
import { readIfExists } from '../common/fs.js';
import type { StackConfig } from '../config/schema.js';
import { METADATA_PASSWORD_FILE, S3_CREDENTIALS_FILE } from '../stack/build-model.js';
import { generatePassword } from '../stack/secrets.js';

type Env = Readonly<Record<string, string | undefined>>;

function oneLine(name: string, value: string): string {
  if (/[\r\n]/.test(value)) throw new RegctlError('USAGE', `${name} spans several lines`, { hint: 'give one line' });
  return value;
}

/** The PostgreSQL password: kept from auth/metadata-password, or taken from $REGCTL_METADATA_PASSWORD. */
export async function initMetadataPassword(
  out: Output,
  env: Env,
  dir: string,
  config: StackConfig,
): Promise<string | undefined> {
  if (!config.metadata) return undefined;
  const existing = (await readIfExists(join(dir, 'auth', METADATA_PASSWORD_FILE)))?.trim();
  const given = env.REGCTL_METADATA_PASSWORD;
  if (existing) {
    if (given && given !== existing)
      out.warn(`REGCTL_METADATA_PASSWORD ignored: auth/${METADATA_PASSWORD_FILE} is kept`);
    return existing;
  }
  if (!given && config.trial?.postgres) return generatePassword();
  if (!given) {
    throw new RegctlError('USAGE', `--metadata ${config.metadata} needs the database password`, {
      hint: `set REGCTL_METADATA_PASSWORD in the environment of \`regctl init\` (it is written to auth/${METADATA_PASSWORD_FILE}, 0600)`,
    });
  }
  return oneLine('REGCTL_METADATA_PASSWORD', given);
}

/** auth/s3-credentials as the AWS SDK's shared-credentials file reads it (profile `default`). */
export function s3CredentialsText(accessKeyId: string, secretAccessKey: string): string {
  return `[default]\naws_access_key_id = ${accessKeyId}\naws_secret_access_key = ${secretAccessKey}\n`;
}

/**
 * The S3 keys of a stack on S3: auth/s3-credentials kept, or written from $AWS_ACCESS_KEY_ID and
 * $AWS_SECRET_ACCESS_KEY (the names every S3 tool reads).
 */
export async function initS3Credentials(
  out: Output,
  env: Env,
  dir: string,
  config: StackConfig,
): Promise<string | undefined> {
  if (!config.storage.url) return undefined;
  const existing = await readIfExists(join(dir, 'auth', S3_CREDENTIALS_FILE));
  const id = env.AWS_ACCESS_KEY_ID;
  const secret = env.AWS_SECRET_ACCESS_KEY;
  if (existing !== undefined) {
    if (id && !existing.includes(`aws_access_key_id = ${id}\n`))
      out.warn(`AWS_ACCESS_KEY_ID ignored: auth/${S3_CREDENTIALS_FILE} is kept`);
    return existing;
  }
  if (config.trial?.s3) {
    // Keys in this environment are most likely of a real account: the trial gateway gets keys of its own.
    if (id)
      out.warn(`AWS_ACCESS_KEY_ID ignored: the trial S3 service gets keys of its own in auth/${S3_CREDENTIALS_FILE}`);
    return s3CredentialsText(randomBytes(10).toString('hex').toUpperCase(), generatePassword(40));
  }
  if (!id || !secret) {
    throw new RegctlError('USAGE', `--storage ${config.storage.url} needs the bucket's S3 keys`, {
      hint: `set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment of \`regctl init\` (they are written to auth/${S3_CREDENTIALS_FILE}, 0600)`,
    });
  }
  return s3CredentialsText(oneLine('AWS_ACCESS_KEY_ID', id), oneLine('AWS_SECRET_ACCESS_KEY', secret));
}
