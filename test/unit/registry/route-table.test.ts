import { describe, expect, it } from 'vitest';
import { MaintenanceLock } from '../../../src/registry/admin/maintenance-lock.js';
import { ROUTES } from '../../../src/registry/http/routes.js';

const methods = () =>
  ROUTES.flatMap((r) => Object.entries(r.methods).map(([verb, m]) => ({ route: r.name, verb, m: m! })));

describe('route table', () => {
  it('every write meets the fence, and only manifest and blob-link changes are counted for a backup', () => {
    for (const { route, verb, m } of methods()) {
      const write = m.action === 'push' || m.action === 'delete';
      expect(m.fence !== undefined, `${verb} ${route}`).toBe(write);
    }
    const counted = methods()
      .filter(({ m }) => m.fence === 'counted')
      .map(({ route, verb }) => `${verb} ${route}`);
    expect(counted.sort()).toEqual(['DELETE blob', 'DELETE manifest', 'PUT manifest']);
  });

  it('free space is needed by pushes but not by an upload cancel; only the upload start mounts', () => {
    const free = methods()
      .filter(({ m }) => m.needsFreeSpace)
      .map(({ route, verb }) => `${verb} ${route}`);
    expect(free.sort()).toEqual(['GET upload', 'PATCH upload', 'POST uploads', 'PUT manifest', 'PUT upload']);
    expect(
      methods()
        .filter(({ m }) => m.mountsFrom)
        .map(({ route, verb }) => `${verb} ${route}`),
    ).toEqual(['POST uploads']);
  });
});

describe('maintenance lock', () => {
  it('has one holder at a time and frees on release, once', () => {
    const lock = new MaintenanceLock();
    const releaseBackup = lock.tryAcquire('backup');
    expect(releaseBackup).toBeTypeOf('function');
    expect(lock.holder).toBe('backup');
    expect(lock.tryAcquire('gc-sweep')).toBeUndefined();
    expect(lock.tryAcquire('backup')).toBeUndefined();
    releaseBackup!();
    expect(lock.holder).toBeUndefined();
    const releaseGc = lock.tryAcquire('gc-sweep');
    expect(lock.holder).toBe('gc-sweep');
    releaseBackup!();
    expect(lock.holder).toBe('gc-sweep');
    releaseGc!();
    expect(lock.holder).toBeUndefined();
  });
});
