/**
 * Crash consistency (long): the harness of test/integration/reliability with CRASH_KILLS (default 1,000)
 * SIGKILLs. Figures go to docs/reliability.md. Replay with CRASH_SEED=<seed>.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { crashMarkdown, runCrashHarness } from '../integration/reliability/helpers/crash-harness.js';
import { seedFromEnv } from '../integration/reliability/helpers/rng.js';
import { writeReportSection } from './report.js';

const KILLS = Number(process.env.CRASH_KILLS ?? 1000);
const seed = seedFromEnv('CRASH_SEED');
/** Live images (and standalone blobs) kept at most, so the volume, and each offline fsck, stays bounded. */
const MAX_LIVE = Number(process.env.CRASH_MAX_LIVE ?? 150);
let dir: string | undefined;

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

it(
  `crash consistency: ${KILLS} SIGKILLs of regctl serve under concurrent writes`,
  { timeout: KILLS * 30_000 + 600_000 },
  async () => {
    dir = await mkdtemp(join(tmpdir(), 'regctl-crash-long-'));
    console.log(`crash harness seed ${seed} (replay with CRASH_SEED=${seed}), ${KILLS} kills, data in ${dir}`);
    const report = await runCrashHarness({
      dir,
      kills: KILLS,
      seed,
      maxLive: MAX_LIVE,
      progress: (l) => console.log(l),
    });
    const md = crashMarkdown(report);
    console.log(md);
    await writeReportSection(KILLS >= 1000 ? 'crash-long' : 'crash-partial', md);
    expect(report.violations).toEqual([]);
  },
);
