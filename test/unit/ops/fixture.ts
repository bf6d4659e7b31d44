import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { expect } from 'vitest';
import { RegctlError } from '../../../src/common/errors.js';
import { createOutput } from '../../../src/cli/output.js';
import type { Output } from '../../../src/common/io.js';
import { freePort } from '../../helpers/ports.js';

export interface StackFixture {
  dir: string;
  pkg: string;
  ports: { http: number; https: number; registry: number };
  writeConfig(extra?: string): Promise<void>;
  cleanup(): Promise<void>;
}

/** A stack directory (regctl.yaml, traefik config, auth/, .env) and a small built package to use as build context. */
export async function stackFixture(name = 'fx'): Promise<StackFixture> {
  const root = await mkdtemp(join(tmpdir(), 'regctl-ops-'));
  const dir = join(root, 'stack');
  const pkg = join(root, 'pkg');
  const ports = { http: await freePort(), https: await freePort(), registry: await freePort() };
  await mkdir(join(dir, 'traefik'), { recursive: true });
  await mkdir(join(dir, 'auth'), { recursive: true });
  await writeFile(join(dir, 'traefik/traefik.yml'), 'entryPoints: { web: { address: ":80" } }\n');
  await writeFile(
    join(dir, 'traefik/traefik.prod.yml'),
    'entryPoints: { web: { address: ":80" }, websecure: { address: ":443" } }\n',
  );
  await writeFile(join(dir, 'traefik/tls.yml'), 'tls: {}\n');
  await writeFile(join(dir, 'auth/htpasswd'), 'admin:$2y$05$abcdefghijklmnopqrstuuJ8K0c1h1k4x2c3v4b5n6m7q8w9e0r1t2\n', {
    mode: 0o600,
  });
  await writeFile(join(dir, '.env'), 'COMPOSE_PROJECT_NAME=fx\nREGISTRY_USERNAME=admin\nREGISTRY_PASSWORD=s3cret\n', {
    mode: 0o600,
  });
  const writeConfig = async (extra = '') => {
    await writeFile(
      join(dir, 'regctl.yaml'),
      `version: 1\nname: ${name}\nhost: example.test\nports: { http: ${ports.http}, https: ${ports.https}, registry: ${ports.registry} }\n` +
        `images: { registry: "regctl:test", traefik: "regctl-test/traefik:v3.6", base: "regctl-test/node:20" }\n${extra}`,
    );
  };
  await writeConfig();
  await mkdir(join(pkg, 'dist/cli'), { recursive: true });
  await mkdir(join(pkg, 'bin'), { recursive: true });
  await mkdir(join(pkg, 'templates'), { recursive: true });
  await mkdir(join(pkg, 'src'), { recursive: true });
  await mkdir(join(pkg, 'node_modules/prod-dep'), { recursive: true });
  await mkdir(join(pkg, 'node_modules/dev-dep'), { recursive: true });
  await writeFile(join(pkg, 'package.json'), '{"name":"regctl-stack","version":"0.0.0-test"}\n');
  await writeFile(
    join(pkg, 'package-lock.json'),
    JSON.stringify({
      lockfileVersion: 3,
      packages: {
        '': {},
        'node_modules/prod-dep': { version: '1.0.0' },
        'node_modules/dev-dep': { version: '1.0.0', dev: true },
      },
    }),
  );
  await writeFile(join(pkg, 'dist/cli/main.js'), 'export const x = 1;\n');
  await writeFile(join(pkg, 'bin/regctl.js'), '#!/usr/bin/env node\n', { mode: 0o755 });
  await writeFile(join(pkg, 'templates/Dockerfile'), 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /opt/regctl/\n');
  await writeFile(join(pkg, 'src/main.ts'), 'source, not shipped\n');
  await writeFile(join(pkg, 'node_modules/prod-dep/index.js'), 'module.exports = 1;\n');
  await writeFile(join(pkg, 'node_modules/dev-dep/index.js'), 'module.exports = 2;\n');
  return { dir, pkg, ports, writeConfig, cleanup: () => rm(root, { recursive: true, force: true }) };
}

/** An Output whose stdout/stderr text tests can read. */
export function capturedOutput(): { out: Output; text: () => string } {
  let buf = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      buf += chunk.toString();
      cb();
    },
  });
  return { out: createOutput({ stdout: sink, stderr: sink }), text: () => buf };
}

/** The RegctlError a promise rejects with; fails the test when it resolves or rejects with something else. */
export async function rejection(p: Promise<unknown>): Promise<RegctlError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(RegctlError);
    return err as RegctlError;
  }
  throw new Error('expected a rejection');
}
