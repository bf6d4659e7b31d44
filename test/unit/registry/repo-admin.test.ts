import { Readable } from 'node:stream';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { scriptedPrompts } from '../../../src/cli/prompts.js';
import { maintenanceCommand, repoCommand } from '../../../src/cli/commands/repo.js';
import type { CliContext } from '../../../src/cli/context.js';
import { parsePolicies, type Policies } from '../../../src/common/policies.js';
import { gc } from '../../../src/ops/gc.js';
import { capturedOutput } from '../ops/fixture.js';
import { authHeaders, captureOutput, pushImage, startFixture, type Fixture } from '../../helpers/day-two-fixture.js';

function policies(raw: unknown): Policies {
  const r = parsePolicies(raw);
  if (!r.policies) throw new Error(JSON.stringify(r.problems));
  return r.policies;
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

describe('whole-repository delete and maintenance mode', () => {
  let fx: Fixture | undefined;
  afterEach(async () => {
    await fx?.close();
    fx = undefined;
  });

  function cli(answers: unknown[] = [], interactive = false): { ctx: CliContext; text: () => string } {
    const { out, text } = capturedOutput();
    const prompts = { ...scriptedPrompts(answers as never[]), interactive };
    return { ctx: { out, prompts, cwd: fx!.stackDir, env: fx!.env, stdin: Readable.from([]) }, text };
  }

  it('previews, asks, refuses immutable tags without the override, and leaves nested repositories alone', async () => {
    fx = await startFixture({ policies: policies({ immutableTags: [{ repos: 'apps/web', tags: 'v1' }] }) });
    const web = await pushImage(fx.url, 'apps/web', 'v1', [Buffer.from('web layer one')], fx.admin);
    await pushImage(fx.url, 'apps/web', 'v2', [Buffer.from('web layer two')], fx.admin);
    await pushImage(fx.url, 'apps/web/api', 'v1', [Buffer.from('api layer')], fx.admin);
    const repos = join(fx.dataDir, 'docker/registry/v2/repositories');

    const dry = cli();
    await repoCommand(dry.ctx).parseAsync(['delete', 'apps/web', '--dry-run'], { from: 'user' });
    expect(dry.text()).toContain('apps/web: 2 tags (v1, v2)');
    expect(dry.text()).toContain('2 manifests referencing');
    expect(dry.text()).toContain('immutable tags: v1 (--override-immutable)');

    await expect(repoCommand(cli().ctx).parseAsync(['delete', 'apps/web', '--yes'], { from: 'user' })).rejects.toThrow(
      /apps\/web holds immutable tags \(v1\): pass overrideImmutable/,
    );
    const direct = await fetch(`${fx.url}/admin/v1/repository-delete`, {
      method: 'POST',
      headers: authHeaders(fx.admin),
      body: JSON.stringify({ name: 'apps/web', dryRun: false }),
    });
    expect(direct.status).toBe(403);
    expect(await direct.text()).toContain('apps/web holds immutable tags (v1)');
    const override = ['delete', 'apps/web', '--override-immutable'];
    await expect(repoCommand(cli().ctx).parseAsync(override, { from: 'user' })).rejects.toThrow(
      'not deleting apps/web without confirmation',
    );
    await expect(repoCommand(cli([false], true).ctx).parseAsync(override, { from: 'user' })).rejects.toThrow(
      'apps/web was not deleted',
    );
    expect(await exists(join(repos, 'apps/web/_manifests'))).toBe(true);

    const done = cli();
    await repoCommand(done.ctx).parseAsync(['delete', 'apps/web', '--yes', '--override-immutable'], { from: 'user' });
    expect(done.text()).toContain('Deleted apps/web: 2 tags, 2 manifests');
    const catalog = await fetch(`${fx.url}/v2/_catalog`, { headers: authHeaders(fx.admin) });
    expect(((await catalog.json()) as { repositories: string[] }).repositories).toEqual(['apps/web/api']);
    expect(await exists(join(repos, 'apps/web/_manifests'))).toBe(false);
    expect(await exists(join(repos, 'apps/web/_layers'))).toBe(false);
    expect(await exists(join(repos, 'apps/web/api/_manifests/tags/v1/current/link'))).toBe(true);
    expect(await exists(join(repos, 'apps/web/api/_layers'))).toBe(true);
    const api = await fetch(`${fx.url}/v2/apps/web/api/manifests/v1`, { headers: authHeaders(fx.admin) });
    expect(api.status).toBe(200);
    const collected = await gc({
      dir: fx.stackDir,
      dryRun: false,
      deleteUntagged: false,
      graceMs: 0,
      out: captureOutput(),
      env: fx.env,
    });
    expect(collected.report.deleted.map((d) => d.digest)).toEqual(
      expect.arrayContaining([web.digest, web.blobs[1] as string]),
    );
    await expect(repoCommand(cli().ctx).parseAsync(['delete', 'apps/web', '--yes'], { from: 'user' })).rejects.toThrow(
      /answered 404/,
    );
  });

  it('maintenance on makes the registry read-only online, off lifts it', async () => {
    fx = await startFixture();
    const on = cli();
    await maintenanceCommand(on.ctx).parseAsync(['on', '--for', '1h'], { from: 'user' });
    expect(on.text()).toMatch(/Maintenance mode is on until \d{4}-/);
    const refused = await pushImage(fx.url, 'apps/x', 'v1', [Buffer.from('x')], fx.admin).catch(
      (e: Error) => e.message,
    );
    expect(refused).toMatch(/503/);
    const status = cli();
    await maintenanceCommand(status.ctx).parseAsync(['status', '--json'], { from: 'user' });
    expect(JSON.parse(status.text())).toMatchObject({ active: true });
    await maintenanceCommand(cli().ctx).parseAsync(['off'], { from: 'user' });
    await pushImage(fx.url, 'apps/x', 'v1', [Buffer.from('x')], fx.admin);
    await expect(maintenanceCommand(cli().ctx).parseAsync(['sideways'], { from: 'user' })).rejects.toThrow(
      'maintenance sideways: the action is on, off or status',
    );
  }, 20_000);
});
