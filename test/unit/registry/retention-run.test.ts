import { Readable } from 'node:stream';
import { utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { scriptedPrompts } from '../../../src/cli/prompts.js';
import { retentionCommand } from '../../../src/cli/commands/retention.js';
import { parsePolicies, type Policies } from '../../../src/common/policies.js';
import { PolicyHolder } from '../../../src/registry/policy/holder.js';
import { RetentionSchedule } from '../../../src/registry/policy/retention-schedule.js';
import { capturedOutput } from '../ops/fixture.js';
import { pushImage, startFixture, authHeaders, type Fixture } from '../../helpers/day-two-fixture.js';

const H = 3600_000;

function policies(raw: unknown): Policies {
  const r = parsePolicies(raw);
  if (!r.policies) throw new Error(JSON.stringify(r.problems));
  return r.policies;
}

const RULES = { retention: { rules: [{ repos: 'ci/**', keepLast: 2 }] } };

/** Four tags a (oldest) … d, each on its own image, pushed an hour apart. */
async function plant(fx: Fixture): Promise<void> {
  const tags = ['a', 'b', 'c', 'd'];
  for (const [i, tag] of tags.entries()) {
    await pushImage(fx.url, 'ci/app', tag, [Buffer.from(`layer ${tag}`)], fx.admin);
    const link = join(fx.dataDir, 'docker/registry/v2/repositories/ci/app/_manifests/tags', tag, 'current/link');
    const t = new Date(Date.now() - (tags.length - i) * H);
    await utimes(link, t, t);
  }
}

async function tags(fx: Fixture): Promise<string[]> {
  const res = await fetch(`${fx.url}/v2/ci/app/tags/list`, { headers: authHeaders(fx.admin) });
  return ((await res.json()) as { tags: string[] }).tags.sort();
}

describe('retention: schedule and command', () => {
  let fx: Fixture | undefined;
  afterEach(async () => {
    await fx?.close();
    fx = undefined;
  });

  it('a scheduled run applies the rules by itself, re-armed when the policies change, and logs what it removed', async () => {
    fx = await startFixture();
    await plant(fx);
    const logs: string[] = [];
    const p = policies(RULES);
    const holder = new PolicyHolder(undefined, () => undefined, { ...p, retention: { ...p.retention, dryRun: true } });
    const schedule = new RetentionSchedule(
      fx.server.app.store,
      holder,
      (level, msg, fields) => logs.push(JSON.stringify({ level, msg, ...fields })),
      async () => undefined,
    );
    schedule.start(); // no schedule: nothing runs
    await new Promise((r) => setTimeout(r, 100));
    expect(logs).toEqual([]);
    // A schedule (below the parser's minimum of 1m, to keep the test short) that only reports.
    (holder as unknown as { policies: Policies }).policies.retention.scheduleMs = 30;
    schedule.start();
    await expect.poll(() => logs.length, { timeout: 5000 }).toBeGreaterThan(0);
    expect(JSON.parse(logs[0] as string)).toMatchObject({ msg: 'retention', dryRun: true, removed: { tags: 2 } });
    expect(await tags(fx)).toEqual(['a', 'b', 'c', 'd']);
    // New policies (a reload) re-arm the timer with them: now it removes.
    const next = policies(RULES);
    next.retention.scheduleMs = 30;
    (holder as unknown as { listeners: ((p: Policies) => void)[] }).listeners.forEach((fn) => fn(next));
    (holder as unknown as { policies: Policies }).policies = next;
    await expect.poll(() => tags(fx as Fixture), { timeout: 5000 }).toEqual(['c', 'd']);
    await schedule.stop();
    expect(logs.some((l) => l.includes('"dryRun":false'))).toBe(true);
  });

  it('regctl retention --dry-run prints every decision; retention run removes; no rules is one clear line', async () => {
    fx = await startFixture({ policies: policies(RULES) });
    await plant(fx);
    const run = async (args: string[]) => {
      const { out, text } = capturedOutput();
      const ctx = { out, prompts: scriptedPrompts([]), cwd: fx!.stackDir, env: fx!.env, stdin: Readable.from([]) };
      await retentionCommand(ctx).parseAsync(args, { from: 'user' });
      return text();
    };
    const dry = await run(['--dry-run']);
    expect(dry).toMatch(/would remove tag a {32}beyond the newest 2 \(#4\)/);
    expect(dry).toMatch(/keep {9}tag d {32}among the newest 2 \(#1\)/);
    expect(dry).toContain('Would remove 2 tags and 2 manifests; kept 2 tags and 2 manifests');
    expect(await tags(fx)).toEqual(['a', 'b', 'c', 'd']);
    const json = JSON.parse(await run(['--json'])) as { report: { dryRun: boolean; removed: unknown } };
    expect(json.report).toMatchObject({ dryRun: true, removed: { tags: 2, manifests: 2 } });
    const done = await run(['run']);
    expect(done).toContain('Removed 2 tags and 2 manifests');
    expect(done).toContain('run regctl gc');
    expect(await tags(fx)).toEqual(['c', 'd']);
    await fx.close();

    fx = await startFixture();
    await expect(run(['--dry-run'])).rejects.toThrow(
      /^retention: the registry answered 400: .*no retention rules are configured \(policies\.retention\.rules in the config file\)/,
    );
  });
});
