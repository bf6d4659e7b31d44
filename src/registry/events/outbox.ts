/**
 * The durable outbox of registry events, kept in the registry's storage (beside `docker/registry/v2`, where
 * distribution never looks), so every replica sharing the storage shares it and a restart finds it.
 *
 * How a kill -9 loses no event: a write that causes events goes through `withEvents`, which records them as
 * `pending` BEFORE the write, marks them `committed` right after it, and drops them if the write fails. A record
 * left `pending` by a crash is settled by the sender once it is older than `PENDING_GRACE_MS` (no write takes that
 * long), or at once when it predates the sender's process on a store only one process uses: each event's effect is checked against the repository index (`verify`), and the events whose effect is
 * there are delivered, the others dropped. Either way the client was never told of a success that has no event.
 *
 * Layout under `docker/registry/regctl/events/`:
 *   incoming/<key>.json            records as written: { state, createdAt, events }
 *   queue/<endpoint>/<key>-<n>.json one event waiting for one endpoint (the sender fans records out here)
 *   log/<endpoint>.json            the last delivery attempts of that endpoint
 * Keys start with the time in milliseconds, zero-padded, so a listing sorted by name is in the order written.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { EventAction } from '../../common/events.js';
import { isNotFound, TEMP_MARKER, type StorageDriver } from '../storage/driver.js';

export const EVENTS_ROOT = 'docker/registry/regctl/events';
export const PENDING_GRACE_MS = 30_000;

/** An event as distribution's notifications carry it (docs/notifications), with our extra actions. */
export interface RegistryEvent {
  id: string;
  timestamp: string;
  action: EventAction;
  target: {
    mediaType?: string;
    size?: number;
    length?: number;
    digest?: string;
    repository: string;
    url?: string;
    tag?: string;
    /** tag-move: where the tag pointed before. */
    previousDigest?: string;
  };
  request?: { id?: string; addr?: string; host?: string; method?: string; useragent?: string };
  actor?: { name?: string };
  source: { addr: string; instanceID: string };
}

/** What a caller says happened; the outbox adds the id, the time and the source. */
export type EventInput = Pick<RegistryEvent, 'action' | 'request' | 'actor'> & { target: RegistryEvent['target'] };

export interface OutboxRecord {
  state: 'pending' | 'committed';
  createdAt: number;
  events: RegistryEvent[];
}

const INSTANCE_ID = randomUUID();

export function newKey(now = Date.now()): string {
  return `${String(now).padStart(15, '0')}-${randomBytes(6).toString('hex')}`;
}

export class EventOutbox {
  constructor(
    readonly driver: StorageDriver,
    /** Whether an event would go anywhere (an endpoint wants its action and repository): others are not kept. */
    private readonly wanted: (e: EventInput) => boolean,
    /** Whether any endpoint is configured: without one, writes build no events at all (they would go nowhere). */
    private readonly anyEndpoint: () => boolean = () => true,
    private readonly source = { addr: hostname(), instanceID: INSTANCE_ID },
  ) {}

  get active(): boolean {
    return this.anyEndpoint();
  }

  private complete(inputs: readonly EventInput[]): RegistryEvent[] {
    const timestamp = new Date().toISOString();
    return inputs.filter(this.wanted).map((e) => ({ id: randomUUID(), timestamp, ...e, source: this.source }));
  }

  /** Records events of a change already made (GC and retention report what they removed). */
  async record(inputs: readonly EventInput[]): Promise<void> {
    const events = this.complete(inputs);
    if (events.length === 0) return;
    const record: OutboxRecord = { state: 'committed', createdAt: Date.now(), events };
    await this.driver.putContent(`${EVENTS_ROOT}/incoming/${newKey()}.json`, JSON.stringify(record));
  }

  /**
   * Runs `write` with its events recorded durably around it (see the file comment): pending before, committed
   * after, removed when `write` throws.
   */
  async withEvents<T>(inputs: readonly EventInput[], write: () => Promise<T>): Promise<T> {
    const events = this.complete(inputs);
    if (events.length === 0) return write();
    const path = `${EVENTS_ROOT}/incoming/${newKey()}.json`;
    const record: OutboxRecord = { state: 'pending', createdAt: Date.now(), events };
    await this.driver.putContent(path, JSON.stringify(record));
    let result: T;
    try {
      result = await write();
    } catch (err) {
      await this.driver.delete(path).catch(() => undefined);
      throw err;
    }
    await this.driver.putContent(path, JSON.stringify({ ...record, state: 'committed' }));
    return result;
  }

  /**
   * The records (or queued events) under a directory of the outbox, sorted (empty when it does not exist). A write
   * in progress has a temporary file beside its record (`.<key>.json.tmp-…`, see the drivers): it is no record, and
   * taking it for one would send its events a second time under another key.
   */
  async list(dir: string): Promise<string[]> {
    try {
      return (await this.driver.list(`${EVENTS_ROOT}/${dir}`))
        .map((e) => e.name)
        .filter((n) => n.endsWith('.json') && !n.startsWith('.') && !n.includes(TEMP_MARKER))
        .sort();
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
  }
}
