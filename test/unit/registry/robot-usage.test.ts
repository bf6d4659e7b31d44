/**
 * Robot last use (auth/robot-usage.ts) on a real SQLite metadata store, opened twice as two replicas sharing it
 * would: nothing is written before a flush, each replica's flush keeps the later of the stored and its own time,
 * and a closed usage tracker has written what it held.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RobotUsage } from '../../../src/registry/auth/robot-usage.js';
import { openMetadataStore } from '../../../src/registry/metadata/settings.js';
import type { MetadataStore } from '../../../src/registry/metadata/store.js';

let dir: string;
let stores: MetadataStore[] = [];

const open = async () => {
  const s = await openMetadataStore({ kind: 'sqlite', path: join(dir, 'metadata.sqlite') }, { dataDir: dir });
  stores.push(s);
  return s;
};

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'regctl-robot-usage-'));
});
afterEach(async () => {
  for (const s of stores) await s.close();
  stores = [];
  await rm(dir, { recursive: true, force: true });
});

describe('robot last use', () => {
  it('two replicas on one store end with the later use, whichever flushes last', async () => {
    const [a, b] = [new RobotUsage(), new RobotUsage()];
    a.start(await open(), 3_600_000);
    b.start(await open(), 3_600_000);
    const later = Date.parse('2026-12-06T10:00:00.000Z');
    a.record('ci', later);
    b.record('ci', later - 60_000);
    expect(await (await open()).getMeta('robot-last-use:ci')).toBeUndefined();
    await a.flush();
    await b.flush();
    expect(await new RobotUsage().lastUse('ci')).toBeUndefined();
    const reader = new RobotUsage();
    reader.start(await open(), 3_600_000);
    expect(await reader.lastUse('ci')).toBe('2026-12-06T10:00:00.000Z');
    b.record('ci', later + 1000);
    await b.close();
    expect(await reader.lastUse('ci')).toBe('2026-12-06T10:00:01.000Z');
    await a.close();
    await reader.close();
  });
});
