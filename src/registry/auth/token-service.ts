/**
 * Token authentication as the Docker registry token specification describes it (distribution's
 * docs/spec/auth/token.md, oauth.md, jwt.md), with the registry as its own token server:
 *
 * - `/v2/` routes answer 401 `WWW-Authenticate: Bearer realm="<origin>/auth/token",service="<service>",scope=…`;
 * - `GET /auth/token?service=&scope=…` (Basic credentials, or none for an anonymous token that grants nothing) and
 *   `POST /auth/token` (form: `grant_type=password` with `username`/`password`, or `grant_type=refresh_token`;
 *   `access_type=offline` adds a refresh token) issue ES256 JWTs for the scopes asked AND allowed by the access
 *   policy, with the specification's `access` claim;
 * - a Bearer token is accepted only when signed by this registry's key (or, during a rotation's grace, the key it
 *   replaced), with ES256 and no other algorithm, unexpired, already valid, for this service (`aud`) and from this
 *   issuer (`iss`); its `access` claim is then checked on every request, beside the policy (auth/authorize.ts).
 *
 * Refresh tokens are JWTs too, with their own audience (`<service>#refresh`) so neither kind passes for the other,
 * and they carry a fingerprint of the user's password hash: a refresh is refused once the user is gone from
 * htpasswd or their password has changed, which revokes every refresh token they hold.
 * Basic credentials are still accepted on every route (the CLI's admin calls and the web UI use them), except a
 * robot's (`robot$NAME`): robots sign in here only, with their rights exactly their patterns (robots.ts).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { RegistryError } from '../errors.js';
import { firstHeader, readBody, sendJson, type Ctx } from '../http/context.js';
import { matchRoute } from '../http/routes.js';
import { parseBasic, type Authenticator } from './authenticator.js';
import { robotName } from './robots.js';
import { loadPreviousKey, loadSigningKey, type SigningKey, type VerifyingKey } from './token-keys.js';
import { accessClaim, grantedAccess, parseScopes, scopeString, type AccessEntry } from './token-scope.js';

export const TOKEN_PATH = '/auth/token';
const ALGORITHM = 'ES256';
const OIDC_REFRESH_TTL_SEC = 3600;

export interface TokenServiceOptions {
  keyPath: string;
  /** The `service` of challenges and the `aud` of access tokens. */
  service: string;
  authenticator: Authenticator;
  /** Create the key file when it is missing (default true). */
  createKey?: boolean;
  accessTtlSec?: number;
  refreshTtlSec?: number;
  /** How often the key files are read again, so a rotation needs no restart (ms). */
  keyPollMs?: number;
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

export interface VerifiedToken {
  /** Undefined for an anonymous token (empty `sub`): its access claim covers anonymous pulls at most. */
  user: string | undefined;
  access: AccessEntry[];
}

/** The route action and repository of a `/v2/` request, when it names a route. */
export function requestTarget(path: string, method: string | undefined): { action: string; name?: string } | undefined {
  const match = matchRoute(path);
  const verb = method === 'HEAD' ? 'GET' : (method ?? '');
  const action = match?.route.methods[verb]?.action;
  return action === undefined ? undefined : { action, name: match?.params.name };
}

/** The scope a `/v2/` request needs, for the challenge that asks the client to fetch a token for it. */
export function scopeForRequest(path: string, method: string | undefined): string | undefined {
  const { action, name } = requestTarget(path, method) ?? {};
  if (action === 'catalog') return 'registry:catalog:*';
  if (!action || action === 'base' || name === undefined) return undefined;
  return `repository:${name}:${action === 'push' ? 'pull,push' : action}`;
}

export class TokenService {
  private readonly opts: TokenServiceOptions;
  private key: SigningKey | undefined;
  private previous: VerifyingKey | undefined;
  private timer: NodeJS.Timeout | undefined;
  readonly issuer: string;

  constructor(opts: TokenServiceOptions) {
    this.opts = opts;
    this.issuer = `regctl:${opts.service}`;
  }

  get service(): string {
    return this.opts.service;
  }

  /** Loads (or first creates) the signing key, and the previous one if present; then re-reads both now and then. */
  async start(): Promise<void> {
    const { key, created } = await loadSigningKey(this.opts.keyPath, this.opts.createKey ?? true);
    if (created) this.opts.log?.('info', 'token signing key created', { path: this.opts.keyPath });
    this.key = key;
    this.previous = await loadPreviousKey(this.opts.keyPath);
    this.timer = setInterval(() => void this.reloadKeys(), this.opts.keyPollMs ?? 10_000);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Reads the key files again; a file that cannot be read keeps the key in force. */
  async reloadKeys(): Promise<void> {
    try {
      this.key = (await loadSigningKey(this.opts.keyPath, false)).key;
      this.previous = await loadPreviousKey(this.opts.keyPath);
    } catch (err) {
      this.opts.log?.('warn', 'token key not reloaded', { error: (err as Error).message });
    }
  }

  private signingKey(): SigningKey {
    if (!this.key) throw new Error('token service not started');
    return this.key;
  }

  /** `Bearer realm=…` for a request: the realm is this registry's own token endpoint, as the client reaches it. */
  challenge(req: IncomingMessage, scope?: string, error?: 'invalid_token' | 'insufficient_scope'): string {
    const host = firstHeader(req.headers['x-forwarded-host']) ?? req.headers.host ?? 'localhost';
    const proto = firstHeader(req.headers['x-forwarded-proto']) ?? 'http';
    const q = (v: string) => v.replace(/["\\]/g, '');
    return [
      `Bearer realm="${q(`${proto}://${host}${TOKEN_PATH}`)}"`,
      `service="${q(this.opts.service)}"`,
      ...(scope ? [`scope="${q(scope)}"`] : []),
      ...(error ? [`error="${error}"`] : []),
    ].join(',');
  }

  unauthorized(req: IncomingMessage, scope?: string, error?: 'invalid_token' | 'insufficient_scope'): RegistryError {
    return new RegistryError('UNAUTHORIZED', undefined, {
      headers: { 'WWW-Authenticate': this.challenge(req, scope, error) },
    });
  }

  /** Verifies a Bearer token as an access token for this service; throws UNAUTHORIZED (invalid_token). */
  async verify(req: IncomingMessage, token: string): Promise<VerifiedToken> {
    const payload = await this.verifyJwt(token, this.opts.service).catch(() => undefined);
    if (typeof payload?.sub !== 'string')
      throw this.unauthorized(req, scopeForRequest(req.url?.split('?')[0] ?? '', req.method), 'invalid_token');
    return { user: payload.sub === '' ? undefined : payload.sub, access: accessClaim(payload.access) };
  }

  private async verifyJwt(token: string, audience: string): Promise<JWTPayload> {
    const { payload } = await jwtVerify(
      token,
      (header) => {
        const current = this.signingKey();
        if (header.kid === undefined || header.kid === current.kid) return current.publicKey;
        const previous = this.previous;
        if (previous && header.kid === previous.kid && (previous.until === undefined || Date.now() < previous.until))
          return previous.publicKey;
        throw new Error('unknown key');
      },
      {
        algorithms: [ALGORITHM],
        issuer: this.issuer,
        audience,
        requiredClaims: ['exp', 'nbf', 'iat', 'sub'],
        clockTolerance: 5,
      },
    );
    return payload;
  }

  private async sign(claims: JWTPayload, audience: string, ttlSec: number): Promise<string> {
    const key = this.signingKey();
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT', kid: key.kid })
      .setIssuer(this.issuer)
      .setAudience(audience)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + ttlSec)
      .setJti(randomUUID())
      .sign(key.privateKey);
  }

  private get refreshAudience(): string {
    return `${this.opts.service}#refresh`;
  }

  /** `GET` or `POST /auth/token`. */
  async handle(ctx: Ctx, clientIp: string): Promise<void> {
    const { req } = ctx;
    if (req.method !== 'GET' && req.method !== 'POST')
      throw new RegistryError('METHOD_NOT_ALLOWED', { method: req.method }, { headers: { Allow: 'GET, POST' } });
    const params = req.method === 'GET' ? ctx.url.searchParams : await formOf(req);
    const service = params.get('service');
    if (service !== null && service !== this.opts.service)
      throw new RegistryError(
        'INVALID_REQUEST',
        { service },
        { message: `this token server serves "${this.opts.service}"` },
      );
    const auth = this.opts.authenticator;
    let user: string | undefined;
    let refreshToken: string | undefined;
    let offline: boolean;
    if (req.method === 'GET') {
      offline = params.get('offline_token') === 'true';
      const header = req.headers.authorization;
      if (header !== undefined) user = await signIn(auth, header, clientIp);
    } else {
      offline = params.get('access_type') === 'offline';
      const grant = params.get('grant_type');
      if (grant === 'password') {
        const basic = `Basic ${Buffer.from(`${params.get('username') ?? ''}:${params.get('password') ?? ''}`).toString('base64')}`;
        user = await signIn(auth, basic, clientIp);
      } else if (grant === 'refresh_token') {
        refreshToken = params.get('refresh_token') ?? '';
        user = await this.refreshUser(refreshToken);
      } else {
        throw new RegistryError(
          'INVALID_REQUEST',
          { grant_type: grant },
          { message: 'grant_type must be password or refresh_token' },
        );
      }
    }
    const scopes = req.method === 'GET' ? params.getAll('scope') : [params.get('scope') ?? ''];
    const access = grantedAccess(user, parseScopes(scopes), auth.policy);
    const ttl = this.opts.accessTtlSec ?? 300;
    const token = await this.sign({ sub: user ?? '', access }, this.opts.service, ttl);
    if (user !== undefined && offline && refreshToken === undefined)
      refreshToken = await this.sign(
        { sub: user, pwh: auth.passwordFingerprint(user) },
        this.refreshAudience,
        // An OIDC robot's session is a CI job: its refresh token lasts an hour at most, not a month.
        Math.min(this.opts.refreshTtlSec ?? 30 * 86_400, auth.isOidcRobot(user) ? OIDC_REFRESH_TTL_SEC : Infinity),
      );
    const body: Record<string, unknown> = {
      token,
      access_token: token,
      expires_in: ttl,
      issued_at: new Date().toISOString(),
    };
    if (req.method === 'POST') body.scope = scopeString(access);
    if (refreshToken !== undefined && (offline || req.method === 'POST')) body.refresh_token = refreshToken;
    sendJson(ctx, 200, body, { 'Cache-Control': 'no-store' });
  }

  /** The user of a refresh token that is still good: signed by us, unexpired, and the user's password unchanged. */
  private async refreshUser(token: string): Promise<string> {
    const refused = new RegistryError('UNAUTHORIZED', { reason: 'refresh token invalid or revoked' });
    const payload = await this.verifyJwt(token, this.refreshAudience).catch(() => undefined);
    if (!payload?.sub || typeof payload.pwh !== 'string') throw refused;
    const current = this.opts.authenticator.passwordFingerprint(payload.sub);
    if (current === undefined || current !== payload.pwh) throw refused;
    const robot = robotName(payload.sub);
    if (robot !== undefined) this.opts.authenticator.robotUsage.record(robot);
    return payload.sub;
  }
}

/** Basic credentials of a user, or of a robot (`robot$NAME`, robots.ts): robots sign in here and nowhere else. */
function signIn(auth: Authenticator, header: string, clientIp: string): Promise<string> {
  const creds = parseBasic(header);
  if (creds && robotName(creds.user) !== undefined) return auth.authenticateRobot(creds.user, creds.password, clientIp);
  return auth.authenticate(header, clientIp);
}

async function formOf(req: IncomingMessage): Promise<URLSearchParams> {
  const body = await readBody(req, 64 * 1024, () => new RegistryError('SIZE_INVALID', { reason: 'body too large' }));
  return new URLSearchParams(body.toString('utf8'));
}
