/** Shared by the day-two commands (rotate-credentials, users, backup, restore, gc). */
import type { Command } from 'commander';
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

/** `--pull/--push/--delete PATTERN`, repeatable: what a user or a robot may do where (users, robots). */
export function patternOptions(cmd: Command): Command {
  return cmd
    .option(
      '--pull <pattern>',
      'may pull repositories matching the pattern (repeatable; * one segment, ** any)',
      collect,
    )
    .option('--push <pattern>', 'may push to repositories matching the pattern (repeatable)', collect)
    .option('--delete <pattern>', 'may delete in repositories matching the pattern (repeatable)', collect);
}
