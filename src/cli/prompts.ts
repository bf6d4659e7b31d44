/**
 * The only module that imports inquirer. Commands ask through a `Prompts` object, which tests replace
 * with scripted answers; with no terminal attached, asking is an error rather than a hang.
 */
import { RegctlError } from '../common/errors.js';
import type { Prompts } from '../common/io.js';

function refuse(message: string): never {
  throw new RegctlError('USAGE', `no terminal to ask: ${message}`, {
    hint: 'pass the answer as a flag, or --yes to accept the defaults',
  });
}

export function createPrompts(interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY)): Prompts {
  const load = async () => (await import('inquirer')).default;
  return {
    interactive,
    async input(message, opts = {}) {
      if (!interactive) refuse(message);
      const inquirer = await load();
      const { value } = await inquirer.prompt<{ value: string }>([
        { type: 'input', name: 'value', message, default: opts.default, validate: opts.validate },
      ]);
      return value;
    },
    async password(message, opts = {}) {
      if (!interactive) refuse(message);
      const inquirer = await load();
      const { value } = await inquirer.prompt<{ value: string }>([
        { type: 'password', name: 'value', message, mask: '*', validate: opts.validate },
      ]);
      return value;
    },
    async confirm(message, opts = {}) {
      if (!interactive) refuse(message);
      const inquirer = await load();
      const { value } = await inquirer.prompt<{ value: boolean }>([
        { type: 'confirm', name: 'value', message, default: opts.default ?? false },
      ]);
      return value;
    },
    async select(message, choices, opts = {}) {
      if (!interactive) refuse(message);
      const inquirer = await load();
      const { value } = await inquirer.prompt<{ value: (typeof choices)[number]['value'] }>([
        {
          type: 'list',
          name: 'value',
          message,
          choices: choices.map((c) => ({ value: c.value, name: c.name ?? c.value })),
          default: opts.default,
        },
      ]);
      return value;
    },
  };
}

/** Scripted answers, for tests: each call takes the next answer; running out is a test failure. */
export function scriptedPrompts(answers: (string | boolean)[]): Prompts {
  const queue = [...answers];
  const next = (message: string) => {
    if (queue.length === 0) throw new Error(`unexpected prompt: ${message}`);
    return queue.shift()!;
  };
  return {
    interactive: true,
    input: async (message) => String(next(message)),
    password: async (message) => String(next(message)),
    confirm: async (message) => Boolean(next(message)),
    select: async (message) => next(message) as never,
  };
}
