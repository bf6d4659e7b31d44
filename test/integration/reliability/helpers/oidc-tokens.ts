/**
 * OIDC ID tokens for the bad-request corpus (`{token:oidc-<kind>}`, the password of `robot$corpus-ci` at the
 * token endpoint): a local issuer on loopback (test/helpers/oidc-issuer.ts), a robot bound to it written to
 * `robots.yaml` in the registry's auth directory before it starts, and tokens each wrong in exactly one way;
 * `oidc-valid` is the control made the same way, which must pass.
 */
import { createSecretKey } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SignJWT, UnsecuredJWT } from 'jose';
import { stringify } from 'yaml';
import { LocalIssuer, makeKey } from '../../../helpers/oidc-issuer.js';

export const OIDC_ROBOT = 'robot$corpus-ci';
const AUDIENCE = 'regctl-corpus';
const JOB = { repository: 'corpus/app', ref: 'refs/heads/main' };

export async function oidcCorpus(
  authDir: string,
): Promise<{ tokens: Record<string, string>; stop: () => Promise<void> }> {
  const issuer = new LocalIssuer();
  await issuer.start();
  const robots = {
    robots: {
      'corpus-ci': {
        oidc: { issuer: issuer.url, audience: AUDIENCE, claims: JOB },
        pull: ['corpus/**'],
        push: ['corpus/**'],
        created: new Date().toISOString(),
        expires: null,
      },
    },
  };
  await writeFile(join(authDir, 'robots.yaml'), stringify(robots), { mode: 0o600 });
  // Signed by the key the issuer then rotates out (its kid gone from the JWKS); every other token, the control
  // included, is signed by the key in force, so each is wrong in its own way only.
  const retired = await issuer.token({ audience: AUDIENCE, claims: JOB });
  await issuer.rotate('key-2');
  const now = Math.floor(Date.now() / 1000);
  const signed = (claims = JOB) => issuer.token({ audience: AUDIENCE, claims });
  const tokens: Record<string, string> = {
    'oidc-valid': await signed(),
    'oidc-other-claims': await signed({ ...JOB, repository: 'corpus/fork' }),
    'oidc-expired': await issuer.token({ audience: AUDIENCE, claims: JOB, expiresIn: -3600 }),
    'oidc-wrong-audience': await issuer.token({ audience: 'someone-else', claims: JOB }),
    'oidc-wrong-issuer': await issuer.token({ audience: AUDIENCE, claims: JOB, issuer: 'https://issuer.invalid' }),
    'oidc-unknown-key': await issuer.token({ audience: AUDIENCE, claims: JOB, key: await makeKey('not-published') }),
    'oidc-alg-none': new UnsecuredJWT(JOB)
      .setIssuer(issuer.url)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime('5m')
      .encode(),
    'oidc-hs256-public-key': await new SignJWT(JOB)
      .setProtectedHeader({ alg: 'HS256', kid: issuer.keys[0]?.kid })
      .setIssuer(issuer.url)
      .setAudience(AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .sign(createSecretKey(Buffer.from(JSON.stringify(issuer.keys[0]?.jwk)))),
  };
  tokens['oidc-rotated-out'] = retired;
  return { tokens, stop: () => issuer.stop() };
}
