import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { parseStackConfig, type StackConfig } from '../../../src/config/schema.js';
import { parseEvents } from '../../../src/common/events.js';
import { buildStackModel } from '../../../src/stack/build-model.js';
import { renderStack } from '../../../src/stack/render.js';

const EVENTS = { endpoints: [{ name: 'ci', url: 'https://hooks.example.com/r', secretFile: 'hook-secret' }] };

function config(input: Record<string, unknown> = {}): StackConfig {
  const result = parseStackConfig({ version: 1, ...input });
  if (!result.config) throw new Error(JSON.stringify(result.problems));
  return result.config;
}

describe('events in regctl.yaml', () => {
  test('each mistake is one problem at its field', () => {
    const result = parseStackConfig({
      version: 1,
      events: { endpoints: [{ name: 'ci', url: 'http://169.254.169.254/', actions: ['push', 'boom'] }] },
    });
    expect(result.problems?.map((p) => `${p.path}: ${p.message}`)).toEqual([
      'events.endpoints.0.url: 169.254.169.254 is link-local (169.254.0.0/16, cloud metadata): refused unless allowPrivate: true',
      'events.endpoints.0.actions.1: "boom" is not an action (known: push, delete, tag-move, retention, gc, pull)',
    ]);
  });

  test('rendered to auth/registry.yaml without policies, and the registry gets --config', () => {
    const cfg = config({ events: EVENTS });
    const files = renderStack(cfg, { packageDir: '/pkg' });
    const doc = parse(files.find((f) => f.path === 'auth/registry.yaml')!.content) as Record<string, unknown>;
    expect(doc).toEqual({ events: EVENTS });
    expect(parseEvents(doc.events).problems).toEqual([]);
    const regctlYaml = parse(files.find((f) => f.path === 'regctl.yaml')!.content) as { events: unknown };
    expect(regctlYaml.events).toEqual(EVENTS);
    const registry = buildStackModel(cfg, 'dev').services.find((s) => s.name === 'registry')!;
    expect(registry.command?.slice(-2)).toEqual(['--config', '/auth/registry.yaml']);
  });
});
