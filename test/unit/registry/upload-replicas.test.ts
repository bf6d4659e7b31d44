import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsDriver } from '../../../src/registry/storage/fs-driver.js';
import { MemoryDriver } from '../../../src/registry/storage/memory-driver.js';
import { describeUploadReplicas } from '../../helpers/upload-replicas.js';

describeUploadReplicas('filesystem', () => {
  let dir = '';
  return {
    make: async () => {
      dir = await mkdtemp(join(tmpdir(), 'regctl-replicas-'));
      return [new FsDriver(dir), new FsDriver(dir)];
    },
    assertNoOrphans: async () => undefined,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

// One driver instance shared by both stores: memory has no other way to share. Like S3, it keeps no directories,
// so a directory has no time of its own.
describeUploadReplicas('memory', () => ({
  make: () => {
    const shared = new MemoryDriver();
    return Promise.resolve([shared, shared]);
  },
  assertNoOrphans: () => Promise.resolve(),
  cleanup: () => Promise.resolve(),
}));
