import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { collectContextFiles, contextHash, devOnlyPackages, packageRoot } from '../../../src/docker/build-context.js';
import { stackFixture, type StackFixture } from '../ops/fixture.js';

let fx: StackFixture;
beforeEach(async () => {
  fx = await stackFixture();
});
afterEach(async () => {
  await fx.cleanup();
});

describe('build context', () => {
  it('lists the package without sources and dev-only dependencies', async () => {
    const ctx = await collectContextFiles(fx.pkg);
    expect(ctx.files).toEqual([
      'bin/regctl.js',
      'dist/cli/main.js',
      'node_modules/prod-dep/index.js',
      'package-lock.json',
      'package.json',
      'templates/Dockerfile',
    ]);
  });

  it('hashes content: same input, same hash; one byte or one build arg changed, another hash', async () => {
    const ctx = await collectContextFiles(fx.pkg);
    const h1 = await contextHash(ctx, { BASE_IMAGE: 'a' });
    expect(await contextHash(await collectContextFiles(fx.pkg), { BASE_IMAGE: 'a' })).toBe(h1);
    expect(await contextHash(ctx, { BASE_IMAGE: 'b' })).not.toBe(h1);
    await writeFile(join(fx.pkg, 'dist/cli/main.js'), 'export const x = 3;\n');
    expect(await contextHash(ctx, { BASE_IMAGE: 'a' })).not.toBe(h1);
  });

  it("leaves this repository's dev dependencies (vitest, typescript) out of the image", async () => {
    const root = packageRoot();
    const dev = devOnlyPackages(root);
    expect(dev.has('node_modules/vitest')).toBe(true);
    expect(dev.has('node_modules/dockerode')).toBe(false);
    const ctx = await collectContextFiles(root);
    expect(ctx.files.some((f) => f.startsWith('node_modules/vitest/'))).toBe(false);
    expect(ctx.files.some((f) => f.startsWith('node_modules/typescript/'))).toBe(false);
    expect(ctx.files.some((f) => f.startsWith('node_modules/dockerode/'))).toBe(true);
    expect(ctx.files.some((f) => f.startsWith('src/') || f.startsWith('test/'))).toBe(false);
  });
});
