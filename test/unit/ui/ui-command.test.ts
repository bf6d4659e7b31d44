import { createServer, type Server } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveUiOptions } from '../../../src/cli/commands/ui.js';
import { RegctlError } from '../../../src/common/errors.js';
import { main } from '../../../src/cli/main.js';
import { createOutput } from '../../../src/cli/output.js';
import { createPrompts } from '../../../src/cli/prompts.js';

describe('regctl ui options', () => {
  it('has defaults', () => {
    expect(resolveUiOptions({}, {})).toEqual({
      host: '127.0.0.1',
      port: 8080,
      registry: 'http://127.0.0.1:5000',
      publicRegistry: undefined,
      secureCookies: false,
      trustedProxies: [],
    });
  });

  it('reads the environment, and flags win over it', () => {
    const env = {
      REGCTL_UI_LISTEN: '0.0.0.0:9000',
      REGCTL_UI_REGISTRY: 'http://registry:5000/',
      REGCTL_UI_PUBLIC_REGISTRY: 'registry.example.com',
      REGCTL_UI_SECURE_COOKIES: 'true',
      REGCTL_TRUSTED_PROXIES: '10.0.0.0/8, traefik',
    };
    expect(resolveUiOptions({}, env)).toEqual({
      host: '0.0.0.0',
      port: 9000,
      registry: 'http://registry:5000',
      publicRegistry: 'registry.example.com',
      secureCookies: true,
      trustedProxies: ['10.0.0.0/8', 'traefik'],
    });
    expect(
      resolveUiOptions(
        {
          listen: '[::1]:8081',
          registry: 'https://r.example.com',
          publicRegistry: 'r.example.com',
          secureCookies: false,
          trustedProxy: '192.0.2.1',
        },
        env,
      ),
    ).toEqual({
      host: '::1',
      port: 8081,
      registry: 'https://r.example.com',
      publicRegistry: 'r.example.com',
      secureCookies: false,
      trustedProxies: ['192.0.2.1'],
    });
    expect(resolveUiOptions({}, { REGCTL_UI_SECURE_COOKIES: '0' }).secureCookies).toBe(false);
    expect(resolveUiOptions({ listen: ':8080' }, {}).host).toBe('0.0.0.0');
  });

  it.each([
    [{ listen: '8080' }, '--listen must be HOST:PORT'],
    [{ listen: 'host:99999' }, '--listen must be HOST:PORT'],
    [{ registry: 'not a url' }, '--registry must be a URL'],
    [{ registry: 'ftp://x' }, '--registry must be an http or https URL'],
    [{ trustedProxy: '10.0.0.0/99' }, '--trusted-proxy:'],
  ])('refuses %o', (flags, message) => {
    let err: unknown;
    try {
      resolveUiOptions(flags, {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RegctlError);
    expect((err as RegctlError).code).toBe('USAGE');
    expect((err as RegctlError).message).toContain(message);
  });
});

describe('regctl ui through the CLI', () => {
  let busy: Server | undefined;
  afterAll(() => new Promise<void>((r) => (busy ? busy.close(() => r()) : r())));

  it('exits with PORT_IN_USE and a hint when the address is taken', async () => {
    busy = createServer();
    const port = await new Promise<number>((r) =>
      busy!.listen(0, '127.0.0.1', () => r((busy!.address() as { port: number }).port)),
    );
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let errText = '';
    stderr.on('data', (d: Buffer) => (errText += d.toString()));
    const code = await main(['node', 'regctl', 'ui', '--listen', `127.0.0.1:${port}`], {
      out: createOutput({ stdout, stderr }),
      prompts: createPrompts(false),
      env: {},
    });
    expect(code).toBe(5);
    expect(errText).toContain(`127.0.0.1:${port} is already in use`);
  });

  it('exits with a usage error on a bad --registry', async () => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let errText = '';
    stderr.on('data', (d: Buffer) => (errText += d.toString()));
    const code = await main(['node', 'regctl', 'ui', '--registry', 'nope'], {
      out: createOutput({ stdout, stderr }),
      prompts: createPrompts(false),
      env: {},
    });
    expect(code).toBe(2);
    expect(errText).toContain('--registry must be a URL');
  });
});
