import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPrompts, scriptedPrompts } from '../../../src/cli/prompts.js';
import { FakeEngine } from '../../../src/docker/fake-engine.js';
import { down } from '../../../src/ops/down.js';
import { logs } from '../../../src/ops/logs.js';
import { status } from '../../../src/ops/status.js';
import { up } from '../../../src/ops/up.js';
import { capturedOutput, rejection, stackFixture, type StackFixture } from './fixture.js';

let fx: StackFixture;
let engine: FakeEngine;

beforeEach(async () => {
  fx = await stackFixture();
  engine = new FakeEngine();
  engine.images.set('regctl-test/traefik:v3.6', { id: 'sha256:traefik', labels: {} });
  engine.images.set('regctl-test/node:20', { id: 'sha256:base', labels: {} });
  await up({ dir: fx.dir, out: capturedOutput().out, engine, skipProbes: true, packageDir: fx.pkg });
});

afterEach(async () => {
  await fx.cleanup();
});

describe('down', () => {
  it('removes containers (Traefik last) and the network, keeps the data volume', async () => {
    const before = engine.calls.length;
    const result = await down({ dir: fx.dir, out: capturedOutput().out, engine, prompts: scriptedPrompts([]) });
    expect(engine.calls.slice(before)).toEqual([
      'stop:fx-registry',
      'remove:fx-registry',
      'stop:fx-ui',
      'remove:fx-ui',
      'stop:fx-traefik',
      'remove:fx-traefik',
      'remove-network:fx_proxy',
    ]);
    expect(result.volumesKept).toEqual(['fx_registry-data']);
    expect(engine.volumes.has('fx_registry-data')).toBe(true);
  });

  it('asks before deleting volumes, and refuses without a terminal unless --yes', async () => {
    const err = await rejection(
      down({ dir: fx.dir, out: capturedOutput().out, engine, prompts: createPrompts(false), volumes: true }),
    );
    expect(err.code).toBe('USAGE');
    expect(err.hint).toContain('--yes');
    expect(engine.containers.size).toBe(3);

    const declined = await rejection(
      down({ dir: fx.dir, out: capturedOutput().out, engine, prompts: scriptedPrompts([false]), volumes: true }),
    );
    expect(declined.code).toBe('CANCELLED');
    expect(engine.volumes.has('fx_registry-data')).toBe(true);

    const result = await down({
      dir: fx.dir,
      out: capturedOutput().out,
      engine,
      prompts: scriptedPrompts([]),
      volumes: true,
      yes: true,
    });
    expect(result.volumesRemoved).toEqual(['fx_registry-data']);
    expect(engine.volumes.size).toBe(0);
  });
});

describe('down with a regctl.yaml that no longer validates', () => {
  it('takes the project name from .env and still removes the stack', async () => {
    await writeFile(join(fx.dir, 'regctl.yaml'), 'version: 1\nports: { http: eighty }\n');
    const { out, text } = capturedOutput();
    const result = await down({ dir: fx.dir, out, engine, prompts: scriptedPrompts([]) });
    expect(text()).toContain('taking the project name fx from .env');
    expect(result.containersRemoved.sort()).toEqual(['fx-registry', 'fx-traefik', 'fx-ui']);
    expect(result.networkRemoved).toBe(true);
    expect(engine.containers.size).toBe(0);
  });
});

describe('status', () => {
  it('reports every service healthy after up, and the data volume size', async () => {
    engine.volumes.get('fx_registry-data')!.size = 12345;
    const s = await status({ dir: fx.dir, engine });
    expect(s.healthy).toBe(true);
    expect(s.services.map((x) => [x.service, x.state, x.health])).toEqual([
      ['traefik', 'running', 'healthy'],
      ['registry', 'running', 'healthy'],
      ['ui', 'running', 'healthy'],
    ]);
    expect(s.volumes).toEqual([{ name: 'fx_registry-data', sizeBytes: 12345 }]);
    expect(s.urls.registry).toBe(`http://registry.example.test:${fx.ports.http}`);
  });

  it('reports a stopped or missing service as not healthy', async () => {
    await engine.stopContainer('fx-ui');
    await engine.removeContainer('fx-registry');
    const s = await status({ dir: fx.dir, engine });
    expect(s.healthy).toBe(false);
    expect(s.services.find((x) => x.service === 'ui')?.state).toBe('exited');
    expect(s.services.find((x) => x.service === 'registry')?.state).toBe('missing');
  });
});

describe('logs', () => {
  it("prints one service's tail, or all services prefixed", async () => {
    engine.logText.set('fx-registry', 'r1\nr2\nr3\n');
    engine.logText.set('fx-ui', 'u1\n');
    const one: string[] = [];
    await logs({ dir: fx.dir, engine, service: 'registry', tail: 2, write: (l) => one.push(l) });
    expect(one).toEqual(['r2', 'r3']);
    const all: string[] = [];
    await logs({ dir: fx.dir, engine, write: (l) => all.push(l) });
    expect(all.sort()).toEqual(['registry | r1', 'registry | r2', 'registry | r3', 'ui       | u1']);
  });

  it('names the services when asked for one that does not exist', async () => {
    const err = await rejection(logs({ dir: fx.dir, engine, service: 'db', write: () => undefined }));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.hint).toBe('services: traefik, registry, ui');
  });
});
