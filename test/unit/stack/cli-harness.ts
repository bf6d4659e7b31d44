import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { main } from '../../../src/cli/main.js';
import { createOutput } from '../../../src/cli/output.js';
import { createPrompts } from '../../../src/cli/prompts.js';
import type { Prompts } from '../../../src/common/io.js';
import { freePort } from '../../helpers/ports.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `regctl ARGS` in-process with captured output; no terminal unless scripted prompts are given. */
export async function runCli(
  args: string[],
  opts: { cwd: string; prompts?: Prompts; stdin?: string; env?: NodeJS.ProcessEnv },
): Promise<CliRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  // commander's own messages and main's hint lines go straight to the process streams: capture them too.
  const realOut = process.stdout.write.bind(process.stdout);
  const realErr = process.stderr.write.bind(process.stderr);
  process.stdout.write = (chunk: string | Uint8Array) => ((out += chunk.toString()), true);
  process.stderr.write = (chunk: string | Uint8Array) => ((err += chunk.toString()), true);
  try {
    const code = await main(['node', 'regctl', ...args], {
      out: createOutput({ stdout, stderr }),
      prompts: opts.prompts ?? createPrompts(false),
      cwd: opts.cwd,
      env: opts.env ?? { PATH: process.env.PATH },
      stdin: Readable.from(opts.stdin !== undefined ? [opts.stdin] : []),
    });
    return { code, stdout: out, stderr: err };
  } finally {
    process.stdout.write = realOut;
    process.stderr.write = realErr;
  }
}

export { freePort };

/**
 * `regctl init --dir <root>/stack --yes` on a free HTTP port, without the direct registry port, at bcrypt cost 4,
 * with more flags and environment; a new temporary `root` for each test (`fresh` in beforeEach, `cleanup` after).
 */
export function initInTemp(prefix: string) {
  let root = '';
  return {
    fresh: async () => void (root = await mkdtemp(join(tmpdir(), prefix))),
    cleanup: () => rm(root, { recursive: true, force: true }),
    dir: () => join(root, 'stack'),
    init: async (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> =>
      runCli(
        [
          'init',
          '--dir',
          join(root, 'stack'),
          '--yes',
          '--http-port',
          String(await freePort()),
          '--registry-port',
          '0',
          ...args,
        ],
        { cwd: root, env: { PATH: process.env.PATH, REGCTL_BCRYPT_COST: '4', ...env } },
      ),
  };
}
