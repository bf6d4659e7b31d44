/**
 * Browsing the public repositories signed out: when the registry lists repositories to clients without
 * credentials (its access file's `anonymous.pull`; the catalog then holds those only), the repository list, the
 * repository pages and the image pages answer visitors with no session, reading the registry as an anonymous
 * client. Everything else still asks for a sign-in, and so does a page of a repository that is not public (the
 * registry refuses the anonymous read).
 *
 * The visitors share one view of the registry (one cache): they all see the same, public, content. The view says
 * the visitor may pull and nothing more, so no push, delete or admin control is drawn; the registry enforces the
 * same either way.
 */
import type { WhoAmI } from '../common/admin-api.js';
import { TtlCache } from './cache.js';
import { RegistryAuthError, RegistryClient } from './registry-client.js';
import type { Session } from './sessions.js';

/** How long the answer to "does the registry list repositories to anyone?" is reused. */
const PROBE_TTL_MS = 30_000;
/** How long the anonymous view's answers are reused (as a signed-in session's). */
const CACHE_TTL_MS = 10_000;

const VISITOR: WhoAmI = { user: '', admin: false, rules: [{ repos: '**', actions: ['pull'] }] };

export class PublicBrowsing {
  readonly client: RegistryClient;
  /** The session-shaped state every signed-out visitor shares (never stored, never a cookie). */
  readonly session: Session;
  private probe: { at: number; open: Promise<boolean> } | undefined;

  constructor(
    registryUrl: string,
    private readonly now: () => number = Date.now,
  ) {
    this.client = new RegistryClient({ baseUrl: registryUrl });
    this.session = {
      id: 'public',
      user: '',
      password: '',
      csrf: '',
      createdAt: now(),
      lastSeen: now(),
      whoami: VISITOR,
      cache: new TtlCache<unknown>(CACHE_TTL_MS, 5_000, now),
      flash: undefined,
    };
  }

  /** Whether the registry lists repositories without credentials (asked at most every 30 s). */
  open(): Promise<boolean> {
    const t = this.now();
    if (this.probe && t - this.probe.at < PROBE_TTL_MS) return this.probe.open;
    const open = this.client.probeCatalog().then(
      () => true,
      (err: unknown) => {
        if (!(err instanceof RegistryAuthError)) this.probe = undefined;
        return false;
      },
    );
    this.probe = { at: t, open };
    return open;
  }
}
