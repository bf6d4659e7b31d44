import { describe, expect, it } from 'vitest';
import { RegistryApp } from '../../../src/registry/app.js';
import { TEMP_MARKER } from '../../../src/registry/storage/driver.js';
import { MemoryDriver } from '../../../src/registry/storage/memory-driver.js';

/** A driver whose writes are atomic by themselves (as S3's are): it says it leaves no temporary files. */
class AtomicDriver extends MemoryDriver {
  readonly leavesTempFiles = false;
}

// a leftover of another (dead) process: the marker followed by a tag that is not this process's
const LEFTOVER = `docker/registry/v2/blobs/sha256/ab/data${TEMP_MARKER}000000dead`;

async function startWithLeftover(driver: MemoryDriver): Promise<boolean> {
  await driver.putContent(LEFTOVER, 'half');
  await new Promise((r) => setTimeout(r, 20));
  const app = new RegistryApp({ driver, auth: undefined, log: () => undefined });
  await app.init();
  app.close();
  // the sweep runs in the background after init
  for (let i = 0; i < 50; i++) {
    if (
      !(await driver.stat(LEFTOVER).then(
        () => true,
        () => false,
      ))
    )
      return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

describe('start-up sweep of leftover temporary files', () => {
  it('runs on drivers that may leave them', async () => {
    expect(await startWithLeftover(new MemoryDriver())).toBe(false);
  });

  it('is skipped on drivers whose writes leave none (no walk of a whole bucket at every start)', async () => {
    expect(await startWithLeftover(new AtomicDriver())).toBe(true);
  });
});
