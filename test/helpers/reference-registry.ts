import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import bcrypt from 'bcryptjs';
import { stringify } from 'yaml';

import { freePort, requirePeer } from './peers.js';
import { stopChild } from '../../bench/lib/child.js';

/** A running reference registry: Debian's docker-registry (distribution 2.8.2), or distribution v3. */
export interface ReferenceRegistry {
  /** e.g. http://127.0.0.1:41234 */
  url: string;
  /** host:port, as docker/skopeo/crane name it. */
  host: string;
  /** Storage root (distribution's on-disk layout lives under docker/registry/v2). */
  dataDir: string;
  /** Credentials accepted by the registry (also in htpasswdPath). Empty when auth is off. */
  username: string;
  password: string;
  htpasswdPath: string;
  stop(): Promise<void>;
}

export interface ReferenceRegistryOptions {
  /** 'docker-registry' (Debian, 2.8.2; default) or 'registry-v3' (distribution v3, Go-built peer). */
  implementation?: 'docker-registry' | 'registry-v3';
  /** htpasswd auth on (default) or off. */
  auth?: boolean;
  /** Extra users besides the generated one: name → password. */
  users?: Record<string, string>;
  /**
   * Token auth instead of htpasswd: the registry sends clients to `realm` for a bearer token (a JWT signed by the
   * key of the certificate in `rootCertBundle`, carried in its `x5c` header).
   */
  tokenAuth?: { realm: string; service: string; issuer: string; rootCertBundle: string };
  /** Use this storage root instead of a fresh temporary one; it is then kept by stop(). */
  dataDir?: string;
  /**
   * Store in S3 instead (distribution's S3 driver, `registry-v3` only): path style, the given root directory; the
   * keys go in the environment (REGISTRY_STORAGE_S3_ACCESSKEY/SECRETKEY), never in the config file.
   */
  s3?: {
    endpoint: string;
    region: string;
    bucket: string;
    rootdirectory: string;
    accessKeyId: string;
    secretAccessKey: string;
  };
}

/** Starts a reference registry on a free loopback port with filesystem storage, delete enabled and htpasswd auth. */
export async function startReferenceRegistry(options: ReferenceRegistryOptions = {}): Promise<ReferenceRegistry> {
  const bin = requirePeer(options.implementation ?? 'docker-registry');
  const auth = options.auth ?? true;
  const dir = await mkdtemp(join(tmpdir(), 'regctl-refreg-'));
  const dataDir = options.dataDir ?? join(dir, 'data');
  await mkdir(dataDir, { recursive: true });
  const username = auth ? 'tester' : '';
  const password = auth ? randomBytes(12).toString('hex') : '';
  const htpasswdPath = join(dir, 'htpasswd');
  const users: Record<string, string> = auth ? { [username]: password, ...options.users } : {};
  // cost 5 keeps each authenticated request cheap; the registry accepts any bcrypt cost
  const lines = Object.entries(users).map(([name, pw]) => `${name}:${bcrypt.hashSync(pw, 5)}`);
  await writeFile(htpasswdPath, lines.join('\n') + '\n', { mode: 0o600 });

  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: {
      ...(options.s3
        ? {
            s3: {
              region: options.s3.region,
              regionendpoint: options.s3.endpoint,
              forcepathstyle: true,
              secure: options.s3.endpoint.startsWith('https:'),
              bucket: options.s3.bucket,
              rootdirectory: options.s3.rootdirectory,
            },
          }
        : { filesystem: { rootdirectory: dataDir } }),
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr: host, secret: randomBytes(16).toString('hex') },
  };
  if (auth && options.tokenAuth) {
    const t = options.tokenAuth;
    config.auth = { token: { realm: t.realm, service: t.service, issuer: t.issuer, rootcertbundle: t.rootCertBundle } };
  } else if (auth) config.auth = { htpasswd: { realm: 'reference-registry', path: htpasswdPath } };
  const configPath = join(dir, 'config.yml');
  await writeFile(configPath, stringify(config), { mode: 0o600 });

  const child = spawn(bin, ['serve', configPath], {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      OTEL_TRACES_EXPORTER: 'none',
      ...(options.s3
        ? {
            REGISTRY_STORAGE_S3_ACCESSKEY: options.s3.accessKeyId,
            REGISTRY_STORAGE_S3_SECRETKEY: options.s3.secretAccessKey,
          }
        : {}),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (c: Buffer): void => {
    output = (output + c.toString('utf8')).slice(-8_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  const stop = async (): Promise<void> => {
    await stopChild(child);
    // a caller's dataDir lies outside dir and is kept
    await rm(dir, { recursive: true, force: true });
  };

  const url = `http://${host}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`${bin} exited before answering (${child.exitCode ?? child.signalCode}):\n${output}`);
    }
    try {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status === (auth ? 401 : 200)) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${bin} did not answer ${url}/v2/ within 20 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, host, dataDir, username, password, htpasswdPath, stop };
}
