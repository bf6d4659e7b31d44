/**
 * Soak (long): `regctl serve` as a child process, 64 clients mixing pulls and pushes for SOAK_DURATION
 * (default 30m), sampled every 5 s. Zero errors, RSS flat after warm-up, no descriptor leak. The figures go
 * to docs/reliability.md. Run with `npm run test:long` (SOAK_DURATION=2m for a short proof run).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, expect, it } from 'vitest';
import { basicAuth } from '../integration/reliability/helpers/client.js';
import { seedFromEnv } from '../integration/reliability/helpers/rng.js';
import { startServe, type ServeProcess } from '../integration/reliability/helpers/serve-process.js';
import { runSoak, soakMarkdown } from '../integration/reliability/helpers/soak.js';
import { durationMs, writeReportSection } from './report.js';

const DURATION = durationMs(process.env.SOAK_DURATION, 30 * 60_000);
const CLIENTS = Number(process.env.SOAK_CLIENTS ?? 64);
const seed = seedFromEnv('SOAK_SEED');
let dir: string | undefined;
let srv: ServeProcess | undefined;

afterAll(async () => {
  await srv?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it(`soak: ${CLIENTS} clients for ${DURATION / 60_000} min against regctl serve: no errors, flat RSS, no fd leak`, { timeout: DURATION + 600_000 }, async () => {
  dir = await mkdtemp(join(tmpdir(), 'regctl-soak-'));
  const password = randomBytes(12).toString('hex');
  await writeFile(join(dir, 'htpasswd'), `soak:${bcrypt.hashSync(password, 10)}\n`, { mode: 0o600 });
  srv = await startServe(['--data', join(dir, 'data'), '--htpasswd', join(dir, 'htpasswd'), '--log-level', 'warn']);
  console.log(`soak seed ${seed}, ${CLIENTS} clients, ${DURATION / 1000} s, server pid ${srv.pid} at ${srv.url}`);
  const report = await runSoak({ url: srv.url, authorization: basicAuth('soak', password), pid: srv.pid, clients: CLIENTS, durationMs: DURATION, seed });
  const how = `direct to \`regctl serve\` (child process, no Traefik in front), seed ${seed}, ${new Date().toISOString().slice(0, 16)}Z`;
  const md = soakMarkdown(report, how);
  console.log(md);
  if (report.errors.length > 0) console.log(report.errors.join('\n'));
  await writeReportSection(DURATION >= 30 * 60_000 ? 'soak' : 'soak-short', md);
  expect(report.errorCount).toBe(0);
  expect(report.pulls).toBeGreaterThan(0);
  expect(report.pushes).toBeGreaterThan(0);
  // Flat: single samples swing with 1 MiB stream buffers and V8's collector, so compare medians of the middle
  // and last thirds after warm-up; and no descriptor growth beyond the clients' own connections.
  expect(report.rss.lastMedianMiB).toBeLessThan(report.rss.middleMedianMiB * 1.2);
  expect(report.fds.last).toBeLessThanOrEqual(report.fds.warm + 16);
  expect(srv.output()).not.toContain('"level":"error"');
});
