/**
 * OIDC ID tokens as a robot's password (CI identity without a stored secret). A robot bound to an issuer
 * (robots.ts `oidc:`) signs in at the token endpoint as `robot$NAME` with an ID token its pipeline got from that
 * issuer (GitHub Actions, GitLab CI, …). The token is accepted only when:
 *
 * - it is signed by a key of the issuer's JWKS, found through its discovery document
 *   (`<issuer>/.well-known/openid-configuration` → `jwks_uri`), whose `issuer` must be the bound issuer exactly;
 * - its algorithm is RS256 or ES256 (nothing else: no `none`, no HMAC, so a public key can never act as a secret);
 * - `iss` is the bound issuer, `aud` contains the bound audience, `exp` is present and not passed, `nbf` (if any) is
 *   reached, both with a small clock skew;
 * - every bound claim has a string value matching the binding: exactly, or as a glob read like repository
 *   patterns (common/repo-pattern.ts: `*` within one `/` segment, `**` across) when the binding holds a `*`.
 *
 * The discovery document and the JWKS are cached per issuer. A token whose `kid` is not in the cached set makes
 * jose fetch the set again, at most once per cooldown, so a key rotation at the issuer is followed within the
 * cooldown and a flood of made-up `kid`s costs the issuer one request per cooldown. A failed discovery is
 * remembered for the same cooldown.
 *
 * Issuers must be https; plain http is allowed for loopback addresses only (a local issuer in tests).
 */
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { repoPatternToRegExp } from '../../common/repo-pattern.js';

export const OIDC_ALGORITHMS = ['RS256', 'ES256'];
const CLOCK_SKEW_SEC = 30;

/** What a robot is bound to (robots.ts). */
export interface OidcBinding {
  issuer: string;
  audience: string;
  /** Claim name → exact value, or glob when it holds `*`. */
  claims: Record<string, string>;
}

export interface OidcOptions {
  /** Least time between two fetches of one issuer's JWKS or discovery document (ms, default 30 s). */
  cooldownMs?: number;
  /** How long a fetched JWKS is trusted before it is fetched again anyway (ms, default 10 min). */
  cacheMaxAgeMs?: number;
  /** Timeout of each fetch (ms, default 5 s). */
  timeoutMs?: number;
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Why `url` cannot be an issuer (or a JWKS address), or undefined when it can: https, or http on loopback. */
export function issuerUrlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `"${url}" is not a URL`;
  }
  if (u.protocol === 'https:') return undefined;
  if (u.protocol === 'http:' && (LOOPBACK_HOSTS.has(u.hostname) || /^127\.\d+\.\d+\.\d+$/.test(u.hostname)))
    return undefined;
  return `"${url}" must be https (plain http only on a loopback address)`;
}

/** Whether `value` satisfies the bound claim `expected`: equal, or matching it as a glob when it holds `*`. */
export function claimMatches(expected: string, value: unknown): boolean {
  if (typeof value !== 'string') return false;
  return expected.includes('*') ? repoPatternToRegExp(expected).test(value) : value === expected;
}

type KeySet = ReturnType<typeof createRemoteJWKSet>;

export class OidcVerifier {
  private readonly opts: Required<OidcOptions>;
  private readonly keySets = new Map<string, { jwks?: KeySet; failedAt?: number; pending?: Promise<KeySet> }>();

  constructor(opts: OidcOptions = {}) {
    this.opts = {
      cooldownMs: opts.cooldownMs ?? 30_000,
      cacheMaxAgeMs: opts.cacheMaxAgeMs ?? 600_000,
      timeoutMs: opts.timeoutMs ?? 5000,
    };
  }

  /**
   * Verifies `token` against `binding`; resolves to its claims, or rejects with an Error saying what is wrong
   * (for logs: the client gets the generic 401).
   */
  async verify(token: string, binding: OidcBinding): Promise<JWTPayload> {
    const jwks = await this.keySet(binding.issuer);
    const { payload } = await jwtVerify(token, jwks, {
      algorithms: OIDC_ALGORITHMS,
      issuer: binding.issuer,
      audience: binding.audience,
      requiredClaims: ['exp', 'iat'],
      clockTolerance: CLOCK_SKEW_SEC,
    });
    for (const [claim, expected] of Object.entries(binding.claims))
      if (!claimMatches(expected, payload[claim])) throw new Error(`claim ${claim} does not match the binding`);
    return payload;
  }

  /** The issuer's key set, from its discovery document (one fetch at a time; a failure waits out the cooldown). */
  private keySet(issuer: string): Promise<KeySet> {
    const entry = this.keySets.get(issuer) ?? {};
    this.keySets.set(issuer, entry);
    if (entry.jwks) return Promise.resolve(entry.jwks);
    if (entry.pending) return entry.pending;
    if (entry.failedAt !== undefined && Date.now() - entry.failedAt < this.opts.cooldownMs)
      return Promise.reject(new Error(`discovery of ${issuer} failed recently; retried after the cooldown`));
    entry.pending = this.discover(issuer).then(
      (jwks) => {
        entry.jwks = jwks;
        entry.pending = undefined;
        return jwks;
      },
      (err: unknown) => {
        entry.failedAt = Date.now();
        entry.pending = undefined;
        throw err;
      },
    );
    return entry.pending;
  }

  private async discover(issuer: string): Promise<KeySet> {
    const problem = issuerUrlProblem(issuer);
    if (problem) throw new Error(`issuer ${problem}`);
    const where = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    const res = await fetch(where, { signal: AbortSignal.timeout(this.opts.timeoutMs), redirect: 'error' });
    if (!res.ok) throw new Error(`${where} answered ${res.status}`);
    const doc = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
    if (doc.issuer !== issuer) throw new Error(`${where} names issuer ${String(doc.issuer)}, not ${issuer}`);
    if (typeof doc.jwks_uri !== 'string') throw new Error(`${where} has no jwks_uri`);
    const jwksProblem = issuerUrlProblem(doc.jwks_uri);
    if (jwksProblem) throw new Error(`jwks_uri ${jwksProblem}`);
    return createRemoteJWKSet(new URL(doc.jwks_uri), {
      cooldownDuration: this.opts.cooldownMs,
      cacheMaxAge: this.opts.cacheMaxAgeMs,
      timeoutDuration: this.opts.timeoutMs,
    });
  }
}
