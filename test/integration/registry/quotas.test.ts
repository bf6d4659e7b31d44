/**
 * Quotas through real clients against the built `regctl serve --config FILE`: crane and the docker CLI are refused
 * with the message in their output, nothing of the refused push is stored, a reload raising the limit lets the same
 * push through, and a file with mistakes in its quotas names each one.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerAvailable, peerAvailable, peerPath } from '../../helpers/peers.js';
import { run } from '../../helpers/run.js';
import { basicAuth } from '../../helpers/auth.js';
import { builtCliPresent, startRegistryProcess, type RegistryProcess } from '../../helpers/serve-process.js';
import { writeOciLayout } from './oci-layout.js';

const quota = (limit: string) => `policies:\n  quotas:\n    - { repos: "qt/**", limit: ${limit} }\n`;
const RULE = '(policies.quotas[0], repos qt/**)';

let reg: RegistryProcess;
let work: string;
let config: string;
const enabled = builtCliPresent();

beforeAll(async () => {
  if (!enabled) return;
  work = await mkdtemp(join(tmpdir(), 'regctl-quotas-it-'));
  config = join(work, 'config.yaml');
  await writeFile(config, quota('300KiB'));
  reg = await startRegistryProcess({ args: ['--config', config] });
});
afterAll(async () => {
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Every stored file (blobs, links) with its size; upload sessions left out (a refused PATCH may open one). */
async function stored(root: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = join(dir, e.name);
      if (e.name === '_uploads') continue;
      if (e.isDirectory()) await walk(p);
      else out[relative(root, p)] = (await stat(p)).size;
    }
  };
  await walk(join(root, 'docker/registry/v2'));
  return out;
}

async function reload(text: string): Promise<void> {
  await writeFile(config, text);
  process.kill(reg.pid, 'SIGHUP');
}

describe.skipIf(!enabled || !peerAvailable('crane'))('quotas with crane', () => {
  const crane = (args: string[]) =>
    run(peerPath('crane'), [...args, '--insecure'], { env: { DOCKER_CONFIG: join(work, 'crane-config') } });

  it('refuses the push that would exceed before storing it, and lets it through once a reload raises the limit', async () => {
    await run(peerPath('crane'), ['auth', 'login', reg.host, '-u', reg.username, '-p', reg.password], {
      env: { DOCKER_CONFIG: join(work, 'crane-config') },
    });
    // Three 64 KiB layers: about 192 KiB of the 300 KiB.
    const first = await writeOciLayout(join(work, 'first'), { tag: 'v1', layers: 3 });
    await crane(['push', first.dir, `${reg.host}/qt/app:v1`]);
    // One 128 KiB layer more would exceed.
    const big = await writeOciLayout(join(work, 'big'), { tag: 'v2', layers: 1, layerBytes: 128 * 1024 });
    const before = await stored(reg.dataDir);
    const refused = await crane(['push', big.dir, `${reg.host}/qt/app:v2`]).then(
      () => 'accepted',
      (err: Error) => err.message,
    );
    expect(refused).toContain('DENIED');
    expect(await stored(reg.dataDir)).toEqual(before);
    expect(refused).toMatch(
      new RegExp(
        `quota exceeded: qt/app holds 19\\d(\\.\\d+)? KiB of its 300 KiB quota ${RULE.replace(/[()[\]*]/g, '\\$&')} ` +
          'and this push adds 128 KiB',
      ),
    );
    // The same push into another repository of the pattern: its own 300 KiB (per repository, not the sum).
    await crane(['push', big.dir, `${reg.host}/qt/other:v2`]);

    await writeFile(config, quota('1MiB'));
    const reloaded = await fetch(`${reg.url}/admin/v1/reload`, {
      method: 'POST',
      headers: { authorization: basicAuth(reg.username, reg.password) },
    });
    expect(reloaded.status).toBe(200);
    await crane(['push', big.dir, `${reg.host}/qt/app:v2`]);
    expect((await crane(['digest', `${reg.host}/qt/app:v2`])).trim()).toBe(big.manifestDigest);
  });

  it('a bad quota file (SIGHUP) logs each mistake and keeps the quota in force', async () => {
    await reload('policies:\n  quotas:\n    - { repos: "qt/**", limit: 10 }\n    - { repos: "", limit: 1GiB }\n');
    await expect
      .poll(() => reg.output().includes('policies.quotas[1].repos: must be a repository pattern'), { timeout: 10_000 })
      .toBe(true);
    expect(reg.output()).toContain(
      'policies.quotas[0].limit: 10 is not a size above 0 (examples: 500MiB, 10GiB, 2TB; a number needs a unit)',
    );
    // Still 1 MiB: qt/app holds about 320 KiB; 1 MiB more is refused.
    const huge = await writeOciLayout(join(work, 'huge'), { tag: 'v3', layers: 1, layerBytes: 1024 * 1024 });
    await expect(crane(['push', huge.dir, `${reg.host}/qt/app:v3`])).rejects.toThrow(`of its 1.00 MiB quota ${RULE}`);
    await reload(quota('300KiB'));
  });
});

describe.skipIf(!enabled)('regctl serve --config with mistakes in its quotas', () => {
  it('refuses to start: each mistake on its own line, naming the field, and a non-zero exit', async () => {
    const bad = join(work, 'bad.yaml');
    await writeFile(
      bad,
      'policies:\n  quotas:\n    - { repos: "a/**", limit: 5 parsecs }\n    - { repos: b, max: 1GiB }\n',
    );
    const err = await startRegistryProcess({ args: ['--config', bad] }).then(
      async (r) => {
        await r.stop();
        return 'started';
      },
      (e: Error) => e.message,
    );
    expect(err).toMatch(/exited \(code [1-9]\d*,/);
    expect(err).toContain('✗ policies.quotas[0].limit: "5 parsecs" is not a size above 0');
    expect(err).toContain('\n  policies.quotas[1].max: unknown field (known: repos, limit)\n');
    expect(err).toContain('\n  policies.quotas[1].limit: undefined is not a size above 0');
  });
});

describe.skipIf(!enabled || !dockerAvailable())('quotas with docker push', () => {
  it('docker push of an image above the quota fails with the quota named in its output', async () => {
    const env = { DOCKER_CONFIG: join(work, 'docker-config') };
    const image = `${reg.host}/qt/docker:v1`;
    await run('docker', ['login', reg.host, '-u', reg.username, '--password-stdin'], { env, input: reg.password });
    const root = join(work, 'rootfs-docker');
    await mkdir(join(root, 'etc'), { recursive: true });
    // Random bytes: the pushed (gzip) layer stays about 400 KiB, above the 300 KiB.
    await writeFile(join(root, 'etc/blob'), randomBytes(400 * 1024));
    await run('tar', ['-C', root, '-cf', `${root}.tar`, '.']);
    const id = (await run('docker', ['import', `${root}.tar`, image], { env })).trim();
    try {
      const before = await stored(reg.dataDir);
      const refused = await run('docker', ['push', image], { env }).then(
        () => 'accepted',
        (err: Error) => err.message,
      );
      expect(refused).toContain(`denied: quota exceeded: qt/docker holds 0 B of its 300 KiB quota ${RULE}`);
      expect(refused).toMatch(/and this push adds 40\d(\.\d+)? KiB; delete tags or ask an admin to raise the limit/);
      expect(await run('docker', ['manifest', 'inspect', '--insecure', image], { env }).catch(() => 'none')).toBe(
        'none',
      );
      // Refused at the layer's upload, before it was stored: nothing of the push is.
      expect(await stored(reg.dataDir)).toEqual(before);
    } finally {
      await run('docker', ['rmi', '-f', id], { env }).catch(() => undefined);
    }
  });
});
