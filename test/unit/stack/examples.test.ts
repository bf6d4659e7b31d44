/**
 * The committed example stacks in stacks/ are what the renderer makes of each example's regctl.yaml
 * (secrets excluded: `.env.example` instead of `.env`, no htpasswd). To re-render them after a deliberate
 * change: `REGCTL_UPDATE_STACKS=1 npx vitest run test/unit/stack/examples.test.ts`.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { loadStackConfig } from '../../../src/config/load.js';
import { renderStack } from '../../../src/stack/render.js';
import { atomicWrite } from '../../../src/stack/write.js';

const STACKS = fileURLToPath(new URL('../../../stacks/', import.meta.url));
const EXAMPLE_PACKAGE_DIR = '/usr/local/lib/node_modules/regctl-stack';
const update = process.env.REGCTL_UPDATE_STACKS === '1';

async function filesUnder(root: string, dir = root): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(root, path)));
    else out.push(relative(root, path));
  }
  return out;
}

const examples = (await readdir(STACKS, { withFileTypes: true }))
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .sort();

describe('committed example stacks', () => {
  test('there are a dev and a prod example', () => {
    expect(examples).toEqual(expect.arrayContaining(['dev-localhost', 'prod-example']));
  });

  test.each(examples)('stacks/%s is in step with the renderer', async (name) => {
    const dir = join(STACKS, name);
    const config = await loadStackConfig(dir);
    const rendered = renderStack(config, { packageDir: EXAMPLE_PACKAGE_DIR });
    // regctl.yaml is the example's input: kept as written, only checked to load.
    const outputs = rendered.filter((f) => f.path !== 'regctl.yaml');
    if (update) for (const f of outputs) await atomicWrite(join(dir, f.path), f.content, f.mode);
    const onDisk = (await filesUnder(dir)).sort();
    expect(onDisk).toEqual(['regctl.yaml', ...outputs.map((f) => f.path)].sort());
    for (const f of outputs) {
      expect(await readFile(join(dir, f.path), 'utf8'), `${name}/${f.path} differs from the renderer`).toBe(f.content);
      expect(f.secret).toBe(false);
    }
    expect(onDisk).not.toContain('.env');
    expect(onDisk).not.toContain('auth/htpasswd');
    expect((await stat(join(dir, 'compose.yaml'))).isFile()).toBe(true);
  });
});
