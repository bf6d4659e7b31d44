/**
 * All terminal output goes through here: the only module that imports chalk. Commands receive an `Output`
 * so tests can capture what a person would read.
 */
import chalk, { Chalk } from 'chalk';
import type { Output } from '../common/io.js';

export interface OutputStreams {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export function createOutput(
  streams: OutputStreams = { stdout: process.stdout, stderr: process.stderr },
  opts: { quiet?: boolean } = {},
): Output {
  const isTTY = Boolean(streams.stdout.isTTY);
  const color = new Chalk({ level: isTTY && !process.env.NO_COLOR ? chalk.level || 1 : 0 });
  let progressShown = false;
  let lastProgressAt = 0;
  const clearProgress = () => {
    if (progressShown && isTTY) streams.stdout.write('\r\x1b[2K');
    progressShown = false;
  };
  const write = (s: string) => {
    clearProgress();
    if (!opts.quiet) streams.stdout.write(s + '\n');
  };
  return {
    color,
    isTTY,
    line: (text = '') => write(text),
    step: (text) => write(`${color.cyan('→')} ${text}`),
    ok: (text) => write(`${color.green('✓')} ${text}`),
    warn: (text) => {
      clearProgress();
      streams.stderr.write(`${color.yellow('!')} ${text}\n`);
    },
    error: (text) => {
      clearProgress();
      streams.stderr.write(`${color.red('✗')} ${text}\n`);
    },
    json: (value) => {
      clearProgress();
      streams.stdout.write(JSON.stringify(value, null, 2) + '\n');
    },
    progress: (text) => {
      if (opts.quiet) return;
      if (isTTY) {
        streams.stdout.write(`\r\x1b[2K${color.dim(text)}`);
        progressShown = true;
        return;
      }
      const now = Date.now();
      if (now - lastProgressAt >= 2000) {
        lastProgressAt = now;
        streams.stdout.write(`  ${text}\n`);
      }
    },
  };
}
