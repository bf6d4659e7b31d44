/**
 * Sends the outbox's events (outbox.ts) to the endpoints of `events:`, at least once each, in the order written.
 *
 * Only the holder of the store's `events` lease sends (metadata/lease.ts), so replicas sharing a store never
 * send together; the others try to take it every few ticks, and one takes over when the holder dies. Each tick:
 * 1. fan out: each committed record of `incoming/` becomes one file per (event, endpoint that wants it) in
 *    `queue/<endpoint>/`, then the record goes. A crash between the two fans it out again: the same event ids
 *    arrive twice at worst, which receivers dedupe. Pending records are settled as outbox.ts says.
 * 2. deliver: per endpoint, the oldest queued events one by one until one fails; a failed endpoint waits
 *    `backoffMs(failures)` (doubling up to `BACKOFF_CAP_MS`, 30 s) and then retries that same event, so order holds.
 * Every attempt is appended to the endpoint's delivery log (the last `LOG_SIZE`), kept in storage so that every
 * replica answers `GET /admin/v1/events` alike.
 */
import { hostname } from 'node:os';
import { backoffMs, type DeliveryAttempt, type EventEndpoint } from '../../common/events.js';
import type { LogFn } from '../logger.js';
import type { Lease } from '../metadata/lease.js';
import type { PolicyHolder } from '../policy/holder.js';
import { parseDigest } from '../reference.js';
import { pathExists } from '../storage/links.js';
import { pathFor } from '../storage/paths.js';
import type { RegistryStore } from '../storage/store.js';
import { deliver } from './deliver.js';
import { EVENTS_ROOT, PENDING_GRACE_MS, type EventOutbox, type OutboxRecord, type RegistryEvent } from './outbox.js';

export const LOG_SIZE = 50;

interface EndpointState {
  failures: number;
  nextAt: number;
}

/** Whether an event is about a blob's link in a repository (a blob DELETE), not a manifest or tag. */
export function isBlobEvent(e: RegistryEvent): boolean {
  return e.target.url?.startsWith(`/v2/${e.target.repository}/blobs/`) ?? false;
}

/**
 * Whether what an event reports is what storage and the index now say (settles records a crash left pending):
 * a blob delete happened when the repository's link to the blob is gone; a manifest's or tag's change when the
 * index shows it.
 */
export async function effectVisible(store: RegistryStore, e: RegistryEvent): Promise<boolean> {
  const { repository, digest, tag } = e.target;
  if (digest === undefined) return false;
  if (isBlobEvent(e)) {
    if (e.action !== 'delete') return false;
    const parsed = parseDigest(digest);
    return !(await pathExists(store.driver, pathFor({ kind: 'layerLink', name: repository, digest: parsed })));
  }
  if (e.action === 'push' || e.action === 'tag-move') {
    if (tag !== undefined) return (await store.index.tagTarget(repository, tag)) === digest;
    return (await store.index.repository(repository))?.revisions.has(digest) ?? false;
  }
  if (e.action === 'delete' || e.action === 'retention' || e.action === 'gc') {
    if (tag !== undefined) return (await store.index.tagTarget(repository, tag)) !== digest;
    return !((await store.index.repository(repository))?.revisions.has(digest) ?? false);
  }
  return false;
}

export class EventSender {
  private timer: NodeJS.Timeout | undefined;
  private lease: Lease | undefined;
  private running: Promise<void> | undefined;
  private readonly state = new Map<string, EndpointState>();
  private stopped = false;
  private readonly startedAt = Date.now();

  constructor(
    private readonly store: RegistryStore,
    private readonly outbox: EventOutbox,
    private readonly config: PolicyHolder,
    private readonly log: LogFn,
    private readonly opts: { tickMs?: number; backoffBaseMs?: number; backoffCapMs?: number } = {},
  ) {}

  start(): void {
    const tick = (): void => {
      if (this.running || this.stopped) return;
      this.running = this.tick()
        .catch((err: Error) => this.log('error', 'event delivery tick failed', { error: err.message }))
        .finally(() => (this.running = undefined));
    };
    this.timer = setInterval(tick, this.opts.tickMs ?? 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
    await this.lease?.release();
    this.lease = undefined;
  }

  private idleChecked = false;

  private get endpoints(): EventEndpoint[] {
    return this.config.events.events.endpoints;
  }

  /** One round; public for tests. */
  async tick(): Promise<void> {
    // No endpoint: nothing new can be recorded (the outbox keeps only wanted events), so the outbox is looked at
    // once (records an earlier configuration left) and then not again until an endpoint is configured: no listing
    // of the storage (an S3 LIST) every tick for nothing.
    if (this.endpoints.length === 0) {
      if (this.idleChecked || (await this.outbox.list('incoming')).length === 0) return void (this.idleChecked = true);
    } else this.idleChecked = false;
    if (this.lease?.lost.aborted) this.lease = undefined;
    if (!this.lease) {
      const attempt = await this.store.index.tryLease('events', `event sender on ${hostname()} (pid ${process.pid})`);
      if ('heldBy' in attempt) return;
      this.lease = attempt.lease;
    }
    await this.fanOut();
    for (const e of this.endpoints) await this.drain(e);
  }

  private async fanOut(): Promise<void> {
    const d = this.outbox.driver;
    for (const name of await this.outbox.list('incoming')) {
      const path = `${EVENTS_ROOT}/incoming/${name}`;
      const record = JSON.parse((await d.getContent(path)).toString()) as OutboxRecord;
      let events = record.events;
      if (record.state === 'pending') {
        // A record from before this process started, on a store no other process writes, was left by a crash.
        const orphan = !this.store.index.shared && record.createdAt < this.startedAt;
        if (!orphan && Date.now() - record.createdAt < PENDING_GRACE_MS) continue;
        const visible = await Promise.all(events.map((e) => effectVisible(this.store, e)));
        events = events.filter((_, i) => visible[i]);
        this.log('warn', 'settled events a crash left pending', {
          kept: events.length,
          dropped: visible.length - events.length,
        });
      }
      const key = name.replace(/\.json$/, '');
      for (const [i, event] of events.entries())
        for (const e of this.endpoints)
          if (e.actions.has(event.action) && (!e.repos || e.repos.test(event.target.repository)))
            await d.putContent(
              `${EVENTS_ROOT}/queue/${e.name}/${key}-${String(i).padStart(4, '0')}.json`,
              JSON.stringify(event),
            );
      await d.delete(path);
    }
  }

  private async drain(endpoint: EventEndpoint): Promise<void> {
    const state = this.state.get(endpoint.name) ?? { failures: 0, nextAt: 0 };
    this.state.set(endpoint.name, state);
    if (Date.now() < state.nextAt) return;
    const d = this.outbox.driver;
    for (const name of await this.outbox.list(`queue/${endpoint.name}`)) {
      if (this.stopped || this.lease?.lost.aborted) return;
      const path = `${EVENTS_ROOT}/queue/${endpoint.name}/${name}`;
      const event = JSON.parse((await d.getContent(path)).toString()) as RegistryEvent;
      const attempt: DeliveryAttempt = {
        eventId: event.id,
        action: event.action,
        repository: event.target.repository,
        at: new Date().toISOString(),
        status: 0,
        ok: false,
      };
      try {
        attempt.status = await deliver(endpoint, this.config.events.secrets.get(endpoint.name), event);
        attempt.ok = attempt.status >= 200 && attempt.status < 300;
        if (!attempt.ok) attempt.error = `HTTP ${attempt.status}`;
      } catch (err) {
        attempt.error = (err as Error).message;
      }
      await this.appendLog(endpoint.name, attempt);
      if (!attempt.ok) {
        state.failures++;
        state.nextAt = Date.now() + backoffMs(state.failures, this.opts.backoffBaseMs, this.opts.backoffCapMs);
        this.log('warn', 'event delivery failed', {
          endpoint: endpoint.name,
          error: attempt.error,
          retryAt: state.nextAt,
        });
        return;
      }
      state.failures = 0;
      await d.delete(path);
    }
  }

  private async appendLog(endpoint: string, attempt: DeliveryAttempt): Promise<void> {
    const entries = await readDeliveryLog(this.outbox, endpoint);
    entries.push(attempt);
    await this.outbox.driver.putContent(
      `${EVENTS_ROOT}/log/${endpoint}.json`,
      JSON.stringify(entries.slice(-LOG_SIZE)),
    );
  }
}

export async function readDeliveryLog(outbox: EventOutbox, endpoint: string): Promise<DeliveryAttempt[]> {
  try {
    return JSON.parse(
      (await outbox.driver.getContent(`${EVENTS_ROOT}/log/${endpoint}.json`)).toString(),
    ) as DeliveryAttempt[];
  } catch {
    return [];
  }
}
