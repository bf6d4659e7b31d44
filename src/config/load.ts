import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { RegctlError } from '../common/errors.js';
import { parseStackConfig, type StackConfig } from './schema.js';

export const CONFIG_FILE = 'regctl.yaml';

/**
 * Reads and validates `<dir>/regctl.yaml`. Throws RegctlError CONFIG_MISSING when there is no file and
 * CONFIG_INVALID (one line: the field path and what is wrong, plus a hint) when it does not validate.
 */
export async function loadStackConfig(dir: string): Promise<StackConfig> {
  const file = join(dir, CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new RegctlError('CONFIG_MISSING', `no ${CONFIG_FILE} in ${dir}`, {
        hint: `run \`regctl init --dir ${dir}\` to create the stack, or pass --dir to the stack's directory`,
      });
    }
    throw new RegctlError('CONFIG_INVALID', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  return parseStackConfigText(text, file);
}

/** Parses the text of a regctl.yaml; `file` only names it in errors. */
export function parseStackConfigText(text: string, file = CONFIG_FILE): StackConfig {
  const doc = parseDocument(text);
  const yamlError = doc.errors[0];
  if (yamlError) {
    const pos = yamlError.linePos?.[0];
    const where = pos ? `:${pos.line}:${pos.col}` : '';
    const what = yamlError.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new RegctlError('CONFIG_INVALID', `${file}${where}: not valid YAML: ${what}`, {
      hint: 'fix the YAML syntax (indentation, quotes), or re-run `regctl init --force`',
    });
  }
  const parsed: unknown = doc.toJS() ?? {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new RegctlError('CONFIG_INVALID', `${file}: expected a mapping of settings`, {
      hint: 'regctl.yaml starts with "version: 1"',
    });
  }
  const result = parseStackConfig(parsed);
  if (result.config) return result.config;
  const [first, ...rest] = result.problems;
  const field = first!.path ? `${first!.path}: ` : '';
  const more = rest.length > 0 ? ` (and ${rest.length} more problem${rest.length > 1 ? 's' : ''})` : '';
  throw new RegctlError('CONFIG_INVALID', `${file}: ${field}${first!.message}${more}`, {
    hint: first!.hint,
    details: rest.map((p) => `${p.path ? `${p.path}: ` : ''}${p.message}`),
  });
}
