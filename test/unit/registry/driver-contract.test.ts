import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { FsDriver } from '../../../src/registry/storage/fs-driver.js';
import { MemoryDriver } from '../../../src/registry/storage/memory-driver.js';
import { describeDriverContract } from '../../helpers/driver-contract.js';
import { describePutVerified } from '../../helpers/driver-put-verified.js';

describeDriverContract(
  'filesystem',
  () => {
    let dir = '';
    return {
      make: async () => {
        dir = await mkdtemp(join(tmpdir(), 'regctl-driver-'));
        return new FsDriver(dir);
      },
      sibling: async () => new FsDriver(dir),
      assertEmpty: async () => expect(await readdir(dir)).toEqual([]),
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  },
  undefined,
  false,
);

const memoryHarness = () => {
  let driver: MemoryDriver | undefined;
  return {
    make: async () => (driver = new MemoryDriver()),
    // one process's memory: the sibling is the same store
    sibling: async () => driver as MemoryDriver,
    assertEmpty: async () => expect(await (driver as MemoryDriver).list('').catch(() => [])).toEqual([]),
    cleanup: async () => undefined,
  };
};

describeDriverContract('memory', memoryHarness);
describePutVerified('memory', memoryHarness);
