/**
 * Bad input to the stack commands, through the built CLI as a user runs it: one line naming the problem,
 * a hint, a non-zero exit, and nothing half-created (no containers, networks or volumes; no files written).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { dockerAvailable, imageAvailable } from '../helpers/peers.js';
import {
  E2E_BASE_IMAGE,
  E2E_TRAEFIK_IMAGE,
  builtCliPresent,
  forceRemoveProject,
  initStack,
  projectResources,
  regctl,
  removePackageSnapshot,
  type E2eStack,
} from './helpers.js';

/** This file's own compose project, so that it never touches another test's stack. */
const PROJECT = 'e2ebad';
const IMAGE = `regctl-e2e/${PROJECT}:test`;
const ready = builtCliPresent();

/** The error line (✗ …) and the hint line a failing command prints on stderr. */
function errorLines(stderr: string): { error: string | undefined; hint: string | undefined } {
  const lines = stderr.split('\n');
  return {
    error: lines.find((l) => l.startsWith('✗ ')),
    hint: lines.filter((l) => l.trim().startsWith('hint:')).at(-1),
  };
}

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string) => {
    for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(p);
      else out[p] = `${(await stat(join(dir, p))).mtimeMs}:${await readFile(join(dir, p), 'utf8')}`;
    }
  };
  await walk('');
  return out;
}

describe.skipIf(!ready)('bad input to up, down, status and logs', () => {
  let stack: E2eStack;

  beforeAll(async () => {
    stack = await initStack(['--name', PROJECT], { registryImage: IMAGE });
  });

  afterAll(async () => {
    await forceRemoveProject(PROJECT, { image: IMAGE });
    await stack.cleanup();
    await removePackageSnapshot();
  });

  it.each([['up'], ['down'], ['status'], ['logs']])('%s with an unknown flag: usage error, exit 2', async (cmd) => {
    const res = await regctl([cmd, '--dir', stack.dir, '--bogus']);
    expect(res.exitCode).toBe(2);
    expect(res.stderr).toContain("error: unknown option '--bogus'");
    expect(res.stderr).toContain('--help');
    expect(res.stdout).toBe('');
  });

  it.each([['up'], ['down'], ['status'], ['logs']])(
    '%s with no Docker engine reachable: DOCKER_UNREACHABLE, exit 4',
    async (cmd) => {
      const res = await regctl([cmd, '--dir', stack.dir], { env: { DOCKER_HOST: 'unix:///nonexistent' } });
      expect(res.exitCode).toBe(4);
      const { error, hint } = errorLines(res.stderr);
      expect(error).toBe('✗ no Docker engine reachable at unix:///nonexistent (ENOENT)');
      expect(hint).toContain('start the Docker daemon');
    },
  );

  it('status in a directory without regctl.yaml: CONFIG_MISSING, exit 3, pointing at regctl init', async () => {
    const res = await regctl(['status', '--dir', join(stack.dir, 'auth')]);
    expect(res.exitCode).toBe(3);
    const { error, hint } = errorLines(res.stderr);
    expect(error).toBe(`✗ no regctl.yaml in ${join(stack.dir, 'auth')}`);
    expect(hint).toContain('regctl init');
  });

  describe.skipIf(!dockerAvailable())('with the engine running', () => {
    it('up with a broken regctl.yaml: the field and a hint, exit 3, nothing created or rewritten', async () => {
      const file = join(stack.dir, 'regctl.yaml');
      const original = await readFile(file, 'utf8');
      try {
        await writeFile(file, original.replace(/^ {2}http: \d+$/m, '  http: eighty'));
        const before = await snapshot(stack.dir);
        const res = await regctl(['up', '--dir', stack.dir]);
        expect(res.exitCode).toBe(3);
        const { error, hint } = errorLines(res.stderr);
        expect(error).toMatch(/^✗ .*regctl\.yaml: ports\.http: /);
        expect(hint).toContain('ports');
        expect(await snapshot(stack.dir)).toEqual(before);

        await writeFile(file, 'version: 1\nports: [unclosed\n');
        const yaml = await regctl(['up', '--dir', stack.dir]);
        expect(yaml.exitCode).toBe(3);
        expect(errorLines(yaml.stderr).error).toMatch(/regctl\.yaml:\d+:\d+: not valid YAML/);
        expect(await projectResources(PROJECT)).toEqual({ containers: [], networks: [], volumes: [] });
      } finally {
        await writeFile(file, original);
      }
    });

    it('up with the HTTP port taken: PORT_IN_USE naming the port and its holder, exit 5, nothing created', async () => {
      await forceRemoveProject(PROJECT);
      const holder: Server = createServer();
      await new Promise<void>((r) => holder.listen(stack.ports.http, '0.0.0.0', r));
      try {
        const res = await regctl(['up', '--dir', stack.dir]);
        expect(res.exitCode).toBe(5);
        const { error, hint } = errorLines(res.stderr);
        expect(error).toMatch(
          new RegExp(`^✗ check ports: port ${stack.ports.http} is already in use by process node \\(pid \\d+\\)$`),
        );
        expect(hint).toContain('ports.http');
        expect(await projectResources(PROJECT)).toEqual({ containers: [], networks: [], volumes: [] });
      } finally {
        await new Promise((r) => holder.close(r));
      }
    });

    it.skipIf(!imageAvailable(E2E_TRAEFIK_IMAGE) || !imageAvailable(E2E_BASE_IMAGE))(
      'up where the registry cannot start: names the step, shows its last log lines, removes what it created',
      async () => {
        await forceRemoveProject(PROJECT);
        const htpasswd = join(stack.dir, 'auth/htpasswd');
        const saved = await readFile(htpasswd, 'utf8');
        await rm(htpasswd);
        try {
          const res = await regctl(['up', '--dir', stack.dir, '--health-timeout', '60']);
          expect(res.exitCode, res.all).not.toBe(0);
          const { error, hint } = errorLines(res.stderr);
          expect(error).toMatch(
            new RegExp(`^✗ wait for health checks failed: ${PROJECT}-registry (exited|is unhealthy)`),
          );
          expect(res.stderr).toContain(`last log lines of ${PROJECT}-registry:`);
          expect(res.stderr).toContain('htpasswd');
          expect(hint).toContain('regctl logs registry');
          expect(res.stderr).toContain('removed what this run created');
          expect(await projectResources(PROJECT)).toEqual({ containers: [], networks: [], volumes: [] });
        } finally {
          await writeFile(htpasswd, saved, { mode: 0o600 });
          await forceRemoveProject(PROJECT);
        }
      },
    );

    it('logs of a service the stack does not have: NOT_FOUND listing the services', async () => {
      const res = await regctl(['logs', 'database', '--dir', stack.dir]);
      expect(res.exitCode).toBe(12);
      expect(errorLines(res.stderr).hint).toContain('services: traefik, registry, ui');
    });

    it('down --volumes without a terminal and without --yes refuses, exit 2', async () => {
      const res = await regctl(['down', '--dir', stack.dir, '--volumes']);
      expect(res.exitCode).toBe(2);
      expect(errorLines(res.stderr).hint).toContain('--yes');
    });
  });
});
