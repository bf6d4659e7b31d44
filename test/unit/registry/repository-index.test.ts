import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { openSqliteStore } from '../../../src/registry/metadata/sqlite-store.js';
import { MemoryIndex } from '../../../src/registry/storage/memory-index.js';
import { metadataContract } from '../../helpers/metadata-contract.js';
import { quotaUsageContract } from '../../helpers/metadata-quota-contract.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

metadataContract('memory', async () => new MemoryIndex());
quotaUsageContract('memory', async () => new MemoryIndex());
quotaUsageContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'regctl-meta-'));
  dirs.push(dir);
  return openSqliteStore(join(dir, 'metadata.sqlite'));
});
metadataContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'regctl-meta-'));
  dirs.push(dir);
  return openSqliteStore(join(dir, 'metadata.sqlite'));
});
