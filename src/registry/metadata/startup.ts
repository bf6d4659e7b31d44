/**
 * What start-up does with the metadata store before the server listens:
 *
 * 1. finish the writes a crash left half done (their intents; recover.ts), when the store describes this storage:
 *    the intents of a store that describes other storage (a file pointed at another bucket or directory) name
 *    writes to that other storage, and finishing them here would delete what this storage holds under those names;
 *    such a store is imported again, intents and all dropped;
 * 2. import storage when the store has not imported this storage yet: first start on an existing volume (a
 *    registry:2 or distribution layout with no metadata), an import cut short, or storage replaced under the
 *    store (a restore, another volume). Storage carries a marker with the id of the import that described it
 *    (`metadataMarker` in paths.ts); the store keeps the same id in `meta`. When both agree, start-up reads
 *    that one marker from storage and nothing else, however large the volume.
 *
 * The memory index has nothing to keep across starts: it is rebuilt from storage every time.
 */
import { randomUUID } from 'node:crypto';
import type { LogFn } from '../logger.js';
import { isNotFound } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';
import type { RegistryStore } from '../storage/store.js';
import { recoverIntents } from './recover.js';
import type { GoneOwners } from './instances.js';
import { IMPORT_STATE_KEY } from './store.js';

export const STORAGE_ID_KEY = 'storage_id';

export interface StartupReport {
  recovered: number;
  imported: boolean;
  /** Tag directories a killed write left without `current/link`, removed by a walk. */
  incompleteTags: number;
}

async function storageMarker(store: RegistryStore): Promise<string | undefined> {
  try {
    return (await store.driver.getContent(pathFor({ kind: 'metadataMarker' }))).toString('utf8').trim();
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Whether the store describes this storage (imported whole, and the storage is the one it imported). */
export async function metadataCurrent(store: RegistryStore): Promise<boolean> {
  const index = store.index;
  if (!index.persistent) return false;
  if ((await index.getMeta(IMPORT_STATE_KEY)) !== 'done') return false;
  const id = await index.getMeta(STORAGE_ID_KEY);
  return id !== undefined && id === (await storageMarker(store));
}

/**
 * Rebuilds the store from storage (first start, `regctl fsck --rebuild-metadata`), then marks both with a new
 * id. A rebuild cut short leaves `import_state` at `running`, so the next start imports again.
 */
export async function importStorage(
  store: RegistryStore,
  opts: { removeIncompleteTags?: boolean } = {},
): Promise<number> {
  const index = store.index;
  await index.setMeta(IMPORT_STATE_KEY, 'running');
  const removed = await store.buildIndex(opts);
  await index.setMeta(IMPORT_STATE_KEY, 'running');
  const id = randomUUID();
  await store.driver.putContent(pathFor({ kind: 'metadataMarker' }), `${id}\n`);
  await index.setMeta(STORAGE_ID_KEY, id);
  await index.setMeta(IMPORT_STATE_KEY, 'done');
  return removed;
}

/** `gone`: see recoverIntents (a shared store; instances.ts). */
export async function prepareMetadata(store: RegistryStore, log: LogFn, gone?: GoneOwners): Promise<StartupReport> {
  const index = store.index;
  if (!index.persistent) {
    const incompleteTags = await store.buildIndex({ removeIncompleteTags: true });
    return { recovered: 0, imported: false, incompleteTags };
  }
  const id = await index.getMeta(STORAGE_ID_KEY);
  const marker = await storageMarker(store);
  // A store that never finished an import has written nothing through intents, so its intents, if any, are of
  // no other storage; one whose id is not this storage's marker describes other storage.
  const foreign = id !== undefined && id !== marker;
  const recovered = foreign ? 0 : await recoverIntents(store, Date.now(), gone);
  if (recovered > 0) log('info', 'finished writes an earlier process left half done', { count: recovered });

  if (await metadataCurrent(store)) return { recovered, imported: false, incompleteTags: 0 };
  // Replicas starting together on a store that needs an import: one imports, the others wait and find it done.
  return index.exclusive('import', async () => {
    if (await metadataCurrent(store)) return { recovered, imported: false, incompleteTags: 0 };
    if (foreign) {
      const dropped = await index.pendingIntents();
      for (const intent of dropped) await index.endIntent(intent.id);
      log('warn', 'the metadata store describes other storage: importing this storage instead', {
        store: index.kind,
        unfinishedWritesDropped: dropped.length,
      });
    }
    log('info', 'importing storage into the metadata store', { store: index.kind });
    const started = Date.now();
    const incompleteTags = await importStorage(store, { removeIncompleteTags: true });
    log('info', 'imported storage into the metadata store', {
      store: index.kind,
      repositories: index.repositoryCount(),
      ms: Date.now() - started,
    });
    return { recovered, imported: true, incompleteTags };
  });
}
