/** What `regctl logs` does with one log stream, for containers and for swarm services alike. */
import type { Readable } from 'node:stream';
import { createInterface } from 'node:readline';

export interface LogFlags {
  follow?: boolean;
  tail?: number;
  timestamps?: boolean;
  signal?: AbortSignal;
}

/** The engine's options for a log stream, from the command's flags. */
export function engineLogOptions(flags: LogFlags): {
  follow: boolean;
  timestamps: boolean;
  tail?: number;
  signal?: AbortSignal;
} {
  return {
    follow: flags.follow ?? false,
    timestamps: flags.timestamps ?? false,
    ...(flags.tail !== undefined ? { tail: flags.tail } : {}),
    ...(flags.signal ? { signal: flags.signal } : {}),
  };
}

/** Hands each line of `stream` (without its newline) to `write`, after `prefix`. */
export async function writeLines(stream: Readable, write: (line: string) => void, prefix = ''): Promise<void> {
  for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) write(`${prefix}${line}`);
}
