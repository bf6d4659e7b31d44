import { execFile, spawnSync } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { which } from '../lib/machine.js';
import { percentile } from '../lib/stats.js';

const exec = promisify(execFile);

export interface CommandTiming {
  medianMs: number;
  meanMs: number;
  runs: number;
  tool: string;
}

/** Wall time of a short command: hyperfine when installed (no shell, warm-up runs), else a timed loop. */
export async function timeCommand(argv: string[], runs: number, workDir: string): Promise<CommandTiming> {
  const hyperfine = await which('hyperfine');
  const command = argv.map((a) => (/^[\w./:=-]+$/.test(a) ? a : `'${a}'`)).join(' ');
  if (hyperfine) {
    const out = join(workDir, 'hyperfine.json');
    await exec('hyperfine', ['-N', '--warmup', '2', '--runs', String(runs), '--export-json', out, command]);
    const parsed = JSON.parse(await readFile(out, 'utf8')) as { results: { mean: number; median: number }[] };
    await rm(out, { force: true });
    const r = parsed.results[0];
    if (!r) throw new Error('hyperfine wrote no result');
    return {
      medianMs: r.median * 1000,
      meanMs: r.mean * 1000,
      runs,
      tool: `hyperfine -N --warmup 2 --runs ${runs} "${command}"`,
    };
  }
  const samples: number[] = [];
  for (let i = 0; i < runs + 2; i++) {
    const t0 = performance.now();
    const res = spawnSync(argv[0] as string, argv.slice(1), { stdio: 'ignore' });
    if (res.status !== 0) throw new Error(`${command} exited with ${String(res.status)}`);
    if (i >= 2) samples.push(performance.now() - t0);
  }
  return {
    medianMs: percentile(samples, 50),
    meanMs: samples.reduce((a, b) => a + b, 0) / samples.length,
    runs,
    tool: `a loop of ${runs} timed runs after 2 warm-up runs`,
  };
}
