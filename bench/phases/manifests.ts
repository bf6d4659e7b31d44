import { sha256 } from '../lib/http.js';
import { runForDuration } from '../lib/load.js';
import type { MetricSpec } from '../lib/model.js';
import type { Figures, PhaseSpec, Step } from '../lib/phase.js';
import {
  OCI_MANIFEST,
  getManifest,
  headManifest,
  imageManifest,
  leanManifestLoad,
  pushSmallBlob,
  putManifest,
} from '../lib/registry-ops.js';
import type { RegistryName } from '../lib/servers.js';
import type { Sizes } from '../lib/sizes.js';
import type { Target } from '../lib/stats.js';
import type { Credentials } from './context.js';

const REPO = 'bench/manifests';

/** `get-lean`: GET through the lean load client (autocannon), for figures a CPU-hungry client would bind. */
export type ManifestOp = 'put' | 'get' | 'head' | 'get-lean';
type Op = ManifestOp;

interface Base {
  config: { digest: string; size: number };
  layer: { digest: string; size: number };
  manifest: Buffer;
  digest: string;
}

/**
 * Manifest PUT, GET and HEAD at each concurrency for a fixed time, Basic auth on every request. The PUT target
 * (c=16, ≥ 3× the reference) is stated at bcrypt cost 5, what `htpasswd -B` writes: `putTarget` says whether
 * this run is at that cost. `cells` picks some (operation, concurrency) cells instead of every operation at every
 * concurrency of `sizes`.
 */
export function manifestPhase(
  sizes: Sizes,
  creds: Credentials,
  opts: { putTarget: boolean; cells?: [ManifestOp, number][] } = { putTarget: true },
): PhaseSpec {
  const bases = new Map<RegistryName, Base>();
  const setup: Step = async (server) => {
    const c = server.client(creds, 1);
    try {
      const config = await pushSmallBlob(
        c,
        REPO,
        Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })),
      );
      const layer = await pushSmallBlob(c, REPO, Buffer.from(`layer of ${server.name}\n`.repeat(64)));
      const manifest = imageManifest(config, [layer]);
      const digest = await putManifest(c, REPO, 'base', manifest, OCI_MANIFEST);
      bases.set(server.name, { config, layer, manifest, digest });
      return {};
    } finally {
      c.close();
    }
  };
  const cell =
    (op: Op, concurrency: number): Step =>
    async (server) => {
      const base = bases.get(server.name);
      if (!base) throw new Error('manifest setup did not run');
      const c = server.client(creds, concurrency);
      try {
        const ms = sizes.manifestSeconds * 1000;
        const key = `${op}.c${concurrency}`;
        if (op === 'get-lean') {
          const target = { repo: REPO, reference: 'base', manifest: base.manifest, digest: base.digest };
          const lean = await leanManifestLoad(c, target, concurrency, sizes.manifestSeconds);
          return { [`${key}.rps`]: lean.requestsPerSecond, [`${key}.requests`]: lean.requests };
        }
        const result =
          op === 'put'
            ? await runForDuration(concurrency, ms, async (seq) => {
                const body = imageManifest(base.config, [base.layer], {
                  'org.regctl.bench.seq': `${concurrency}-${seq}`,
                });
                await putManifest(c, REPO, `put-c${concurrency}-${seq}`, body, OCI_MANIFEST, sha256(body));
              })
            : op === 'get'
              ? await runForDuration(concurrency, ms, () => getManifest(c, REPO, 'base', base.digest))
              : await runForDuration(concurrency, ms, () =>
                  headManifest(c, REPO, 'base', base.digest, base.manifest.length),
                );
        const out: Figures = {
          [`${key}.rps`]: result.requestsPerSecond,
          [`${key}.p50`]: result.latency.p50,
          [`${key}.p99`]: result.latency.p99,
          [`${key}.requests`]: result.requests,
        };
        return out;
      } finally {
        c.close();
      }
    };
  const steps: Step[] = [setup];
  const metrics: MetricSpec[] = [];
  const chosen: [ManifestOp, number][] =
    opts.cells ??
    sizes.concurrencies.flatMap((c) => (['put', 'get', 'head'] as const).map((op): [ManifestOp, number] => [op, c]));
  for (const [op, concurrency] of chosen) {
    steps.push(cell(op, concurrency));
    const key = `${op}.c${concurrency}`;
    if (op === 'get-lean') {
      const label = `GET c=${concurrency} requests/s, lean client`;
      metrics.push({ id: `${key}.rps`, label, unit: 'req/s', better: 'higher' });
      continue;
    }
    const name = `${op.toUpperCase()} c=${concurrency}`;
    const rpsTargets: Target[] =
      op === 'put'
        ? concurrency === 16 && opts.putTarget
          ? [{ kind: 'ratio-min', value: 3 }]
          : []
        : [{ kind: 'ratio-min', value: 10 }];
    const p99Targets: Target[] = op === 'put' ? [] : [{ kind: 'below-reference' }];
    metrics.push(
      { id: `${key}.rps`, label: `${name} requests/s`, unit: 'req/s', better: 'higher', targets: rpsTargets },
      { id: `${key}.p50`, label: `${name} p50`, unit: 'ms', better: 'lower' },
      { id: `${key}.p99`, label: `${name} p99`, unit: 'ms', better: 'lower', targets: p99Targets },
    );
  }
  return {
    id: 'manifests',
    title: `Manifests: PUT, GET, HEAD at concurrency ${sizes.concurrencies.join(', ')} (${sizes.manifestSeconds} s each)`,
    description:
      `Each cell runs for ${sizes.manifestSeconds} s with that many keep-alive connections, Basic auth on every request. ` +
      'PUT sends a new OCI image manifest each time (a distinct annotation) under a new tag and checks 201 and ' +
      "Docker-Content-Digest; GET fetches one tagged manifest and checks status, digest header and the body's " +
      'sha256; HEAD checks status, digest header and Content-Length. The registries alternate cell by cell.',
    steps,
    metrics,
  };
}
