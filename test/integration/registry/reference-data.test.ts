/**
 * Storage compatibility with distribution: a data directory written by Debian's docker-registry (2.8.2) is
 * served by `regctl serve` with identical digests, and one written by ours is served by the reference.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peerAvailable, peerPath } from '../../helpers/peers.js';
import { startReferenceRegistry } from '../../helpers/reference-registry.js';
import { writeOciLayout } from './oci-layout.js';
import { run } from '../../helpers/run.js';
import { startRegistryProcess } from '../../helpers/serve-process.js';
import { basicAuth } from '../../helpers/auth.js';

const ready = peerAvailable('docker-registry') && peerAvailable('skopeo') && peerAvailable('crane');

describe.skipIf(!ready)('data directory shared with docker-registry 2.8.2', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'regctl-refdata-it-'));
  });
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  const skopeo = (args: string[]) => run(peerPath('skopeo'), args);
  const crane = (args: string[], cfg: string) =>
    run(peerPath('crane'), [...args, '--insecure'], { env: { DOCKER_CONFIG: cfg } });

  it('serves what the reference wrote: same tags, same digests, same bytes', async () => {
    const dataDir = join(work, 'from-reference');
    const ref = await startReferenceRegistry({ dataDir });
    const oci = await writeOciLayout(join(work, 'img-oci'), { tag: 'v1', layers: 3 });
    const arm = await writeOciLayout(join(work, 'img-arm'), { tag: 'v1', arch: 'arm64', layers: 2 });
    const refCreds = `${ref.username}:${ref.password}`;
    const cfg = join(work, 'crane-ref');
    let expected: Record<string, string>;
    try {
      await skopeo([
        'copy',
        '--dest-tls-verify=false',
        '--dest-creds',
        refCreds,
        `oci:${oci.dir}:v1`,
        `docker://${ref.host}/ref/oci:v1`,
      ]);
      await skopeo([
        'copy',
        '--dest-tls-verify=false',
        '--dest-creds',
        refCreds,
        '--format',
        'v2s2',
        `oci:${oci.dir}:v1`,
        `docker://${ref.host}/ref/docker:v2s2`,
      ]);
      await skopeo([
        'copy',
        '--dest-tls-verify=false',
        '--dest-creds',
        refCreds,
        `oci:${arm.dir}:v1`,
        `docker://${ref.host}/ref/oci:arm64`,
      ]);
      await run(peerPath('crane'), ['auth', 'login', ref.host, '-u', ref.username, '-p', ref.password], {
        env: { DOCKER_CONFIG: cfg },
      });
      await crane(
        [
          'index',
          'append',
          '-m',
          `${ref.host}/ref/oci:v1`,
          '-m',
          `${ref.host}/ref/oci:arm64`,
          '-t',
          `${ref.host}/ref/multi:latest`,
        ],
        cfg,
      );
      await crane(['tag', `${ref.host}/ref/oci:v1`, 'also'], cfg);
      expected = {};
      for (const r of ['ref/oci:v1', 'ref/oci:arm64', 'ref/oci:also', 'ref/docker:v2s2', 'ref/multi:latest']) {
        expected[r] = (await crane(['digest', `${ref.host}/${r}`], cfg)).trim();
      }
    } finally {
      await ref.stop();
    }
    expect(expected['ref/oci:v1']).toBe(oci.manifestDigest);

    const ours = await startRegistryProcess({ dataDir });
    try {
      const ourCfg = join(work, 'crane-ours');
      await run(peerPath('crane'), ['auth', 'login', ours.host, '-u', ours.username, '-p', ours.password], {
        env: { DOCKER_CONFIG: ourCfg },
      });
      for (const [r, digest] of Object.entries(expected))
        expect([r, (await crane(['digest', `${ours.host}/${r}`], ourCfg)).trim()]).toEqual([r, digest]);
      expect((await crane(['ls', `${ours.host}/ref/oci`], ourCfg)).trim().split('\n').sort()).toEqual([
        'also',
        'arm64',
        'v1',
      ]);
      expect((await crane(['catalog', ours.host], ourCfg)).trim().split('\n')).toEqual([
        'ref/docker',
        'ref/multi',
        'ref/oci',
      ]);
      const out = join(work, 'pulled');
      await skopeo([
        'copy',
        '--src-tls-verify=false',
        '--src-creds',
        `${ours.username}:${ours.password}`,
        `docker://${ours.host}/ref/oci:v1`,
        `oci:${out}:v1`,
      ]);
      const inspect = JSON.parse(
        await skopeo([
          'inspect',
          '--tls-verify=false',
          '--creds',
          `${ours.username}:${ours.password}`,
          `docker://${ours.host}/ref/docker:v2s2`,
        ]),
      ) as { Layers: string[] };
      expect(inspect.Layers).toEqual(oci.layerDigests);
      const fsck = (await (
        await fetch(`${ours.url}/admin/v1/fsck`, {
          headers: { authorization: basicAuth(ours.username, ours.password) },
        })
      ).json()) as { problems: unknown[]; blobsChecked: number };
      expect(fsck.problems).toEqual([]);
      expect(fsck.blobsChecked).toBeGreaterThan(8);
    } finally {
      await ours.stop();
    }
  });

  it('the reference serves what ours wrote', async () => {
    const dataDir = join(work, 'from-ours');
    const img = await writeOciLayout(join(work, 'img-ours'), { tag: 'v1', layers: 2 });
    const ours = await startRegistryProcess({ dataDir });
    try {
      await skopeo([
        'copy',
        '--dest-tls-verify=false',
        '--dest-creds',
        `${ours.username}:${ours.password}`,
        `oci:${img.dir}:v1`,
        `docker://${ours.host}/mine/img:v1`,
      ]);
    } finally {
      await ours.stop();
    }
    const ref = await startReferenceRegistry({ dataDir });
    try {
      const inspect = JSON.parse(
        await skopeo([
          'inspect',
          '--tls-verify=false',
          '--creds',
          `${ref.username}:${ref.password}`,
          `docker://${ref.host}/mine/img:v1`,
        ]),
      ) as { Digest: string; Layers: string[] };
      expect(inspect.Digest).toBe(img.manifestDigest);
      expect(inspect.Layers).toEqual(img.layerDigests);
      await skopeo([
        'copy',
        '--src-tls-verify=false',
        '--src-creds',
        `${ref.username}:${ref.password}`,
        `docker://${ref.host}/mine/img:v1`,
        `oci:${join(work, 'ref-pulled')}:v1`,
      ]);
    } finally {
      await ref.stop();
    }
  });
});
