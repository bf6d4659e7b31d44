import { describe, expect, test } from 'vitest';
import { parseStackConfig } from '../../../src/config/schema.js';

const problems = (input: Record<string, unknown>) =>
  (parseStackConfig({ version: 1, ...input }).problems ?? []).map((p) => `${p.path}: ${p.message}`);

const SWARM = { mode: 'swarm', replicas: 2 };
const PG = 'postgres://regctl@postgres:5432/regctl';
const S3 = { url: 's3://registry', endpoint: 'http://s3:7070', pathStyle: true };

describe('regctl.yaml trial:', () => {
  test('a swarm stack naming its trial services is valid, with or without their images', () => {
    expect(problems({ deploy: SWARM, trial: { postgres: true, s3: true }, metadata: PG, storage: S3 })).toEqual([]);
    expect(
      problems({
        deploy: SWARM,
        trial: { postgres: true },
        metadata: 'postgres://app@postgres/appdb',
        images: { postgres: 'regctl-test/postgres:15' },
      }),
    ).toEqual([]);
    expect(problems({ trial: { postgres: false, s3: false } })).toEqual([]);
  });

  test('one line per mistake, at the field to fix', () => {
    expect(problems({ trial: { postgres: true }, metadata: PG })).toEqual([
      'trial: trial services (PostgreSQL, S3) run in a swarm stack only: set deploy.mode: swarm (init --mode swarm)',
    ]);
    expect(problems({ deploy: SWARM, trial: { postgres: true } })).toEqual([
      'deploy.replicas: 2 replicas share one store only with PostgreSQL metadata: set metadata: postgres://USER@HOST/DB',
      'metadata: trial.postgres runs PostgreSQL as the service postgres: set metadata: postgres://regctl@postgres:5432/regctl',
    ]);
    expect(
      problems({ deploy: SWARM, trial: { postgres: true }, metadata: 'postgres://regctl@db.internal:5432/regctl' }),
    ).toEqual([
      'metadata: with trial.postgres, metadata names the service: postgres://USER@postgres:5432/DB, not db.internal:5432',
    ]);
    expect(problems({ deploy: SWARM, metadata: PG, trial: { s3: true } })).toEqual([
      'storage.url: trial.s3 runs an S3 server as the service s3: set storage.url: s3://registry',
      'storage.endpoint: with trial.s3, storage.endpoint is the service: http://s3:7070',
      'storage.pathStyle: with trial.s3, storage.pathStyle must be true (the service has no per-bucket host names)',
    ]);
    expect(
      problems({ deploy: SWARM, metadata: PG, trial: { s3: true }, storage: { ...S3, endpoint: 'http://minio:9000' } }),
    ).toEqual([
      'storage.endpoint: with trial.s3, storage.endpoint is the service: http://s3:7070, not http://minio:9000',
    ]);
    expect(problems({ deploy: SWARM, metadata: PG, trial: { postgres: 'yes' } })).toEqual([
      'trial.postgres: trial.postgres is true or false',
    ]);
    expect(problems({ deploy: SWARM, metadata: PG, trial: { mysql: true } })).toEqual(['trial: unknown field "mysql"']);
    expect(problems({ images: { postgres: '' } })).toEqual([
      'images.postgres: Too small: expected string to have >=1 characters',
    ]);
  });
});
