/**
 * The registry processes alive on a shared store (replicas on PostgreSQL), so that the writes a dead one left half
 * done are finished at once instead of after SHARED_INTENT_AGE_MS.
 *
 * Each process holds the lease `instance:<id>` for its life (lease.ts: a session advisory lock, freed when the
 * process or its connection dies) and lists itself, with its start time, in the `meta` row `instances`. An intent
 * is stamped with its writer's clock when it begins, after its writer started (same clock), so an intent created
 * before every live process's start belongs to a dead one: `deadOwnerCutoff` is the earliest start among the live
 * processes other than this one. Clocks of different machines need not agree: a writer's intents are only ever
 * compared with its own start.
 */
import { randomUUID } from 'node:crypto';
import type { Lease } from './lease.js';
import type { MetadataStore } from './store.js';

const INSTANCES_KEY = 'instances';

export interface Instance {
  id: string;
  startedAt: number;
  lease: Lease;
}

type Listed = Record<string, number>;

function parse(text: string | undefined): Listed {
  if (text === undefined) return {};
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return {};
    return Object.fromEntries(Object.entries(v).filter(([, t]) => typeof t === 'number'));
  } catch {
    return {};
  }
}

/** Lists this process on the store and holds its lease until `release` (close). */
export async function registerInstance(index: MetadataStore): Promise<Instance> {
  const id = randomUUID();
  const startedAt = Date.now();
  const got = await index.tryLease(`instance:${id}`, String(startedAt));
  if (!('lease' in got)) throw new Error(`instance lease ${id} is held elsewhere`);
  await index.exclusive(INSTANCES_KEY, async () => {
    const listed = parse(await index.getMeta(INSTANCES_KEY));
    listed[id] = startedAt;
    await index.setMeta(INSTANCES_KEY, JSON.stringify(listed));
  });
  return { id, startedAt, lease: got.lease };
}

/** The cutoff when no other process is alive: every intent. */
export const NO_OTHER_PROCESS = Number.MAX_SAFE_INTEGER;

/**
 * Intents created before the returned time belong to processes that are gone (NO_OTHER_PROCESS when no other
 * process is alive). Processes found dead are dropped from the list on the way.
 */
export async function deadOwnerCutoff(index: MetadataStore, self: string): Promise<number> {
  return index.exclusive(INSTANCES_KEY, async () => {
    const listed = parse(await index.getMeta(INSTANCES_KEY));
    let cutoff = NO_OTHER_PROCESS;
    let changed = false;
    for (const [id, startedAt] of Object.entries(listed)) {
      if (id === self) continue;
      const probe = await index.tryLease(`instance:${id}`, 'liveness probe');
      if ('lease' in probe) {
        // Nobody holds it: that process is gone.
        await probe.lease.release();
        delete listed[id];
        changed = true;
      } else cutoff = Math.min(cutoff, startedAt);
    }
    if (changed) await index.setMeta(INSTANCES_KEY, JSON.stringify(listed));
    return cutoff;
  });
}

/** Takes this process off the list and ends its lease (a clean close). */
export async function unregisterInstance(index: MetadataStore, instance: Instance): Promise<void> {
  await index.exclusive(INSTANCES_KEY, async () => {
    const listed = parse(await index.getMeta(INSTANCES_KEY));
    delete listed[instance.id];
    await index.setMeta(INSTANCES_KEY, JSON.stringify(listed));
  });
  await instance.lease.release();
}

/**
 * This process's place on its metadata store: listed while it runs when the store is shared (nothing otherwise), so
 * that a process starting after another died finishes the dead one's writes at once, not SHARED_INTENT_AGE_MS later.
 */
export class Membership {
  private constructor(
    private readonly index: MetadataStore,
    private instance: Instance | undefined,
  ) {}

  static async join(index: MetadataStore): Promise<Membership> {
    return new Membership(index, index.shared ? await registerInstance(index) : undefined);
  }

  /** recoverIntents' `ownersGoneBefore`; undefined when the store is not shared. */
  async ownersGoneBefore(): Promise<number | undefined> {
    return this.instance ? deadOwnerCutoff(this.index, this.instance.id) : undefined;
  }

  async leave(): Promise<void> {
    const instance = this.instance;
    this.instance = undefined;
    if (instance) await unregisterInstance(this.index, instance).catch(() => undefined);
  }
}
