import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import type { CliContext } from '../../../src/cli/context.js';
import { scriptedPrompts } from '../../../src/cli/prompts.js';
import { downCommand } from '../../../src/cli/commands/down.js';
import { logsCommand } from '../../../src/cli/commands/logs.js';
import { statusCommand } from '../../../src/cli/commands/status.js';
import { upCommand } from '../../../src/cli/commands/up.js';
import { FakeEngine } from '../../../src/docker/fake-engine.js';
import { capturedOutput, stackFixture, type StackFixture } from './fixture.js';

let fx: StackFixture;
let engine: FakeEngine;

function context(): { ctx: CliContext; text: () => string } {
  const { out, text } = capturedOutput();
  return { ctx: { out, prompts: scriptedPrompts([]), cwd: fx.dir, env: {}, stdin: Readable.from([]) }, text };
}

beforeEach(async () => {
  fx = await stackFixture();
  engine = new FakeEngine();
  engine.images.set('regctl-test/traefik:v3.6', { id: 'sha256:traefik', labels: {} });
  engine.images.set('regctl-test/node:20', { id: 'sha256:base', labels: {} });
  engine.images.set('regctl:test', { id: 'sha256:prebuilt', labels: {} });
});

afterEach(async () => {
  await fx.cleanup();
});

describe('stack commands on the fake engine', () => {
  it('status (cwd as the stack dir) prints each service, the URLs and the volume; --json prints one document', async () => {
    engine.networks.set('fx_proxy', {});
    engine.volumes.set('fx_registry-data', { labels: {}, size: 3 * 1024 * 1024 });
    const { ctx, text } = context();
    await statusCommand(ctx, () => engine).parseAsync([], { from: 'user' });
    expect(text()).toContain('Stack fx (dev): not healthy');
    expect(text()).toMatch(/registry\s+missing/);
    expect(text()).toContain(`Registry: http://registry.example.test:${fx.ports.http}`);
    expect(text()).toContain('Volume fx_registry-data: 3.00 MiB');

    const json = context();
    await statusCommand(json.ctx, () => engine).parseAsync(['--json'], { from: 'user' });
    const doc = JSON.parse(json.text()) as {
      project: string;
      healthy: boolean;
      volumes: { name: string; sizeBytes: number }[];
    };
    expect(doc.project).toBe('fx');
    expect(doc.healthy).toBe(false);
    expect(doc.volumes).toEqual([{ name: 'fx_registry-data', sizeBytes: 3 * 1024 * 1024 }]);
  });

  it('logs --tail N prints the last lines of one service', async () => {
    const { ctx } = context();
    engine.networks.set('fx_proxy', {});
    // A container made by hand stands for a running registry.
    await engine.createContainer({
      name: 'fx-registry',
      image: 'regctl:test',
      env: {},
      labels: { 'com.docker.compose.project': 'fx' },
      ports: [],
      mounts: [],
      restart: 'no',
      network: 'fx_proxy',
      aliases: [],
    });
    engine.logText.set('fx-registry', 'one\ntwo\nthree\n');
    const { ctx: c2, text } = context();
    await logsCommand(c2, () => engine).parseAsync(['registry', '--tail', '2', '--dir', fx.dir], { from: 'user' });
    expect(text()).toBe('two\nthree\n');
    await expect(
      logsCommand(ctx, () => engine).parseAsync(['registry', '--tail', 'many'], { from: 'user' }),
    ).rejects.toThrow();
  });

  it('down --volumes --yes removes the data volume', async () => {
    engine.volumes.set('fx_registry-data', { labels: { 'com.docker.compose.project': 'fx' }, size: 0 });
    const { ctx, text } = context();
    await downCommand(ctx, () => engine)
      .exitOverride()
      .parseAsync(['--dir', fx.dir, '--volumes', '--yes'], { from: 'user' });
    expect(engine.volumes.size).toBe(0);
    expect(text()).toContain('Volume fx_registry-data removed');
  });

  it('up --health-timeout is passed through: an unhealthy container fails the command', async () => {
    engine.healthOnStart.set('fx-ui', 'starting');
    const { ctx } = context();
    await expect(
      upCommand(ctx, () => engine).parseAsync(['--dir', fx.dir, '--health-timeout', '1'], { from: 'user' }),
    ).rejects.toMatchObject({
      code: 'HEALTH_TIMEOUT',
      message: expect.stringContaining('fx-ui not healthy after 1 s'),
    });
    expect(engine.containers.size).toBe(0);
  });
});
