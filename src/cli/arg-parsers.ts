/**
 * The one way command-line values with a number in them are read: commander argument parsers, strict, built on
 * `common/units`. A bad value is refused before the command runs (commander prints one line naming the flag, the
 * value and what is expected; `main` exits 2), never replaced by a default.
 */
import { InvalidArgumentError } from 'commander';
import { parseDuration, parseSize, UnitError } from '../common/units.js';

type ArgParser<T> = (value: string) => T;

const WHOLE = /^\d+$/;

/** A TCP port, 1–65535 (0 too with `allowZero`, meaning "none"). */
export function portArg(flag: string, opts: { allowZero?: boolean } = {}): ArgParser<number> {
  const min = opts.allowZero ? 0 : 1;
  return (value) => {
    const n = Number(value);
    if (!WHOLE.test(value) || n > 65535 || n < min) {
      throw new InvalidArgumentError(
        `${flag} must be a port number from ${min} to 65535${min === 0 ? ' (0 for none)' : ''}, for example ${flag} 8080`,
      );
    }
    return n;
  };
}

/** A whole number from `min` up (digits only: no sign, exponent, hex or blank). */
export function wholeNumberArg(flag: string, opts: { min: number; unit: string }): ArgParser<number> {
  return (value) => {
    const n = Number(value);
    if (!WHOLE.test(value) || !Number.isSafeInteger(n) || n < opts.min) {
      throw new InvalidArgumentError(
        `${flag} must be a whole number of ${opts.unit} from ${opts.min} up, for example ${flag} ${Math.max(opts.min, 10)}`,
      );
    }
    return n;
  };
}

function unitArg(parse: (text: string) => number): (flag: string) => ArgParser<number> {
  return (flag) => (value) => {
    try {
      return parse(value);
    } catch (err) {
      if (err instanceof UnitError) throw new InvalidArgumentError(`${flag}: ${err.message}`);
      throw err;
    }
  };
}

/** A duration with its unit (`90s`, `10m`, `1h30m`, `7d`; `0` alone), in milliseconds. */
export const durationArg = unitArg(parseDuration);

/** A size (`512MiB`, `2GiB`, `10GB`, or bytes), in bytes. */
export const sizeArg = unitArg(parseSize);
