/**
 * The soak harness in the default suite, short: 16 clients for 20 s against `regctl serve`, GCs started as jobs
 * every 4 s while they push and pull. No request fails, every GC finishes, and the descriptors counted under load
 * do not grow past the warm-up's level (SOAK_CRITERIA's margin). The
 * 30-minute soak through Traefik is `test/long/soak.test.ts`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, describe, expect, it } from 'vitest';
import { basicAuth } from '../../helpers/auth.js';
import { seedFromEnv } from './helpers/rng.js';
import { builtCliPresent, startServe, type ServeProcess } from '../../helpers/serve-process.js';
import { runSoak } from './helpers/soak.js';

describe.skipIf(!builtCliPresent())('soak, short (needs npm run build)', () => {
  let dir: string | undefined;
  let srv: ServeProcess | undefined;
  afterAll(async () => {
    await srv?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(
    '16 clients for 20 s with GC jobs every 4 s: no failure, every GC done, no descriptor growth under load',
    { timeout: 120_000 },
    async () => {
      dir = await mkdtemp(join(tmpdir(), 'regctl-soak-smoke-'));
      const password = randomBytes(12).toString('hex');
      await writeFile(join(dir, 'htpasswd'), `soak:${bcrypt.hashSync(password, 8)}\n`, { mode: 0o600 });
      srv = await startServe(['--data', join(dir, 'data'), '--htpasswd', join(dir, 'htpasswd'), '--log-level', 'warn']);
      const seed = seedFromEnv('SOAK_SEED');
      const report = await runSoak({
        url: srv.url,
        authorization: basicAuth('soak', password),
        watch: [{ name: 'registry', pid: srv.pid }],
        clients: 16,
        durationMs: 20_000,
        sampleEveryMs: 1000,
        gcEveryMs: 4000,
        seed,
        // 20 s is too short for an RSS trend; descriptors: the first 5 s under load are the warm-up (see SOAK_CRITERIA).
        criteria: { fds: { warmupS: 5, margin: 16, minSamples: 3 } },
      });
      console.log(
        `soak smoke, seed ${seed}: descriptors under load ${JSON.stringify(report.fdVerdict)}; ${report.fds.afterLoad} after the clients stopped`,
      );
      expect(report.errors, `seed ${seed}`).toEqual([]);
      expect(report.pulls).toBeGreaterThan(0);
      expect(report.pushes).toBeGreaterThan(0);
      expect(report.gcs).toBeGreaterThanOrEqual(2);
      expect(report.samples.length).toBeGreaterThanOrEqual(15);
      expect(report.fdVerdict.failures).toEqual([]);
      expect(srv.output()).not.toContain('"level":"error"');
    },
  );
});
