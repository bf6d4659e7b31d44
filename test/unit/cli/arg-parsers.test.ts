import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { durationArg, portArg, sizeArg, wholeNumberArg } from '../../../src/cli/arg-parsers.js';

describe('command-line argument parsers', () => {
  it('ports: digits only, 1-65535, 0 only when it means "none"', () => {
    const http = portArg('--http-port');
    expect(http('8080')).toBe(8080);
    expect(http('65535')).toBe(65535);
    for (const bad of ['', 'abc', '0', '65536', '-1', '80.5', ' 80', '0x50', '1e3', '8080abc']) {
      expect(() => http(bad), bad).toThrow(InvalidArgumentError);
    }
    expect(() => http('abc')).toThrow(
      '--http-port must be a port number from 1 to 65535, for example --http-port 8080',
    );
    expect(portArg('--registry-port', { allowZero: true })('0')).toBe(0);
  });

  it('whole numbers: digits only, from the minimum up', () => {
    const tail = wholeNumberArg('--tail', { min: 0, unit: 'lines' });
    expect(tail('0')).toBe(0);
    expect(tail('250')).toBe(250);
    for (const bad of ['', 'many', '-1', '1.5', '1e3', '0x10', ' 5', '99999999999999999999']) {
      expect(() => tail(bad), bad).toThrow(InvalidArgumentError);
    }
    const timeout = wholeNumberArg('--health-timeout', { min: 1, unit: 'seconds' });
    expect(() => timeout('0')).toThrow('--health-timeout must be a whole number of seconds from 1 up');
  });

  it('durations and sizes read as common/units reads them, with the flag named', () => {
    expect(durationArg('--grace')('1h30m')).toBe(5_400_000);
    expect(durationArg('--grace')('0')).toBe(0);
    expect(() => durationArg('--grace')('10')).toThrow(/^--grace: "10" is not a duration .*a bare number needs a unit/);
    expect(sizeArg('--min-free')('2GiB')).toBe(2 * 1024 ** 3);
    expect(() => sizeArg('--min-free')('lots')).toThrow(/^--min-free: "lots" is not a size/);
  });
});
