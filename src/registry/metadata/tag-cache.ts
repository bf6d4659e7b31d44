/**
 * Tag lookups answered from memory by replicas that share PostgreSQL, without ever answering one that another
 * replica has changed before the client who changed it got its answer.
 *
 * Every process with the store listens on one channel (LISTEN/NOTIFY; PostgreSQL delivers notifications in the
 * order their transactions committed). Four messages travel on it:
 *
 * - `h ID N`, a beat: every process sends one every `beatMs`. Receiving its own beat N back proves that every
 *   message committed before the beat was sent has been handled, so the cache may answer for `validMs` counted
 *   from the beat's sending, on this process's monotonic clock. A process also learns the others from beats.
 * - `i ID SEQ NAME`, an invalidation: sent inside the transaction that changes a repository's tags or manifests,
 *   so it is delivered only if, and once, the change is committed. A receiver drops the repository's entries.
 *   The database's own triggers send one too (`i - 0 NAME`, TAG_CACHE_TRIGGERS_SQL) for any writer.
 * - `a FROM TO SEQ`, an acknowledgement sent back to the writer of invalidation SEQ once it is handled.
 * - `b ID`, a goodbye: a process closing its store, which its peers stop waiting for.
 *
 * A writer answers its client only after every peer heard from in the last `PEER_WINDOW` validity periods has
 * acknowledged, or `validMs` after its commit: a peer that has not acknowledged by then had last handled a beat
 * of its own sent before the commit, so its cache stopped answering by then. A writer that is not current
 * itself (it may not know all peers) always waits `validMs`. A process answers from its cache only once it has
 * been current for `joinMs`, long enough for the current peers to have heard its beats. A read whose query was
 * sent before an invalidation of its repository arrived is returned but not kept, and losing the listening
 * connection empties the cache until a new beat comes back. Only found tags are kept: a write that only adds
 * can never make a kept answer wrong, so pushing new manifests without tags sends nothing.
 */
import { randomUUID } from 'node:crypto';
import type { SqlConn } from './sql.js';

export const TAG_CACHE_CHANNEL = 'regctl_tag_cache';
/** An invalidation of every repository (no repository name has a `*`). */
export const EVERY_REPOSITORY = '*';

/**
 * Invalidations sent by the database itself, in the transaction of any write to tags (added, moved, removed) or any
 * removal of a manifest, whoever makes it: a process of an earlier version without the cache (during a rolling
 * update), a restore, SQL typed by hand. They carry no writer, so no one waits for them, but no cache keeps what
 * they changed once they arrive. Statement-level triggers with transition tables: one notification per repository
 * per statement, however many rows (PostgreSQL also folds identical notifications of one transaction into one).
 * Run by every start under the migration lock: the function is replaced (that locks no table), and a trigger is
 * created only where it is missing, since creating one locks its table against writes for a moment.
 */
export const TAG_CACHE_TRIGGERS_SQL = `
CREATE OR REPLACE FUNCTION regctl_tag_cache_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('${TAG_CACHE_CHANNEL}', 'i - 0 ' || coalesce(r.name, '${EVERY_REPOSITORY}'))
    FROM (SELECT DISTINCT repository_id FROM changed_rows) c LEFT JOIN repositories r ON r.id = c.repository_id;
  RETURN NULL;
END $$;
DO $$
DECLARE
  t RECORD;
BEGIN
  FOR t IN SELECT * FROM (VALUES
    ('regctl_tag_cache_tags_insert', 'tags', 'INSERT', 'NEW'),
    ('regctl_tag_cache_tags_update', 'tags', 'UPDATE', 'NEW'),
    ('regctl_tag_cache_tags_delete', 'tags', 'DELETE', 'OLD'),
    ('regctl_tag_cache_manifests_delete', 'manifests', 'DELETE', 'OLD')) v(name, tbl, op, rows)
  LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = t.name AND tgrelid = t.tbl::regclass) THEN
      EXECUTE format('CREATE TRIGGER %I AFTER %s ON %I REFERENCING %s TABLE AS changed_rows '
        'FOR EACH STATEMENT EXECUTE FUNCTION regctl_tag_cache_notify()', t.name, t.op, t.tbl, t.rows);
    END IF;
  END LOOP;
END $$;
`;

/** The listening connection, as the PostgreSQL database provides it. */
export interface CacheChannel {
  /** Sends a message now (outside any transaction). */
  notify(payload: string): Promise<void>;
  close(): Promise<void>;
}

export interface TagCacheOptions {
  /** Opens the listening connection; `onEnd` is called once when it fails or ends. */
  listen(onMessage: (payload: string) => void, onEnd: () => void): Promise<CacheChannel>;
  validMs?: number;
  beatMs?: number;
  joinMs?: number;
  /** Entries kept before the cache starts over (about 250 bytes each in V8: the default holds it near 5 MiB). */
  maxEntries?: number;
}

/** The writer of the invalidations the database's triggers send. */
const FROM_DATABASE = '-';
/** Peers are those heard from within this many validity periods. */
const PEER_WINDOW = 3;
const RECONNECT_MS = 1000;
const MAX_BEATS_OUT = 64;

interface Pending {
  /** Whether the write asked its peers to acknowledge (it had peers when it began). */
  asked: boolean;
  acked: Set<string>;
  done?: () => void;
  waitingFor?: Set<string>;
}

export class TagCache {
  readonly id = randomUUID();
  /** Lookups answered from memory, and sent to the database: for tests and figures. */
  hits = 0;
  misses = 0;
  private readonly validMs: number;
  private readonly beatMs: number;
  private readonly joinMs: number;
  private readonly maxEntries: number;
  private readonly entries = new Map<string, Map<string, string>>();
  private size = 0;
  /** Per repository, bumped by each invalidation: a read that saw it change keeps nothing. */
  private readonly gens = new Map<string, number>();
  /** Bumped when the cache starts over (connection lost, too many entries). */
  private epoch = 0;
  private channel: CacheChannel | undefined;
  private readonly beats = new Map<number, number>();
  private beat = 0;
  private currentUntil = -Infinity;
  private currentSince: number | undefined;
  private readonly peers = new Map<string, number>();
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly opts: TagCacheOptions) {
    this.validMs = opts.validMs ?? 1000;
    this.beatMs = opts.beatMs ?? 250;
    this.joinMs = opts.joinMs ?? 2000;
    this.maxEntries = opts.maxEntries ?? 20_000;
  }

  /** Starts listening and beating; a failure to connect is retried in the background. */
  async start(): Promise<this> {
    await this.connect();
    this.tick();
    this.timer = setInterval(() => this.tick(), this.beatMs);
    this.timer.unref();
    return this;
  }

  /** True while the cache may answer. */
  usable(now = performance.now()): boolean {
    return (
      this.channel !== undefined &&
      now < this.currentUntil &&
      this.currentSince !== undefined &&
      now - this.currentSince >= this.joinMs
    );
  }

  /** The digest `name:tag` points at, from memory when allowed, else from `query`. */
  async read(name: string, tag: string, query: () => Promise<string | undefined>): Promise<string | undefined> {
    if (this.usable()) {
      const hit = this.entries.get(name)?.get(tag);
      if (hit !== undefined) {
        this.hits++;
        return hit;
      }
    }
    this.misses++;
    const gen = this.gens.get(name) ?? 0;
    const epoch = this.epoch;
    const digest = await query();
    if (digest !== undefined && this.usable() && epoch === this.epoch && gen === (this.gens.get(name) ?? 0))
      this.keep(name, tag, digest);
    return digest;
  }

  /**
   * Runs `write` (a transaction, given a way to announce the change inside it) and returns once no peer can
   * answer from what it changed: see the module comment.
   */
  async change<T>(names: readonly string[], write: (announce: (c: SqlConn) => Promise<void>) => Promise<T>) {
    const seq = ++this.seq;
    // With no peer, the database's triggers invalidate and there is nobody to wait for: no message of our own.
    const p: Pending = { acked: new Set(), asked: this.livePeers().size > 0 };
    this.pending.set(seq, p);
    try {
      let out: T;
      try {
        out = await write(async (c) => {
          if (!p.asked) return;
          for (const name of names)
            await c.run('SELECT pg_notify(?, ?)', [TAG_CACHE_CHANNEL, `i ${this.id} ${seq} ${name}`]);
        });
      } finally {
        // Committed or not (a lost COMMIT answer may hide a commit): this process keeps nothing it had.
        for (const name of names) this.invalidate(name);
      }
      await this.settle(p);
      return out;
    } finally {
      this.pending.delete(seq);
    }
  }

  /** Stops, telling the peers not to wait for this process any more. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    const channel = this.channel;
    this.channel = undefined;
    await channel?.notify(`b ${this.id}`).catch(() => undefined);
    await channel?.close().catch(() => undefined);
  }

  /** Peers heard from within PEER_WINDOW validity periods (older ones are forgotten). */
  private livePeers(now = performance.now()): Map<string, number> {
    for (const [peer, heard] of this.peers) if (now - heard > PEER_WINDOW * this.validMs) this.peers.delete(peer);
    return this.peers;
  }

  private settle(p: Pending): Promise<void> {
    const now = performance.now();
    const waitingFor = new Set([...this.livePeers(now).keys()].filter((peer) => !p.acked.has(peer)));
    const current = this.channel !== undefined && now < this.currentUntil;
    if (current && waitingFor.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.validMs);
      // Not current (peers may be unknown), or a peer heard first during the write (it was not asked): the
      // validity period, the wait that holds whatever the peers did.
      if (!current || !p.asked) return;
      p.waitingFor = waitingFor;
      p.done = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private keep(name: string, tag: string, digest: string): void {
    if (this.size >= this.maxEntries) this.startOver();
    let tags = this.entries.get(name);
    if (tags === undefined) this.entries.set(name, (tags = new Map<string, string>()));
    if (!tags.has(tag)) this.size++;
    tags.set(tag, digest);
  }

  private invalidate(name: string): void {
    if (name === EVERY_REPOSITORY) return this.startOver();
    this.gens.set(name, (this.gens.get(name) ?? 0) + 1);
    const tags = this.entries.get(name);
    if (tags === undefined) return;
    this.size -= tags.size;
    this.entries.delete(name);
  }

  private startOver(): void {
    this.epoch++;
    this.entries.clear();
    this.gens.clear();
    this.size = 0;
  }

  private onMessage(payload: string): void {
    const [kind, a, b, ...rest] = payload.split(' ');
    if (kind === 'h' && a !== undefined) {
      const now = performance.now();
      if (a !== this.id) return void this.peers.set(a, now);
      const sentAt = this.beats.get(Number(b));
      if (sentAt === undefined) return;
      for (const n of this.beats.keys()) if (n <= Number(b)) this.beats.delete(n);
      this.currentUntil = Math.max(this.currentUntil, sentAt + this.validMs);
      this.currentSince ??= now;
    } else if (kind === 'b' && a !== undefined) {
      this.peers.delete(a);
      for (const p of this.pending.values()) this.acked(p, a);
    } else if (kind === 'i' && a !== undefined && b !== undefined) {
      this.invalidate(rest.join(' '));
      if (a !== this.id && a !== FROM_DATABASE)
        void this.channel?.notify(`a ${this.id} ${a} ${b}`).catch(() => undefined);
    } else if (kind === 'a' && b === this.id) {
      const p = this.pending.get(Number(rest[0]));
      if (p !== undefined && a !== undefined) this.acked(p, a);
    }
  }

  private acked(p: Pending, peer: string): void {
    p.acked.add(peer);
    p.waitingFor?.delete(peer);
    if (p.waitingFor?.size === 0) p.done?.();
  }

  private tick(): void {
    if (this.channel === undefined) return;
    const n = ++this.beat;
    this.beats.set(n, performance.now());
    // Beats that never came back (a stalled connection) are forgotten after a while.
    this.beats.delete(n - MAX_BEATS_OUT);
    void this.channel.notify(`h ${this.id} ${n}`).catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    try {
      const channel = await this.opts.listen(
        (m) => this.onMessage(m),
        () => this.lost(channel),
      );
      if (this.closed) return void (await channel.close().catch(() => undefined));
      this.channel = channel;
    } catch {
      setTimeout(() => void this.connect(), RECONNECT_MS).unref();
    }
  }

  /** The listening connection is gone: messages may have been missed, so everything kept is dropped. */
  private lost(channel: CacheChannel | undefined): void {
    if (channel !== undefined && channel !== this.channel) return;
    this.channel = undefined;
    this.currentUntil = -Infinity;
    this.currentSince = undefined;
    this.beats.clear();
    this.startOver();
    if (!this.closed) setTimeout(() => void this.connect(), RECONNECT_MS).unref();
  }
}
