import { logUniformSizes, smallBlob } from '../lib/data.js';
import { sha256 } from '../lib/http.js';
import { runAll, runForDuration } from '../lib/load.js';
import type { MetricSpec } from '../lib/model.js';
import type { PhaseSpec, Step } from '../lib/phase.js';
import { OCI_MANIFEST, getManifest, imageManifest, pushBlobMonolithic, putManifest } from '../lib/registry-ops.js';
import type { RegistryName } from '../lib/servers.js';
import type { Sizes } from '../lib/sizes.js';
import { isFlat } from '../lib/stats.js';
import type { Credentials } from './context.js';

const MiB = 1024 * 1024;

/**
 * The same mixed round run several times on the already-used server: small blobs pushed, then manifests PUT
 * and GET at concurrency 16. The resident set after each round shows whether memory grows with work done.
 */
export function repeatPhase(sizes: Sizes, creds: Credentials, pool: Buffer): PhaseSpec {
  const list = logUniformSizes(sizes.repeatBlobCount, sizes.smallBlobMin, sizes.smallBlobMax, 7);
  const series = new Map<RegistryName, number[]>();
  const round = (r: number): Step => async (server) => {
    const c = server.client(creds, 16);
    const repo = `bench/repeat-${r}`;
    try {
      const blobs = list.map((size, i) => {
        const data = smallBlob(pool, size, `${server.name}-repeat-${r}-${i}`);
        return { data, digest: sha256(data), size };
      });
      await runAll(sizes.smallBlobConcurrency, blobs, (b) => pushBlobMonolithic(c, repo, b.data, b.digest));
      const [config, layer] = blobs as [(typeof blobs)[0], (typeof blobs)[0]];
      const ms = sizes.repeatSeconds * 1000;
      await runForDuration(16, ms, async (seq) => {
        const body = imageManifest(config, [layer], { 'org.regctl.bench.repeat': `${r}-${seq}` });
        await putManifest(c, repo, `r${seq}`, body, OCI_MANIFEST, sha256(body));
      });
      const base = imageManifest(config, [layer]);
      const digest = await putManifest(c, repo, 'base', base, OCI_MANIFEST);
      const gets = await runForDuration(16, ms, () => getManifest(c, repo, 'base', digest));
      const sample = await server.sample();
      const rss = sample.rssBytes / MiB;
      const list_ = series.get(server.name) ?? [];
      list_.push(rss);
      series.set(server.name, list_);
      return { [`round${r}.rssMiB`]: rss, [`round${r}.peakMiB`]: sample.peakRssBytes / MiB, [`round${r}.getRps`]: gets.requestsPerSecond };
    } finally {
      c.close();
    }
  };
  const verdict: Step = async (server) => {
    const s = series.get(server.name) ?? [];
    return { flat: isFlat(s) ? 1 : 0, growthMiB: s.length > 1 ? (s[s.length - 1] as number) - (s[0] as number) : 0 };
  };
  const steps: Step[] = [];
  const metrics: MetricSpec[] = [];
  for (let r = 1; r <= sizes.repeatRounds; r++) {
    steps.push(round(r));
    metrics.push({ id: `round${r}.rssMiB`, label: `VmRSS after round ${r}`, unit: 'MiB', better: 'lower' });
  }
  steps.push(verdict);
  metrics.push(
    { id: 'growthMiB', label: `VmRSS growth from round 1 to round ${sizes.repeatRounds}`, unit: 'MiB', better: 'lower' },
    { id: 'flat', label: 'Resident set flat across rounds (1 = yes: last ≤ first + 10 % + 8 MiB)', unit: 'bool', better: 'higher', targets: [{ kind: 'min', value: 1 }] },
  );
  return {
    id: 'repeat',
    title: `Repeated rounds (${sizes.repeatRounds}): is memory flat?`,
    description:
      `Each round pushes ${sizes.repeatBlobCount} small blobs to a new repository, then PUTs new manifests for ` +
      `${sizes.repeatSeconds} s and GETs one for ${sizes.repeatSeconds} s at concurrency 16; the server's VmRSS is ` +
      'read after each round. Rounds alternate between the registries.',
    steps,
    metrics,
  };
}
