/** podman: login, push and pull by digest against `regctl serve`. */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peerAvailable, peerPath } from '../../helpers/peers.js';
import { writeOciLayout } from './oci-layout.js';
import { run } from '../../helpers/run.js';
import { startRegistryProcess, type RegistryProcess } from '../../helpers/serve-process.js';

describe.skipIf(!peerAvailable('podman'))('podman against regctl serve', () => {
  let reg: RegistryProcess;
  let work: string;
  const local = `localhost/regctl-it/podman-${process.pid}:v1`;
  const env = () => ({ REGISTRY_AUTH_FILE: join(work, 'auth.json') });
  beforeAll(async () => {
    reg = await startRegistryProcess();
    // podman names an oci: source after its path, so the path must be lower case.
    work = join(tmpdir(), `regctl-podman-it-${randomBytes(6).toString('hex')}`);
    await mkdir(work, { recursive: true });
    await writeFile(join(work, 'auth.json'), '{}\n', { mode: 0o600 });
  });
  afterAll(async () => {
    await run(peerPath('podman'), ['rmi', '-f', local, `${reg.host}/pm/img:v1`]).catch(() => undefined);
    await reg?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('logs in, pushes, and pulls back by digest', async () => {
    const podman = (args: string[]) => run(peerPath('podman'), args, { env: env() });
    const img = await writeOciLayout(join(work, 'layout'), { tag: 'v1', layers: 2 });
    const id = (await run(peerPath('podman'), ['pull', `oci:${img.dir}:v1`], { env: env(), stdoutOnly: true }))
      .trim()
      .split('\n')
      .pop() as string;
    await podman(['tag', id, local]);
    await expect(podman(['login', '--tls-verify=false', '-u', reg.username, '-p', 'wrong', reg.host])).rejects.toThrow(
      /unauthorized|401|invalid/i,
    );
    await podman(['login', '--tls-verify=false', '-u', reg.username, '-p', reg.password, reg.host]);
    await podman(['push', '--tls-verify=false', local, `docker://${reg.host}/pm/img:v1`]);
    const digest = JSON.parse(
      await run(peerPath('skopeo'), [
        'inspect',
        '--tls-verify=false',
        '--creds',
        `${reg.username}:${reg.password}`,
        `docker://${reg.host}/pm/img:v1`,
      ]),
    ) as { Digest: string; Layers: string[] };
    expect(digest.Layers).toHaveLength(2);
    await podman(['rmi', '-f', local]);
    const pulled = await run(
      peerPath('podman'),
      ['pull', '--tls-verify=false', `${reg.host}/pm/img@${digest.Digest}`],
      { env: env(), stdoutOnly: true },
    );
    expect(pulled.trim().split('\n').pop()).toBe(id);
  });
});
