/**
 * A pipeline-shaped test of OIDC robots against `regctl serve --auth token`: a local issuer (keys made here, the
 * discovery document and JWKS served on loopback HTTP: test/helpers/oidc-issuer.ts) plays GitHub Actions; a robot
 * in `robots.yaml` is bound to it with `repository` and `ref` claims and holds no secret. The real `docker login`
 * with the job's ID token as password succeeds and `docker push` goes through (docker keeps the refresh token the
 * token endpoint gave it, never the ID token); the ID token of another repository's job cannot log in; nor can an
 * expired one. The refusal cases each have their own check in test/unit/registry/oidc-auth.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth } from '../../helpers/auth.js';
import { LocalIssuer } from '../../helpers/oidc-issuer.js';
import { dockerAvailable } from '../../helpers/peers.js';
import { run } from '../../helpers/run.js';
import { builtCliPresent, startRegistryProcess, type RegistryProcess } from '../../helpers/serve-process.js';

let reg: RegistryProcess;
let work: string;
const issuer = new LocalIssuer();
const JOB = { repository: 'org/app', ref: 'refs/heads/main', workflow: 'release' };

beforeAll(async () => {
  if (!builtCliPresent()) return;
  work = await mkdtemp(join(tmpdir(), 'regctl-oidc-it-'));
  await issuer.start();
  reg = await startRegistryProcess({ args: ['--auth', 'token', '--token-key', join(work, 'token-key.pem')] });
  const robots = {
    robots: {
      'gha-app': {
        oidc: { issuer: issuer.url, audience: reg.host, claims: { repository: 'org/app', ref: 'refs/heads/main' } },
        pull: ['org/app/**'],
        push: ['org/app/**'],
        created: new Date().toISOString(),
        expires: null,
      },
    },
  };
  await writeFile(join(reg.authDir, 'robots.yaml'), stringify(robots), { mode: 0o600 });
  const res = await fetch(`${reg.url}/admin/v1/reload`, {
    method: 'POST',
    headers: { authorization: basicAuth(reg.username, reg.password) },
  });
  expect(res.status).toBe(200);
}, 60_000);
afterAll(async () => {
  await reg?.stop();
  await issuer.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(!builtCliPresent() || !dockerAvailable())(
  'OIDC robots: a pipeline with docker (needs npm run build)',
  () => {
    it('docker login with the job ID token, then docker push; another job and an expired token cannot log in', async () => {
      const env = { DOCKER_CONFIG: join(work, 'docker-config'), DOCKER_BUILDKIT: '0' };
      const image = `${reg.host}/org/app/web:${randomBytes(3).toString('hex')}`;
      const base = `regctl-it/oidc-base-${randomBytes(4).toString('hex')}:latest`;
      const login = async (token: string) =>
        run('docker', ['login', reg.host, '-u', 'robot$gha-app', '--password-stdin'], { env, input: token });
      try {
        await mkdir(join(work, 'rootfs/etc'), { recursive: true });
        await writeFile(join(work, 'rootfs/etc/hello'), `pipeline ${base}\n`);
        await run('tar', ['-C', join(work, 'rootfs'), '-cf', join(work, 'rootfs.tar'), '.']);
        await run('docker', ['import', join(work, 'rootfs.tar'), base], { env });
        await run('docker', ['tag', base, image], { env });

        const other = await issuer.token({ audience: reg.host, claims: { ...JOB, repository: 'org/fork' } });
        await expect(login(other)).rejects.toThrow(/unauthorized|401/i);
        const expired = await issuer.token({ audience: reg.host, claims: JOB, expiresIn: -120 });
        await expect(login(expired)).rejects.toThrow(/unauthorized|401/i);

        const idToken = await issuer.token({ audience: reg.host, claims: JOB });
        expect(await login(idToken)).toContain('Login Succeeded');
        // What docker stored is the registry's refresh token, not the job's ID token.
        const config = await readFile(join(work, 'docker-config/config.json'), 'utf8');
        expect(config).not.toContain(idToken);
        expect(await run('docker', ['push', image], { env })).toMatch(/digest: sha256:/);
        const tags = await fetch(`${reg.url}/v2/org/app/web/tags/list`, {
          headers: { authorization: basicAuth(reg.username, reg.password) },
        });
        expect(((await tags.json()) as { tags: string[] }).tags).toContain(image.split(':').pop());
      } finally {
        for (const ref of [image, base]) await run('docker', ['rmi', '-f', ref], { env }).catch(() => undefined);
      }
    });
  },
);
