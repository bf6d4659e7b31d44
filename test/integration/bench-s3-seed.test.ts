import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { S3_PREFIX, checkSeeded, seedBucket } from '../../bench/s3-pass.js';
import { startVersitygw, versitygwAvailable, type S3Server } from '../helpers/versitygw.js';

/**
 * The bench's S3 phase seeds its catalog by writing the gateway's posix directory, not through S3: this shows the
 * gateway then serves what was written (the check `seedBucket` runs before anything is timed), and that the check
 * fails when the gateway does not list a repository or serves a link object that is not one.
 */
const REPOS = `${S3_PREFIX}/docker/registry/v2/repositories/catalog`;

describe.skipIf(!versitygwAvailable())('bench S3 seeding through the posix directory', () => {
  let s3: S3Server;
  beforeAll(async () => {
    s3 = await startVersitygw();
  }, 60_000);
  afterAll(async () => s3?.stop());

  it('seeds repositories the gateway lists and serves as written', async () => {
    const bucket = await s3.createBucket();
    await seedBucket(s3, bucket, 120, 5);
    await checkSeeded(s3, bucket, 120);
  });

  it('fails when a seeded repository is not listed', async () => {
    const bucket = await s3.createBucket();
    await seedBucket(s3, bucket, 30, 5);
    await rm(join(s3.rootDir, bucket, REPOS, 'r00007'), { recursive: true });
    await expect(checkSeeded(s3, bucket, 30)).rejects.toThrow(/seeded 30 repositories in \S+, the gateway lists 29/);
  });

  it('fails when the link object read back is not a digest', async () => {
    const bucket = await s3.createBucket();
    await seedBucket(s3, bucket, 10, 5);
    await writeFile(join(s3.rootDir, bucket, REPOS, 'r00009/_manifests/tags/latest/current/link'), 'garbage');
    await expect(checkSeeded(s3, bucket, 10)).rejects.toThrow(/serves .* as "garbage", not as written/);
  });
});
