import { logUniformSizes, smallBlob } from '../lib/data.js';
import { sha256 } from '../lib/http.js';
import { runAll, runForDuration } from '../lib/load.js';
import type { MetricSpec } from '../lib/model.js';
import type { PhaseSpec, Step } from '../lib/phase.js';
import { OCI_MANIFEST, getManifest, imageManifest, pushBlobMonolithic, putManifest } from '../lib/registry-ops.js';
import type { RegistryName } from '../lib/servers.js';
import type { Sizes } from '../lib/sizes.js';
import { FLAT_RULE, bytes, isFlat, toMiB } from '../lib/stats.js';
import type { Bytes } from '../lib/stats.js';
import type { ProcSample } from '../lib/proc.js';
import type { Credentials } from './context.js';

/**
 * The resident set of each registry after each round, kept in bytes as /proc gives it, and the phase's verdict
 * on it: `flat` is 1 when the last round's VmRSS is within {@link FLAT_RULE} of the first's.
 */
export class RssSeries {
  private readonly series = new Map<RegistryName, Bytes[]>();

  record(name: RegistryName, sample: ProcSample): void {
    const list = this.series.get(name) ?? [];
    list.push(bytes(sample.rssBytes));
    this.series.set(name, list);
  }

  verdict(name: RegistryName): { flat: number; growthMiB: number } {
    const s = this.series.get(name) ?? [];
    const growth = s.length > 1 ? toMiB(bytes((s[s.length - 1] as Bytes) - (s[0] as Bytes))) : 0;
    return { flat: isFlat(s) ? 1 : 0, growthMiB: growth };
  }
}

export const FLAT_LABEL = `Resident set flat across rounds (1 = yes: last ≤ first + ${FLAT_RULE.tolerance * 100} % + ${toMiB(FLAT_RULE.slack)} MiB)`;

/**
 * The same mixed round run several times on the already-used server: small blobs pushed, then manifests PUT
 * and GET at concurrency 16. The resident set after each round shows whether memory grows with work done.
 */
export function repeatPhase(sizes: Sizes, creds: Credentials, pool: Buffer): PhaseSpec {
  const list = logUniformSizes(sizes.repeatBlobCount, sizes.smallBlobMin, sizes.smallBlobMax, 7);
  const series = new RssSeries();
  const round =
    (r: number): Step =>
    async (server) => {
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
        series.record(server.name, sample);
        return {
          [`round${r}.rssMiB`]: toMiB(bytes(sample.rssBytes)),
          [`round${r}.peakMiB`]: toMiB(bytes(sample.peakRssBytes)),
          [`round${r}.getRps`]: gets.requestsPerSecond,
        };
      } finally {
        c.close();
      }
    };
  const verdict: Step = async (server) => series.verdict(server.name);
  const steps: Step[] = [];
  const metrics: MetricSpec[] = [];
  for (let r = 1; r <= sizes.repeatRounds; r++) {
    steps.push(round(r));
    metrics.push({ id: `round${r}.rssMiB`, label: `VmRSS after round ${r}`, unit: 'MiB', better: 'lower' });
  }
  steps.push(verdict);
  metrics.push(
    {
      id: 'growthMiB',
      label: `VmRSS growth from round 1 to round ${sizes.repeatRounds}`,
      unit: 'MiB',
      better: 'lower',
    },
    { id: 'flat', label: FLAT_LABEL, unit: 'bool', better: 'higher', targets: [{ kind: 'min', value: 1 }] },
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
