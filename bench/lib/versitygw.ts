/**
 * versitygw (the S3 gateway provisioned as a Go peer) on a free loopback port with its `posix` backend on a
 * temporary directory: the real S3 server the S3 storage driver, its interop tests and the bench's S3 phase run
 * against. The tests reach it through test/helpers/versitygw.ts, which finds the binary (and fails under CI when
 * it is missing); the bench passes the provisioned binary itself.
 *
 * The gateway's root credentials come from its environment (`ROOT_ACCESS_KEY_ID`/`ROOT_SECRET_ACCESS_KEY`), never
 * from its command line, so they do not show in `ps`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

import { freePort } from './servers.js';
import { exited, stopChild } from './child.js';

export interface S3Server {
  /** e.g. http://127.0.0.1:41234 */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The posix backend's root: one directory per bucket. */
  rootDir: string;
  /** A client for the test's own requests (path style, the gateway's credentials). */
  client(): S3Client;
  /** Creates a bucket (a fresh name each call unless one is given); returns its name. */
  createBucket(name?: string): Promise<string>;
  /** Credentials as the AWS SDK's default chain reads them from the environment. */
  env(): Record<string, string>;
  /** The gateway's process, for CPU figures. */
  pid(): number | undefined;
  /** Kills the gateway (SIGKILL) but keeps its data: the endpoint refuses connections until `resume`. */
  kill(): Promise<void>;
  /** Starts the gateway again on the same port, data and credentials. */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts the gateway at `bin`, its posix backend in a fresh directory under `parentDir` (removed by `stop`).
 * Connections are kept alive between requests, as S3 services keep them: the gateway's own default closes every
 * connection after one answer, which would make each client open a TCP connection per request.
 */
export async function launchVersitygw(bin: string, parentDir = tmpdir()): Promise<S3Server> {
  const dir = await mkdtemp(join(parentDir, 'regctl-vgw-'));
  const rootDir = join(dir, 'data');
  await mkdir(rootDir, { recursive: true });
  const accessKeyId = `test${randomBytes(6).toString('hex')}`;
  const secretAccessKey = randomBytes(18).toString('hex');
  const region = 'us-east-1';
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  let output = '';
  const keep = (c: Buffer): void => {
    output = (output + c.toString('utf8')).slice(-8_000);
  };
  const launch = (): ChildProcess => {
    const c = spawn(bin, ['--port', `127.0.0.1:${port}`, '--keep-alive', '--quiet', 'posix', rootDir], {
      cwd: dir,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        ROOT_ACCESS_KEY_ID: accessKeyId,
        ROOT_SECRET_ACCESS_KEY: secretAccessKey,
        VGW_REGION: region,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    c.stdout?.on('data', keep);
    c.stderr?.on('data', keep);
    return c;
  };
  let child = launch();

  const clients: S3Client[] = [];
  const client = (): S3Client => {
    const c = new S3Client({
      endpoint,
      region,
      forcePathStyle: true,
      credentials: { accessKeyId, secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    clients.push(c);
    return c;
  };
  const stop = async (): Promise<void> => {
    for (const c of clients) c.destroy();
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
  };

  await answering();
  async function answering(): Promise<void> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        await stop();
        throw new Error(`${bin} exited before answering (${child.exitCode ?? child.signalCode}):\n${output}`);
      }
      try {
        // any HTTP answer (403 for an unsigned request) means it listens
        const res = await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(2_000) });
        await res.arrayBuffer();
        break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`${bin} did not answer ${endpoint} within 20 s:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  const admin = client();
  return {
    endpoint,
    region,
    accessKeyId,
    secretAccessKey,
    rootDir,
    client,
    async createBucket(name = `b-${randomBytes(5).toString('hex')}`) {
      await admin.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    },
    pid: () => child.pid,
    env: () => ({ AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey, AWS_REGION: region }),
    async kill() {
      child.kill('SIGKILL');
      await exited(child);
    },
    async resume() {
      child = launch();
      await answering();
    },
    stop,
  };
}
