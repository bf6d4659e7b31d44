/**
 * The OCI distribution-spec conformance program against `regctl serve` with auth on, every workflow enabled
 * (pull, push, content discovery, content management, plus upload cancel, tag parameters and digest headers).
 * Only sparse manifests stay off: the registry requires referenced blobs to exist (MANIFEST_BLOB_UNKNOWN).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peerAvailable, failureReport, runConformance, OUR_CONFORMANCE_SETTINGS } from '../../helpers/peers.js';
import { startRegistryProcess, type RegistryProcess } from '../../helpers/serve-process.js';

describe.skipIf(!peerAvailable('conformance'))('OCI conformance against regctl serve', () => {
  let reg: RegistryProcess;
  let resultsDir: string;
  beforeAll(async () => {
    reg = await startRegistryProcess();
    resultsDir = await mkdtemp(join(tmpdir(), 'regctl-conformance-'));
  });
  afterAll(async () => {
    await reg?.stop();
    if (resultsDir) await rm(resultsDir, { recursive: true, force: true });
  });

  it('passes every enabled test, and the reports say so', async () => {
    const run = await runConformance({
      registry: reg.host,
      username: reg.username,
      password: reg.password,
      resultsDir,
      env: OUR_CONFORMANCE_SETTINGS,
    });
    const failed = Object.entries({ ...run.apis, ...run.data }).filter(([, v]) => v !== 'Pass' && v !== 'Disabled');
    expect(failed, failureReport(run)).toEqual([]);
    expect(Object.keys(run.apis)).toEqual(
      expect.arrayContaining([
        'Ping',
        'Blob chunked',
        'Blob mount',
        'Manifest put by tag',
        'Tag delete',
        'Manifest delete',
        'Referrers',
        'Tag listing',
      ]),
    );
    expect(
      Object.entries({ ...run.apis, ...run.data })
        .filter(([, v]) => v === 'Disabled')
        .map(([k]) => k),
    ).toEqual(['Sparse Manifests']);
    expect(run.exitCode).toBe(0);
    const junit = await readFile(join(resultsDir, 'junit.xml'), 'utf8');
    const failures = [...junit.matchAll(/failures="(\d+)"/g)].map((m) => Number(m[1]));
    const errors = [...junit.matchAll(/errors="(\d+)"/g)].map((m) => Number(m[1]));
    expect(failures.length).toBeGreaterThan(0);
    expect(failures.every((n) => n === 0)).toBe(true);
    expect(errors.every((n) => n === 0)).toBe(true);
    expect(junit).not.toContain('<failure');
    const html = await readFile(join(resultsDir, 'report.html'), 'utf8');
    expect(html).toContain('class="result green"');
    expect(html).not.toContain('class="result red"');
  });
});
