/**
 * The client address the throttle counts failures against, and the proxies whose forwarding headers are believed.
 *
 * Without trusted proxies (the default) the TCP peer is the client and every forwarding header is ignored: anyone
 * can write `X-Forwarded-For`, so believing it would let one client spray guesses under a new address each time.
 * With trusted proxies, the chain is the forwarded addresses followed by the peer, and the client is the right-most
 * address that is not a trusted proxy: each trusted proxy appends the address it received the request from, so
 * everything left of the first untrusted hop was written by the client and proves nothing.
 *
 * The chain is read from `X-Forwarded-For` (what Traefik appends), else `Forwarded` (RFC 7239 `for=`), else
 * `X-Real-IP`; only one of them, in that order, so a header the proxy passes through untouched cannot outrank the
 * one it writes.
 *
 * Entries of the list are addresses, CIDR blocks (IPv4 or IPv6), or host names resolved by the system resolver
 * (the stack names its Traefik service: the address follows the container across restarts, and the rest of the
 * network, the gateway that carries the published direct port included, stays untrusted). Names are resolved at
 * start, every `refreshMs`, and again (at most once a second) when an untrusted peer is seen; until a new address
 * is known its requests count against the proxy's own address, which throttles more, never less.
 */
import { lookup } from 'node:dns/promises';
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP, isIPv4 } from 'node:net';

const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*$/;

export class TrustedProxyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrustedProxyError';
  }
}

/** `::ffff:192.0.2.1` (an IPv4 peer on a dual-stack socket) as `192.0.2.1`; other addresses unchanged. */
export function normalizeAddress(address: string): string {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return m ? (m[1] as string) : address.toLowerCase();
}

export interface TrustedProxiesOptions {
  refreshMs?: number;
  log?: (level: 'warn', msg: string, fields?: Record<string, unknown>) => void;
  /** Resolver of names (tests); default the system's, all addresses. */
  resolve?: (name: string) => Promise<string[]>;
}

export class TrustedProxies {
  private readonly blocks = new BlockList();
  private readonly names: string[] = [];
  private byName = new Map<string, string[]>();
  private resolved = new Set<string>();
  private lastRefresh = 0;
  private refreshing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly opts: TrustedProxiesOptions;
  readonly entries: readonly string[];

  /** Throws TrustedProxyError naming the first entry that is neither an address, a CIDR block nor a host name. */
  constructor(entries: readonly string[], opts: TrustedProxiesOptions = {}) {
    this.opts = opts;
    this.entries = entries;
    for (const raw of entries) {
      const entry = raw.trim();
      const slash = entry.indexOf('/');
      if (slash !== -1) {
        const ip = entry.slice(0, slash);
        const bits = entry.slice(slash + 1);
        const family = isIP(ip);
        const max = family === 6 ? 128 : 32;
        if (family === 0 || !/^\d{1,3}$/.test(bits) || Number(bits) > max)
          throw new TrustedProxyError(`"${entry}" is not a CIDR block (examples: 172.18.0.0/16, fd00::/8)`);
        this.blocks.addSubnet(ip, Number(bits), family === 6 ? 'ipv6' : 'ipv4');
      } else if (isIP(entry) !== 0) {
        this.blocks.addAddress(normalizeAddress(entry), isIP(normalizeAddress(entry)) === 6 ? 'ipv6' : 'ipv4');
      } else if (HOST_NAME.test(entry)) {
        this.names.push(entry);
      } else {
        throw new TrustedProxyError(`"${entry}" is not an address, a CIDR block or a host name`);
      }
    }
  }

  /** Parses a comma-separated list (flag or environment variable) or a YAML list. */
  static parseList(value: unknown): string[] {
    const items = Array.isArray(value) ? value.map(String) : typeof value === 'string' ? value.split(',') : undefined;
    if (!items) throw new TrustedProxyError(`${JSON.stringify(value)} is not a list of addresses`);
    return items.map((s) => s.trim()).filter(Boolean);
  }

  get empty(): boolean {
    return this.entries.length === 0;
  }

  /** Resolves the names now and then every `refreshMs` (default 10 s). */
  async start(): Promise<void> {
    if (this.names.length === 0) return;
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.opts.refreshMs ?? 10_000);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }

  refresh(): Promise<void> {
    this.refreshing ??= this.resolveNames().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async resolveNames(): Promise<void> {
    this.lastRefresh = Date.now();
    const resolve =
      this.opts.resolve ?? (async (name: string) => (await lookup(name, { all: true })).map((a) => a.address));
    const byName = new Map<string, string[]>();
    for (const name of this.names) {
      try {
        byName.set(name, (await resolve(name)).map(normalizeAddress));
      } catch (err) {
        // Keep the last addresses of a name that does not resolve for now (a proxy restarting).
        byName.set(name, this.byName.get(name) ?? []);
        this.opts.log?.('warn', 'trusted proxy name does not resolve', { name, error: (err as Error).message });
      }
    }
    this.byName = byName;
    this.resolved = new Set([...byName.values()].flat());
  }

  isTrusted(address: string): boolean {
    const a = normalizeAddress(address);
    const family = isIP(a);
    if (family === 0) return false;
    if (this.resolved.has(a)) return true;
    if (this.blocks.check(a, isIPv4(a) ? 'ipv4' : 'ipv6')) return true;
    if (this.names.length > 0 && Date.now() - this.lastRefresh > 1000) void this.refresh();
    return false;
  }
}

/** One hop of a forwarding header as an address: quotes, IPv6 brackets and ports removed. */
function hopAddress(token: string): string {
  let t = token.trim().replace(/^"|"$/g, '');
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(t);
  if (bracketed) return bracketed[1] as string;
  if (/^[^:]+:\d+$/.test(t)) t = t.slice(0, t.lastIndexOf(':'));
  return t;
}

function headerText(v: string | string[] | undefined): string | undefined {
  const text = Array.isArray(v) ? v.join(',') : v;
  return text && text.trim() !== '' ? text : undefined;
}

/** The forwarded hops, left (the original client, by its own word) to right (the nearest proxy's peer). */
function forwardedChain(req: IncomingMessage): string[] {
  const xff = headerText(req.headers['x-forwarded-for']);
  if (xff) return xff.split(',').map(hopAddress).filter(Boolean);
  const fwd = headerText(req.headers.forwarded);
  if (fwd) {
    const hops: string[] = [];
    for (const element of fwd.split(','))
      for (const pair of element.split(';')) {
        const eq = pair.indexOf('=');
        if (eq !== -1 && pair.slice(0, eq).trim().toLowerCase() === 'for') hops.push(hopAddress(pair.slice(eq + 1)));
      }
    return hops.filter(Boolean);
  }
  const real = headerText(req.headers['x-real-ip']);
  return real ? [hopAddress(real)] : [];
}

/** The address to count failures against: see the module comment. */
/** Trusted proxies from a list (none: undefined), their names resolved before it returns. */
export async function startTrustedProxies(list: readonly string[]): Promise<TrustedProxies | undefined> {
  if (list.length === 0) return undefined;
  const trusted = new TrustedProxies(list);
  await trusted.start();
  return trusted;
}

export function clientAddress(req: IncomingMessage, trusted: TrustedProxies | undefined): string {
  const peer = normalizeAddress(req.socket?.remoteAddress ?? 'unknown');
  if (!trusted || trusted.empty || !trusted.isTrusted(peer)) return peer;
  const chain = forwardedChain(req);
  for (let i = chain.length - 1; i >= 0; i--) {
    const hop = normalizeAddress(chain[i] as string);
    if (!trusted.isTrusted(hop)) return hop;
  }
  // Every hop is a trusted proxy: the left-most is the nearest thing to a client there is.
  return chain.length > 0 ? normalizeAddress(chain[0] as string) : peer;
}
