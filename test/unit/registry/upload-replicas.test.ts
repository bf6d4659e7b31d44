import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsDriver } from '../../../src/registry/storage/fs-driver.js';
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
