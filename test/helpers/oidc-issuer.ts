/**
 * A local OIDC issuer for tests: keys made here with jose, the discovery document and the JWKS served over HTTP on
 * 127.0.0.1 (the registry allows plain http for loopback issuers only), and ID tokens signed like a CI provider's
 * (GitHub Actions' `repository`/`ref`, GitLab's `project_path`). Keys can be rotated (the old `kid` leaves the
 * JWKS), and every JWKS fetch is counted, so tests can see refetches and their rate limit.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export interface IssuerKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: CryptoKey;
  jwk: JWK;
}

export async function makeKey(kid: string, alg: 'RS256' | 'ES256' = 'RS256'): Promise<IssuerKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

export interface TokenOptions {
  claims?: JWTPayload;
  audience?: string;
  issuer?: string;
  /** Seconds from now; negative: already expired. */
  expiresIn?: number;
  key?: IssuerKey;
}

export class LocalIssuer {
  url = '';
  /** The keys the JWKS publishes. */
  keys: IssuerKey[] = [];
  jwksFetches = 0;
  /** What the discovery document names as issuer (default: the issuer's own URL). */
  advertisedIssuer: string | undefined;
  private server: Server | undefined;

  async start(): Promise<void> {
    this.keys = [await makeKey('key-1')];
    this.server = createServer((req, res) => {
      const send = (body: unknown) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.url === '/.well-known/openid-configuration')
        return send({ issuer: this.advertisedIssuer ?? this.url, jwks_uri: `${this.url}/jwks` });
      if (req.url === '/jwks') {
        this.jwksFetches++;
        return send({ keys: this.keys.map((k) => k.jwk) });
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise((resolve) => this.server?.close(resolve));
  }

  /** Replaces the published keys by a new one (the old `kid` is gone from the JWKS). */
  async rotate(kid: string): Promise<IssuerKey> {
    const key = await makeKey(kid);
    this.keys = [key];
    return key;
  }

  /** An ID token as the CI provider would issue it (signed by the first published key unless told). */
  async token(opts: TokenOptions = {}): Promise<string> {
    const key = opts.key ?? this.keys[0];
    if (!key) throw new Error('the issuer publishes no key');
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ sub: 'repo:org/app:ref:refs/heads/main', ...opts.claims })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
      .setIssuer(opts.issuer ?? this.url)
      .setAudience(opts.audience ?? 'regctl-test')
      .setIssuedAt(now - 10)
      .setNotBefore(now - 10)
      .setExpirationTime(now + (opts.expiresIn ?? 300))
      .sign(key.privateKey);
  }
}
