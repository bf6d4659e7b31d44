/**
 * The registry processes alive on a shared store (replicas on PostgreSQL), so that the writes a dead one left half
 * done are finished at once instead of after SHARED_INTENT_AGE_MS.
 *
 * Each process holds the lease `instance:<id>` for its life (lease.ts: a session advisory lock, freed when the
 * process or its connection dies), lists itself, with its start time, in the `meta` row `instances`, and stamps
 * every intent it begins with its id (`intentOwner`). A listed process whose lease nobody holds is gone: its
 * intents are finished by the process that found it so (`deadOwners`), even while older processes live on.
 * Intents written without an owner (by an earlier version) fall back on time: one created before every live
 * process's start belongs to a dead one (`before`, the earliest start among the live processes other than this
 * one). Clocks of different machines need not agree: a writer's intents are only ever compared with its own start.
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

/** Whose unfinished writes this process may finish now (recover.ts). */
export interface GoneOwners {
  /** Intents created before this time belong to processes that are gone (NO_OTHER_PROCESS: no other is alive). */
  before: number;
  /** Processes found gone just now: their intents, whenever begun. */
  deadOwners: string[];
}

/** Probes every other listed process; those found gone are dropped from the list and returned. */
export async function goneOwners(index: MetadataStore, self: string): Promise<GoneOwners> {
  return index.exclusive(INSTANCES_KEY, async () => {
    const listed = parse(await index.getMeta(INSTANCES_KEY));
    let before = NO_OTHER_PROCESS;
    const deadOwners: string[] = [];
    for (const [id, startedAt] of Object.entries(listed)) {
      if (id === self) continue;
      const probe = await index.tryLease(`instance:${id}`, 'liveness probe');
      if ('lease' in probe) {
        // Nobody holds it: that process is gone.
        await probe.lease.release();
        delete listed[id];
        deadOwners.push(id);
      } else before = Math.min(before, startedAt);
    }
    if (deadOwners.length > 0) await index.setMeta(INSTANCES_KEY, JSON.stringify(listed));
    return { before, deadOwners };
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
    const instance = index.shared ? await registerInstance(index) : undefined;
    if (instance) index.intentOwner = instance.id;
    return new Membership(index, instance);
  }

  /** recoverIntents' `gone`; undefined when the store is not shared. */
  async goneOwners(): Promise<GoneOwners | undefined> {
    return this.instance ? goneOwners(this.index, this.instance.id) : undefined;
  }

  async leave(): Promise<void> {
    const instance = this.instance;
    this.instance = undefined;
    if (instance) await unregisterInstance(this.index, instance).catch(() => undefined);
  }
}
