/**
 * Immutable tags through real clients against the built `regctl serve --config FILE`: crane and the docker CLI see
 * the refusal and its message; SIGHUP with a bad file keeps the policy in force.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerAvailable, peerAvailable, peerPath } from '../../helpers/peers.js';
import { run } from '../../helpers/run.js';
import { builtCliPresent, startRegistryProcess, type RegistryProcess } from '../../helpers/serve-process.js';
import { basicAuth } from '../../helpers/auth.js';
import { writeOciLayout } from './oci-layout.js';

const POLICY = `policies:
  immutableTags:
    - { repos: "it/**", tags: "v*" }
`;
const RULE_MESSAGE = 'is immutable by policy policies.immutableTags[0] (repos it/**, tags v*)';

let reg: RegistryProcess;
let work: string;
let config: string;
const enabled = builtCliPresent();

beforeAll(async () => {
  if (!enabled) return;
  work = await mkdtemp(join(tmpdir(), 'regctl-policies-it-'));
  config = join(work, 'config.yaml');
  await writeFile(config, POLICY);
  reg = await startRegistryProcess({ args: ['--config', config] });
});
afterAll(async () => {
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const api = (path: string, init: RequestInit = {}) =>
  fetch(`${reg.url}${path}`, {
    ...init,
    headers: { authorization: basicAuth(reg.username, reg.password), ...init.headers },
  });

describe.skipIf(!enabled || !peerAvailable('crane'))('immutable tags with crane', () => {
  const crane = (args: string[]) =>
    run(peerPath('crane'), [...args, '--insecure'], { env: { DOCKER_CONFIG: join(work, 'crane-config') } });

  it('pushes the same image twice, is refused a move and a delete with the rule named', async () => {
    await run(peerPath('crane'), ['auth', 'login', reg.host, '-u', reg.username, '-p', reg.password], {
      env: { DOCKER_CONFIG: join(work, 'crane-config') },
    });
    const amd = await writeOciLayout(join(work, 'amd'), { tag: 'v1', arch: 'amd64' });
    const arm = await writeOciLayout(join(work, 'arm'), { tag: 'v1', arch: 'arm64' });
    await crane(['push', amd.dir, `${reg.host}/it/app:v1`]);
    await crane(['push', amd.dir, `${reg.host}/it/app:v1`]);
    const moved = await crane(['push', arm.dir, `${reg.host}/it/app:v1`]).then(
      () => 'accepted',
      (err: Error) => err.message,
    );
    expect(moved).toContain('DENIED');
    expect(moved).toContain(`tag v1 of it/app ${RULE_MESSAGE}`);
    expect((await crane(['digest', `${reg.host}/it/app:v1`])).trim()).toBe(amd.manifestDigest);
    await crane(['push', arm.dir, `${reg.host}/it/app:latest`]);
    await crane(['push', amd.dir, `${reg.host}/it/app:latest`]);

    const deleted = await crane(['delete', `${reg.host}/it/app@${amd.manifestDigest}`]).then(
      () => 'accepted',
      (err: Error) => err.message,
    );
    expect(deleted).toContain('cannot be deleted without the admin override');
    const override = await api('/v2/it/app/manifests/v1', {
      method: 'DELETE',
      headers: { 'Regctl-Override-Immutable': 'true' },
    });
    expect(override.status).toBe(202);
  });

  it('a bad file (SIGHUP, or the file watch) logs each mistake and keeps the policy in force', async () => {
    await writeFile(config, 'policies:\n  immutableTags: [ { repos: "it/**", tags: "/(/" } ]\n');
    process.kill(reg.pid, 'SIGHUP');
    await expect
      .poll(() => reg.output().includes('policies.immutableTags[0].tags: is not a valid regular expression'), {
        timeout: 10_000,
      })
      .toBe(true);
    const amd = await writeOciLayout(join(work, 'amd2'), { tag: 'v2', arch: 'amd64', layers: 1 });
    const arm = await writeOciLayout(join(work, 'arm2'), { tag: 'v2', arch: 'arm64', layers: 1 });
    await crane(['push', amd.dir, `${reg.host}/it/other:v2`]);
    await expect(crane(['push', arm.dir, `${reg.host}/it/other:v2`])).rejects.toThrow(RULE_MESSAGE);
    await writeFile(config, POLICY);
  });
});

describe.skipIf(!enabled)('regctl serve --config with mistakes in its policies', () => {
  it('refuses to start: each mistake on its own line, naming the field, and a non-zero exit', async () => {
    const bad = join(work, 'bad.yaml');
    await writeFile(
      bad,
      'policies:\n  immutableTags: [ { repos: "a/**" } ]\n  retention: { rules: [ { repos: "b", keepLast: -2 } ] }\n',
    );
    const started = startRegistryProcess({ args: ['--config', bad] });
    const err = await started.then(
      async (r) => {
        await r.stop();
        return 'started';
      },
      (e: Error) => e.message,
    );
    expect(err).toMatch(/exited \(code [1-9]\d*,/);
    expect(err).toContain('✗ policies.immutableTags[0].tags: must be a tag pattern');
    expect(err).toContain('\n  policies.retention.rules[0].keepLast: -2 is not a whole number of tags (0 or more)\n');
    expect(err).not.toContain('policy reload refused');
  });
});

describe.skipIf(!enabled || !dockerAvailable())('immutable tags with docker push', () => {
  it('docker push of another image under a protected tag fails with the rule named', async () => {
    const env = { DOCKER_CONFIG: join(work, 'docker-config') };
    const suffix = randomBytes(4).toString('hex');
    const image = `${reg.host}/it/docker:v1`;
    const made: string[] = [];
    await run('docker', ['login', reg.host, '-u', reg.username, '--password-stdin'], { env, input: reg.password });
    try {
      for (const which of ['one', 'two']) {
        const root = join(work, `rootfs-${which}`);
        await mkdir(join(root, 'etc'), { recursive: true });
        await writeFile(join(root, 'etc/hello'), `${which} ${suffix}\n`);
        await run('tar', ['-C', root, '-cf', `${root}.tar`, '.']);
        made.push((await run('docker', ['import', `${root}.tar`, image], { env })).trim());
        if (which === 'one') {
          expect(await run('docker', ['push', image], { env })).toMatch(/digest: sha256:/);
          continue;
        }
        const refused = await run('docker', ['push', image], { env }).then(
          () => 'accepted',
          (err: Error) => err.message,
        );
        expect(refused).toContain('denied');
        expect(refused).toContain(`tag v1 of it/docker ${RULE_MESSAGE}`);
      }
    } finally {
      // By id: the first import lost its tag to the second.
      await run('docker', ['rmi', '-f', ...made], { env }).catch(() => undefined);
    }
  });
});
