/** The docker phase's pulls: the order of the rounds. */
import { describe, expect, it } from 'vitest';
import { PULL_ROUNDS, pullSchedule } from '../../../bench/phases/docker.js';

describe('docker phase pulls', () => {
  it('alternates which registry pulls first, round by round', () => {
    expect(pullSchedule(['ours', 'ref'], 3)).toEqual(['ours', 'ref', 'ref', 'ours', 'ours', 'ref']);
    expect(pullSchedule(['ref', 'ours'], 2)).toEqual(['ref', 'ours', 'ours', 'ref']);
  });

  it('gives each registry as many pulls as rounds', () => {
    const schedule = pullSchedule(['ours', 'ref'], 5);
    expect(schedule.filter((n) => n === 'ours')).toHaveLength(5);
    expect(schedule.filter((n) => n === 'ref')).toHaveLength(5);
    // Odd, so that the 50th percentile taken of them is their median.
    expect(PULL_ROUNDS % 2).toBe(1);
  });
});
