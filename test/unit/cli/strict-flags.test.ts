/**
 * Bad numbers on the command line are refused before anything runs: exit 2, one line naming the flag and the fix,
 * and no file written.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { adoptCommand } from '../../../src/cli/commands/adopt.js';
import { upCommand } from '../../../src/cli/commands/up.js';
import type { CliContext } from '../../../src/cli/context.js';
import { scriptedPrompts } from '../../../src/cli/prompts.js';
import { FakeEngine } from '../../../src/docker/fake-engine.js';
import { capturedOutput } from '../ops/fixture.js';
import { runCli } from '../stack/cli-harness.js';

let root: string;
let engine: FakeEngine;

function context(): CliContext {
  return {
    out: capturedOutput().out,
    prompts: scriptedPrompts([]),
    cwd: root,
    env: { REGCTL_BCRYPT_COST: '4' },
    stdin: Readable.from([]),
  };
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'regctl-flags-'));
  engine = new FakeEngine();
});

afterEach(() => rm(root, { recursive: true, force: true }));

/** A hand-made registry:2 stack: .env with credentials, a compose file naming the data volume, the volume itself. */
async function seedStack(): Promise<string> {
  const seed = join(root, 'seed');
  await mkdir(seed);
  await writeFile(
    join(seed, '.env'),
    'COMPOSE_PROJECT_NAME=seed\nREGISTRY_USERNAME=admin\nREGISTRY_PASSWORD=Seed-password-1\n',
  );
  await writeFile(
    join(seed, 'docker-compose.yml'),
    stringify({
      services: { registry: { image: 'registry:2', volumes: ['registry_data:/var/lib/registry'] } },
      volumes: { registry_data: null },
    }),
  );
  engine.volumes.set('seed_registry_data', { labels: {}, size: 0 });
  return seed;
}

describe('regctl up --health-timeout', () => {
  it('a value that is not a whole number of seconds exits 2 with one line, before anything is written', async () => {
    const r = await runCli(['up', '--health-timeout', 'abc'], { cwd: root });
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(
      "error: option '--health-timeout <seconds>' argument 'abc' is invalid. --health-timeout must be a whole number of seconds from 1 up, for example --health-timeout 10",
    );
    expect(await readdir(root)).toEqual([]);
  });

  it('is refused by the command itself, not replaced by the 180 s default', async () => {
    await expect(
      upCommand(context(), () => engine)
        .exitOverride()
        .parseAsync(['--dir', root, '--health-timeout', 'abc'], { from: 'user' }),
    ).rejects.toMatchObject({
      code: 'commander.invalidArgument',
    });
    expect(await readdir(root)).toEqual([]);
    expect(engine.containers.size).toBe(0);
  });
});

describe('regctl adopt', () => {
  it('--http-port abc exits 2 with one line and writes nothing', async () => {
    const seed = await seedStack();
    const target = join(root, 'adopted');
    const r = await runCli(['adopt', '--from', seed, '--dir', target, '--http-port', 'abc'], { cwd: root });
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toContain('--http-port must be a port number from 1 to 65535');
    expect(await readdir(root)).toEqual(['seed']);
  });

  it('a bad port is refused before the old stack is even inspected, and the target directory is not created', async () => {
    const seed = await seedStack();
    const target = join(root, 'adopted');
    await expect(
      adoptCommand(context(), () => engine)
        .exitOverride()
        .parseAsync(['--from', seed, '--dir', target, '--http-port', 'abc'], { from: 'user' }),
    ).rejects.toMatchObject({ code: 'commander.invalidArgument' });
    expect(await readdir(root)).toEqual(['seed']);
  });

  it('a config the schema refuses (the same port twice) is reported before any file is written', async () => {
    const seed = await seedStack();
    const target = join(root, 'adopted');
    await expect(
      adoptCommand(context(), () => engine)
        .exitOverride()
        .parseAsync(['--from', seed, '--dir', target, '--http-port', '8080', '--registry-port', '8080'], {
          from: 'user',
        }),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('--registry-port') });
    expect(await readdir(root)).toEqual(['seed']);
  });

  it('credentials .env cannot hold are refused before any file is written', async () => {
    const seed = await seedStack();
    await writeFile(
      join(seed, '.env'),
      'COMPOSE_PROJECT_NAME=seed\nREGISTRY_USERNAME=admin\nREGISTRY_PASSWORD=has$dollar\n',
    );
    const target = join(root, 'adopted');
    await expect(
      adoptCommand(context(), () => engine)
        .exitOverride()
        .parseAsync(['--from', seed, '--dir', target], { from: 'user' }),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('cannot be carried over') });
    expect(await readdir(root)).toEqual(['seed']);
  });
});
