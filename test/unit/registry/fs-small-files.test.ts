/**
 * Small-file reads run on the event loop's thread (fs-small-files.ts): a long run of them must still let the event
 * loop turn, or one job reading thousands of links would hold every other request until it ends.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { FsDriver } from '../../../src/registry/storage/fs-driver.js';
import { INLINE_SLICE_MS } from '../../../src/registry/storage/fs-small-files.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'regctl-small-files-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

it('lets the event loop turn during a long run of small reads and stats', async () => {
  const d = new FsDriver(dir);
  for (let i = 0; i < 50; i++) await d.putContent(`links/${i}/link`, `sha256:${String(i).padStart(64, '0')}`);
  let turns = 0;
  let running = true;
  const tick = (): void => {
    turns++;
    if (running) setImmediate(tick);
  };
  // Let the first turn pass, so that only turns during the reads are counted.
  await new Promise((r) => setImmediate(r));
  setImmediate(tick);
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  let reads = 0;
  const runFor = INLINE_SLICE_MS * 8;
  while (performance.now() - start < runFor) {
    const i = reads++ % 50;
    expect((await d.getContent(`links/${i}/link`)).toString()).toMatch(/^sha256:/);
    expect((await d.stat(`links/${i}/link`)).size).toBe(71);
  }
  running = false;
  const cpu = process.cpuUsage(cpuStart);
  // Time the process ran: on a loaded machine the wall clock also counts time it waited for a core, in which no
  // turn can happen.
  const elapsed = Math.min(performance.now() - start, (cpu.user + cpu.system) / 1000);
  // One turn at least every slice (the reads ran for about eight).
  expect(turns).toBeGreaterThanOrEqual(Math.floor(elapsed / INLINE_SLICE_MS / 2));
  expect(turns).toBeGreaterThanOrEqual(3);
});
