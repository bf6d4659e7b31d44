/**
 * Where the crash harness's registry keeps its data, and how the harness inspects it between lives: a data
 * directory (the default, with the embedded SQLite store), or an S3 bucket with a PostgreSQL metadata store (the
 * replicas' configuration, on versitygw and a throwaway cluster). The checks are the same; only what they read
 * differs (S3 writes are single PUTs, so it never holds temporary files).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3Settings } from '../../../../src/registry/storage/s3/s3-config.js';
import { S3Driver } from '../../../../src/registry/storage/s3/s3-driver.js';
import { writePasswordFile, type PostgresCluster } from '../../../helpers/postgres.js';
import type { S3Server } from '../../../helpers/versitygw.js';
import type { StorageDriver } from '../../../../src/registry/storage/driver.js';
import { FsDriver } from '../../../../src/registry/storage/fs-driver.js';
import { walkFiles } from '../../../../src/registry/storage/fsck.js';
import { incompleteTags, snapshotFiles, tempFiles } from './data-dir.js';

export interface CrashStorage {
  /** For logs and the report: `filesystem` or `s3+postgres`. */
  readonly label: string;
  /** Creates what the first start needs. */
  prepare(): Promise<void>;
  /** `regctl serve` flags naming the storage and the metadata store. */
  serveArgs(): string[];
  /** Environment the server needs (S3 credentials). */
  env(): NodeJS.ProcessEnv;
  /** The storage as the registry finds it at start (for the offline fsck). */
  openDriver(): Promise<StorageDriver>;
  /** Temporary files (the `.tmp-` marker) with their mtimes. */
  tempFiles(): Promise<{ path: string; mtimeMs: number }[]>;
  /** Tag directories without `current/link`. */
  incompleteTags(): Promise<string[]>;
  /** Paths under any repository's `_uploads`. */
  uploadsLeft(): Promise<string[]>;
}

/** The data directory `data`, with the default metadata store (SQLite in it). */
export function filesystemStorage(data: string): CrashStorage {
  return {
    label: 'filesystem',
    prepare: async () => void (await mkdir(data, { recursive: true })),
    serveArgs: () => ['--data', data],
    env: () => ({}),
    openDriver: async () => {
      // What the write journal holds is written back first, as the registry does at start.
      const driver = new FsDriver(data);
      await driver.open();
      return driver;
    },
    tempFiles: () => tempFiles(data),
    incompleteTags: () => incompleteTags(data),
    uploadsLeft: async () => [...(await snapshotFiles(data)).keys()].filter((p) => p.includes('/_uploads/')),
  };
}

/** Every file under `root` of a driver's storage, relative to the storage root. */
async function driverFiles(driver: StorageDriver, root: string): Promise<string[]> {
  const out: string[] = [];
  await walkFiles(driver, root, async (path) => {
    out.push(path);
  });
  return out;
}

export interface S3PostgresOptions {
  s3: S3Settings;
  /** Environment carrying the S3 credentials (for the server). */
  env: NodeJS.ProcessEnv;
  /** The bucket's driver for the harness's own reads, with its own credentials. */
  driver: () => StorageDriver;
  /** `postgres://USER@HOST:PORT/DB` and the file holding its password. */
  metadataUrl: string;
  passwordFile: string;
  /** Local state of the server (nothing with PostgreSQL metadata, but serve wants a directory). */
  stateDir: string;
}

/** A fresh bucket on `s3` (keys under `crash/`) and a fresh database on `pg`; the server's state under `dir`. */
export async function freshS3PostgresStorage(
  dir: string,
  s3: S3Server,
  pg: PostgresCluster,
): Promise<{ storage: CrashStorage; bucket: string }> {
  const bucket = await s3.createBucket();
  const db = await pg.createDatabase();
  const storage = s3PostgresStorage({
    s3: { bucket, prefix: 'crash', endpoint: s3.endpoint, region: s3.region, pathStyle: true, redirect: false },
    env: s3.env(),
    driver: () => new S3Driver({ client: s3.client(), bucket, prefix: 'crash' }),
    metadataUrl: db.url,
    passwordFile: await writePasswordFile(dir, db.password),
    stateDir: join(dir, 'state'),
  });
  return { storage, bucket };
}

/** A bucket (S3Settings) with the metadata store on PostgreSQL. */
export function s3PostgresStorage(o: S3PostgresOptions): CrashStorage {
  const repositories = 'docker/registry/v2/repositories';
  let shared: StorageDriver | undefined;
  const driver = () => (shared ??= o.driver());
  return {
    label: 's3+postgres',
    prepare: async () => void (await mkdir(o.stateDir, { recursive: true })),
    serveArgs: () => [
      '--storage',
      `s3://${o.s3.bucket}${o.s3.prefix ? `/${o.s3.prefix}` : ''}`,
      ...(o.s3.endpoint ? ['--s3-endpoint', o.s3.endpoint] : []),
      ...(o.s3.pathStyle ? ['--s3-path-style'] : []),
      '--s3-region',
      o.s3.region,
      '--data',
      o.stateDir,
      '--metadata',
      o.metadataUrl,
      '--metadata-password-file',
      o.passwordFile,
    ],
    env: () => o.env,
    openDriver: async () => driver(),
    tempFiles: async () => [],
    incompleteTags: async () => {
      const files = await driverFiles(driver(), repositories);
      const tagDirs = new Set<string>();
      const complete = new Set<string>();
      for (const path of files) {
        const m = /^(.+\/_manifests\/tags\/[^/]+)\/(.+)$/.exec(path);
        if (!m) continue;
        tagDirs.add(m[1] as string);
        if (m[2] === 'current/link') complete.add(m[1] as string);
      }
      return [...tagDirs].filter((d) => !complete.has(d));
    },
    uploadsLeft: async () => (await driverFiles(driver(), repositories)).filter((p) => p.includes('/_uploads/')),
  };
}
