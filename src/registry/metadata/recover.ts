/**
 * Start-up recovery of writes a crash cut between storage and the metadata store. Each unfinished write left an
 * intent naming one key (a tag, or a revision by digest); only those keys are read again from storage, so
 * recovery costs what the crash left, not what the volume holds.
 *
 * - `tag-put` / `revision-put` (storage may or may not hold the new link): the metadata follows storage; a tag
 *   directory left without `current/link` is removed, as the walk of a memory index does at start-up.
 * - `tag-delete` / `revision-delete` (the metadata row may be gone, the storage files not yet): when the row is gone,
 *   the delete is finished in storage, so neither a later rebuild nor another registry reading the layout brings
 *   it back. When the row is still there, the delete died before its first step, or a write of the same tag or
 *   revision (on another replica, after the delete's process died) has put it back: storage then agrees with the
 *   metadata, and the intent is only ended. Finishing it would remove what that later write acknowledged.
 */
import { parseDigest, tryParseDigest } from '../reference.js';
import { pathExists, readLink } from '../storage/links.js';
import { pathFor } from '../storage/paths.js';
import type { RegistryStore } from '../storage/store.js';
import { manifestFacts } from './facts.js';
import type { GoneOwners } from './instances.js';
import { intentKey, type Intent } from './store.js';

/**
 * How old an intent must be before another process may finish it, in a store shared with live replicas: a write
 * takes milliseconds, so an intent this old belongs to a process that died (or hangs).
 */
export const SHARED_INTENT_AGE_MS = 60_000;

/**
 * Finishes pending intents; returns how many. A store no other process writes hands over all of them (this
 * process is the only one, and it has just started); a shared one those older than SHARED_INTENT_AGE_MS, those of
 * the processes `gone` names, and those created before `gone.before` (instances.ts: their writer is gone).
 */
export async function recoverIntents(store: RegistryStore, now = Date.now(), gone?: GoneOwners): Promise<number> {
  const intents = store.index.shared
    ? await store.index.pendingIntents(Math.max(now - SHARED_INTENT_AGE_MS, gone?.before ?? 0), gone?.deadOwners)
    : await store.index.pendingIntents();
  for (const intent of intents) {
    // Under the key a live write of the same tag or revision holds, so that one is not undone halfway through.
    await store.index.holdKeys([intentKey(intent)], async () => {
      await recoverOne(store, intent);
      await store.index.endIntent(intent.id);
    });
  }
  return intents.length;
}

async function recoverOne(store: RegistryStore, { kind, name, key }: Intent): Promise<void> {
  const { driver, index } = store;
  switch (kind) {
    case 'tag-put': {
      const target = await readLink(driver, pathFor({ kind: 'tagCurrentLink', name, tag: key }));
      if (target) {
        await index.setTag(name, key, target.value);
        return;
      }
      // Killed before `current/link`: what is left (the index link) is invisible through the API; remove it.
      await index.removeTag(name, key);
      if (!(await pathExists(driver, pathFor({ kind: 'tagCurrentLink', name, tag: key }))))
        await driver.delete(pathFor({ kind: 'tagDir', name, tag: key }));
      return;
    }
    case 'tag-delete':
      // Still in the metadata: the delete died before its first step (and was never answered), or a write since
      // set the tag again; either way storage agrees with it, and finishing the delete would undo that write.
      if ((await index.tagTarget(name, key)) !== undefined) return;
      await driver.delete(pathFor({ kind: 'tagDir', name, tag: key }));
      return;
    case 'revision-put': {
      const digest = tryParseDigest(key);
      if (!digest) return;
      const linked = await pathExists(driver, pathFor({ kind: 'revisionLink', name, digest }));
      const m = linked ? await store.manifests.read(digest) : undefined;
      if (m) await index.addManifest(name, digest.value, Date.now(), manifestFacts(m.info, m.body.length));
      else await index.removeRevision(name, digest.value);
      return;
    }
    case 'revision-delete': {
      const digest = parseDigest(key);
      // As for a tag: a revision still in the metadata was not deleted yet, or was written again since.
      if (await index.hasRevision(name, digest.value)) return;
      await store.manifests.removeFromStorage(name, digest);
      return;
    }
  }
}
