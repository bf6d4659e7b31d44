import { describe, expect, it } from 'vitest';

import { MAX_COPY_SIZE, MAX_PARTS, MIN_PART_SIZE } from '../../../src/registry/storage/s3/s3-context.js';
import { copyChunk, copyRanges } from '../../../src/registry/storage/s3/s3-staged.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Checks that `ranges` cover 0..size-1 in order, each a valid part (≥ 5 MiB but the last, ≤ 5 GiB). */
function expectParts(ranges: { start: number; end: number }[], size: number): void {
  let next = 0;
  for (const [i, r] of ranges.entries()) {
    expect(r.start).toBe(next);
    const length = r.end - r.start + 1;
    if (i < ranges.length - 1) expect(length).toBeGreaterThanOrEqual(MIN_PART_SIZE);
    expect(length).toBeLessThanOrEqual(MAX_COPY_SIZE);
    next = r.end + 1;
  }
  expect(next).toBe(size);
}

describe('the ranges of a multipart copy', () => {
  it('cuts at the chunk size and folds a remainder under 5 MiB into the part before it', () => {
    const ranges = copyRanges(11 * MiB + 1, 5 * MiB);
    expect(ranges.map((r) => r.end - r.start + 1)).toEqual([5 * MiB, 6 * MiB + 1]);
    expectParts(ranges, 11 * MiB + 1);
    expect(copyRanges(GiB, 32 * MiB)).toHaveLength(32);
  });

  it('keeps the configured chunk while the parts fit in 10,000, and grows it past that', () => {
    expect(copyChunk(GiB, 32 * MiB)).toBe(32 * MiB);
    for (const [size, firstPart] of [
      [1024 * GiB, 1],
      [400 * GiB, 1],
      [400 * GiB, 9_000],
      [320 * GiB + 7, 2],
    ] as const) {
      const chunk = copyChunk(size, 32 * MiB, firstPart);
      expect(chunk, `${size} from part ${firstPart}`).toBeGreaterThan(32 * MiB);
      const ranges = copyRanges(size, chunk);
      expect(firstPart - 1 + ranges.length, `${size} from part ${firstPart}`).toBeLessThanOrEqual(MAX_PARTS);
      expectParts(ranges, size);
    }
  });
});
