/** Shared by the day-two commands (rotate-credentials, users, backup, restore, gc). */
import { resolve } from 'node:path';
import type { CliContext } from '../context.js';
import type { Output } from '../../common/io.js';

/**
 * With `--json`, stdout carries one JSON document only: steps, progress and plain lines are dropped (warnings
 * and errors still go to stderr).
 */
export function outputFor(out: Output, json: boolean | undefined): Output {
  if (!json) return out;
  const none = () => undefined;
  return {
    ...out,
    line: none,
    step: none,
    ok: none,
    progress: none,
    warn: out.warn,
    error: out.error,
    json: out.json,
    color: out.color,
    isTTY: out.isTTY,
  };
}

export function stackDir(ctx: CliContext, dir: string | undefined): string {
  return resolve(ctx.cwd, dir ?? '.');
}

/** Collects a repeatable option into an array. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
