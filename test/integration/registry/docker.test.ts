/** The docker CLI against a real dockerd: login, push and pull of a multi-layer image by tag and by digest. */
import { randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerAvailable } from '../../helpers/peers.js';
import { run } from '../../helpers/run.js';
import { startRegistryProcess, type RegistryProcess } from '../../helpers/serve-process.js';
import { basicAuth } from '../../helpers/auth.js';

describe.skipIf(!dockerAvailable())('docker CLI against regctl serve', () => {
  let reg: RegistryProcess;
  let work: string;
  let env: NodeJS.ProcessEnv;
  const suffix = randomBytes(4).toString('hex');
  const base = `regctl-it/base-${suffix}:latest`;
  let image: string;
  const created: string[] = [];

  beforeAll(async () => {
    reg = await startRegistryProcess();
    work = await mkdtemp(join(tmpdir(), 'regctl-docker-it-'));
    env = { DOCKER_CONFIG: join(work, 'docker-config'), DOCKER_BUILDKIT: '0' };
    await mkdir(join(work, 'rootfs/etc'), { recursive: true });
    await writeFile(join(work, 'rootfs/etc/hello'), `base ${suffix}\n`);
    await run('tar', ['-C', join(work, 'rootfs'), '-cf', join(work, 'rootfs.tar'), '.']);
    await run('docker', ['import', join(work, 'rootfs.tar'), base], { env });
    created.push(base);
    const ctx = join(work, 'ctx');
    await mkdir(join(ctx, 'dir'), { recursive: true });
    await writeFile(join(ctx, 'one.txt'), `one ${suffix}\n`);
    await writeFile(join(ctx, 'two.bin'), randomBytes(256 * 1024));
    await writeFile(join(ctx, 'dir/three.txt'), `three ${suffix}\n`);
    await writeFile(
      join(ctx, 'Dockerfile'),
      `FROM ${base}\nCOPY one.txt /one.txt\nCOPY two.bin /two.bin\nCOPY dir /dir\nCMD ["/one.txt"]\n`,
    );
    image = `${reg.host}/it/multi:v1`;
    await run('docker', ['build', '-q', '-t', image, ctx], { env });
    created.push(image);
  });

  afterAll(async () => {
    for (const ref of created.reverse()) await run('docker', ['rmi', '-f', ref], { env }).catch(() => undefined);
    await reg?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('refuses a wrong password, then logs in', async () => {
    await expect(
      run('docker', ['login', reg.host, '-u', reg.username, '--password-stdin'], { env, input: 'wrong-password' }),
    ).rejects.toThrow(/unauthorized|401/i);
    const out = await run('docker', ['login', reg.host, '-u', reg.username, '--password-stdin'], {
      env,
      input: reg.password,
    });
    expect(out).toContain('Login Succeeded');
  });

  it('pushes a 4-layer image and pulls it back by tag and by digest', async () => {
    const layers = JSON.parse(
      await run('docker', ['image', 'inspect', '--format', '{{json .RootFS.Layers}}', image], { env }),
    ) as string[];
    expect(layers).toHaveLength(4);
    const id = (await run('docker', ['image', 'inspect', '--format', '{{.Id}}', image], { env })).trim();
    const push = await run('docker', ['push', image], { env });
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(push)?.[1] as string;
    expect(digest).toBeDefined();
    // The same image under a second repository goes through cross-repository mounts.
    const second = `${reg.host}/it/copy:v1`;
    await run('docker', ['tag', image, second], { env });
    created.push(second);
    expect(await run('docker', ['push', second], { env })).toContain(digest);

    const tags = await (
      await fetch(`${reg.url}/v2/it/multi/tags/list`, {
        headers: { authorization: basicAuth(reg.username, reg.password) },
      })
    ).json();
    expect(tags).toEqual({ name: 'it/multi', tags: ['v1'] });

    await run('docker', ['rmi', image, second], { env });
    await run('docker', ['pull', image], { env });
    expect((await run('docker', ['image', 'inspect', '--format', '{{.Id}}', image], { env })).trim()).toBe(id);
    await run('docker', ['rmi', image], { env });
    const byDigest = `${reg.host}/it/multi@${digest}`;
    await run('docker', ['pull', byDigest], { env });
    created.push(byDigest);
    expect((await run('docker', ['image', 'inspect', '--format', '{{.Id}}', byDigest], { env })).trim()).toBe(id);
    expect(reg.output()).not.toContain(reg.password);
  });
});
