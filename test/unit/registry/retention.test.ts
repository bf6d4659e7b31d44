import { describe, expect, it } from 'vitest';
import { parsePolicies, type Policies, type RetentionRule } from '../../../src/common/policies.js';
import { decideRetention, type RetentionInput } from '../../../src/registry/policy/retention.js';

const H = 3600_000;
const D = 24 * H;
const NOW = 1_000 * D;
const dg = (c: string): string => `sha256:${c.repeat(64)}`;

function policiesOf(raw: unknown): Policies {
  const r = parsePolicies(raw);
  if (!r.policies) throw new Error(JSON.stringify(r.problems));
  return r.policies;
}

function setup(rule: Record<string, unknown>, immutable: unknown[] = []): { policies: Policies; rule: RetentionRule } {
  const policies = policiesOf({ immutableTags: immutable, retention: { rules: [{ repos: 'ci/**', ...rule }] } });
  return { policies, rule: policies.retention.rules[0] as RetentionRule };
}

/** Decisions as `kind ref action: reason` lines, for whole-list comparisons. */
function lines(input: RetentionInput, rule: Record<string, unknown>, immutable: unknown[] = []): string[] {
  const { policies, rule: r } = setup(rule, immutable);
  return decideRetention(input, r, policies).map((d) => `${d.kind} ${d.ref} ${d.action}: ${d.reason}`);
}

/** Six single-image tags a..f pushed 1, 2, … 6 days ago (a newest), each on its own manifest 1..6. */
function sixTags(pulled: Record<string, number> = {}): RetentionInput {
  const names = ['a', 'b', 'c', 'd', 'e', 'f'];
  return {
    name: 'ci/app',
    now: NOW,
    tags: names.map((t, i) => ({ tag: t, digest: dg(String(i + 1)), pushedAt: NOW - (i + 1) * D })),
    manifests: names.map((t, i) => ({
      digest: dg(String(i + 1)),
      pushedAt: NOW - (i + 1) * D,
      pulledAt: pulled[t] ?? 0,
      children: [],
    })),
  };
}

describe('retention decisions', () => {
  it('keeps the newest N, matching, recently pulled and immutable tags; removes the rest with the reason', () => {
    const out = lines(
      sixTags({ e: NOW - 2 * H, f: NOW - 20 * D }),
      { keepLast: 2, keepTags: 'd', keepPulledWithin: '1d', removeOlderThan: '3d' },
      [{ repos: 'ci/**', tags: 'c' }],
    );
    expect(out).toEqual([
      'tag a keep: among the newest 2 (#1)',
      'tag b keep: among the newest 2 (#2)',
      'tag c keep: immutable (policies.immutableTags[0])',
      'tag d keep: matches keepTags d',
      'tag e keep: pulled 2h ago, within keepPulledWithin 1d',
      'tag f remove: beyond the newest 2 (#6), pushed 6d ago, older than removeOlderThan 3d',
      `manifest ${dg('1')} keep: tagged a`,
      `manifest ${dg('2')} keep: tagged b`,
      `manifest ${dg('3')} keep: tagged c`,
      `manifest ${dg('4')} keep: tagged d`,
      `manifest ${dg('5')} keep: tagged e`,
      `manifest ${dg('6')} remove: its tags are all removed (1)`,
    ]);
  });

  it('removeOlderThan alone keeps what is younger; keepLast alone removes beyond N whatever the age', () => {
    const young = lines(sixTags(), { removeOlderThan: '3d' }).slice(0, 6);
    expect(young.map((l) => l.split(':')[0])).toEqual([
      'tag a keep',
      'tag b keep',
      'tag c remove',
      'tag d remove',
      'tag e remove',
      'tag f remove',
    ]);
    expect(young[0]).toBe('tag a keep: pushed 1d ago, younger than removeOlderThan 3d');
    const last = lines(sixTags(), { keepLast: 4 }).slice(0, 6);
    expect(last.filter((l) => l.includes(' remove: '))).toEqual([
      'tag e remove: beyond the newest 4 (#5)',
      'tag f remove: beyond the newest 4 (#6)',
    ]);
  });

  it('a manifest keeps its other tags: it goes only when all its tags go', () => {
    const input = sixTags();
    input.tags.push({ tag: 'stable', digest: dg('6'), pushedAt: NOW - 30 * D });
    const out = lines(input, { keepLast: 1, keepTags: 'stable' });
    expect(out).toContain('tag f remove: beyond the newest 1 (#6)');
    expect(out).toContain(`manifest ${dg('6')} keep: tagged stable`);
    expect(out).toContain(`manifest ${dg('5')} remove: its tags are all removed (1)`);
  });

  it('untagged manifests: removed when older than the duration unless pulled within the window or in a kept index', () => {
    const input: RetentionInput = {
      name: 'ci/app',
      now: NOW,
      tags: [{ tag: 'v1', digest: dg('i'), pushedAt: NOW - D }],
      manifests: [
        { digest: dg('i'), pushedAt: NOW - 20 * D, children: [dg('c'), dg('m')] },
        { digest: dg('c'), pushedAt: NOW - 20 * D, children: [] },
        { digest: dg('m'), pushedAt: NOW - 20 * D, children: [] },
        { digest: dg('o'), pushedAt: NOW - 20 * D, children: [] },
        { digest: dg('p'), pushedAt: NOW - 20 * D, pulledAt: NOW - H, children: [] },
        { digest: dg('y'), pushedAt: NOW - 2 * D, children: [] },
      ],
    };
    expect(lines(input, { untaggedOlderThan: '7d', keepPulledWithin: '14d' })).toEqual([
      'tag v1 keep: the rule removes no tags (no keepLast, no removeOlderThan)',
      `manifest ${dg('c')} keep: a child of the kept index ${dg('i')}`,
      `manifest ${dg('i')} keep: tagged v1`,
      `manifest ${dg('m')} keep: a child of the kept index ${dg('i')}`,
      `manifest ${dg('o')} remove: untagged, pushed 20d ago, older than untaggedOlderThan 7d`,
      `manifest ${dg('p')} keep: untagged, pulled 1h ago, within keepPulledWithin`,
      `manifest ${dg('y')} keep: untagged, pushed 2d ago, younger than untaggedOlderThan 7d`,
    ]);
    // Without the window the pulled one goes too; the index's children still stay.
    const strict = lines(input, { untaggedOlderThan: '7d' });
    expect(strict).toContain(`manifest ${dg('p')} remove: untagged, pushed 20d ago, older than untaggedOlderThan 7d`);
    expect(strict).toContain(`manifest ${dg('m')} keep: a child of the kept index ${dg('i')}`);
  });

  it('referrers go with their subject and never outlive it; their tags take no place among the newest', () => {
    const input = sixTags();
    input.manifests.push(
      { digest: dg('s'), pushedAt: NOW, children: [], subject: dg('6') },
      { digest: dg('t'), pushedAt: NOW, children: [], subject: dg('1') },
      { digest: dg('u'), pushedAt: NOW, children: [], subject: dg('s') },
      { digest: dg('9'), pushedAt: NOW, children: [] },
    );
    // cosign's tag scheme: sha256-<hex of the subject>.sig on the signature manifest.
    input.tags.push({ tag: `sha256-${'6'.repeat(64)}.sig`, digest: dg('9'), pushedAt: NOW });
    const out = lines(input, { keepLast: 5 });
    expect(out.slice(0, 6).map((l) => l.split(':')[0])).toEqual([
      'tag a keep',
      'tag b keep',
      'tag c keep',
      'tag d keep',
      'tag e keep',
      'tag f remove',
    ]);
    expect(out).toContain(`tag sha256-${'6'.repeat(64)}.sig remove: goes with its subject ${dg('6')}`);
    expect(out).toContain(`manifest ${dg('9')} remove: goes with its subject ${dg('6')}`);
    expect(out).toContain(`manifest ${dg('s')} remove: goes with its subject ${dg('6')}`);
    expect(out).toContain(`manifest ${dg('u')} remove: goes with its subject ${dg('s')}`);
    expect(out).toContain(`manifest ${dg('t')} keep: a referrer of the kept manifest ${dg('1')}`);
    // With the subject kept, the signature and its tag stay, and the rest of the chain with them.
    const kept = lines(input, { keepLast: 6 });
    expect(kept).toContain(`tag sha256-${'6'.repeat(64)}.sig keep: its manifest, a referrer of ${dg('6')}, is kept`);
    expect(kept).toContain(`manifest ${dg('u')} keep: a referrer of the kept manifest ${dg('s')}`);
    expect(kept.filter((l) => l.includes(' remove: '))).toEqual([]);
  });

  it('ties in push time: the greater tag name counts as newer', () => {
    const input: RetentionInput = {
      name: 'ci/app',
      now: NOW,
      tags: ['x1', 'x3', 'x2'].map((tag) => ({ tag, digest: dg('1'), pushedAt: NOW - D })),
      manifests: [{ digest: dg('1'), pushedAt: NOW - D, children: [] }],
    };
    expect(lines(input, { keepLast: 1 }).slice(0, 3)).toEqual([
      'tag x3 keep: among the newest 1 (#1)',
      'tag x2 remove: beyond the newest 1 (#2)',
      'tag x1 remove: beyond the newest 1 (#3)',
    ]);
  });
});
