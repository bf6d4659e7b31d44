/**
 * The key files of `policies.signatures` rules, read when the config file is (re)loaded: a path is relative to the
 * config file. Each unreadable or unusable file is one line naming its field; the caller then keeps the policies
 * in force, so a rule never runs with a key missing.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { publicKeyProblem, type Policies } from '../../common/policies.js';

/** Fills `pem` of every file key in `policies` (in place) and returns the problems, one line each. */
export async function readSignatureKeys(policies: Policies, configFile: string): Promise<string[]> {
  const lines: string[] = [];
  for (const rule of policies.signatures) {
    for (const [i, key] of rule.keys.entries()) {
      if (key.pem !== '') continue;
      const file = resolve(dirname(configFile), key.source);
      const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
        lines.push(`${rule.id}.keys[${i}]: cannot read ${key.source} (${err.code ?? err.message})`);
        return undefined;
      });
      if (text === undefined) continue;
      const problem = publicKeyProblem(text);
      if (problem)
        lines.push(`${rule.id}.keys[${i}]: ${key.source} is not a PEM public key or certificate (${problem})`);
      else key.pem = text;
    }
  }
  return lines;
}
