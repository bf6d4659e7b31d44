import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { describe, expect, it } from 'vitest';

import { launchChromium } from '../helpers/browser.js';
import {
  BASE_IMAGE,
  TRAEFIK_IMAGE,
  dockerAvailable,
  freePort,
  imageAvailable,
  peerAvailable,
  peerPath,
  runConformance,
  type PeerName,
} from '../helpers/peers.js';
import { startPebble } from '../helpers/pebble.js';
import { basicAuth } from '../helpers/auth.js';
import { startReferenceRegistry } from '../helpers/reference-registry.js';
import { startVersitygw } from '../helpers/versitygw.js';

const execFileAsync = promisify(execFile);

async function run(file: string, args: readonly string[]): Promise<string> {
  const { stdout, stderr } = await execFileAsync(file, args, { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
  return `${stdout}${stderr}`;
}

/** Each peer's own version command, and what its answer must contain. */
const VERSION_COMMANDS: ReadonlyArray<{ peer: PeerName; args: string[]; expect: RegExp }> = [
  { peer: 'crane', args: ['version'], expect: /^v0\.22\.1$/m },
  { peer: 'oras', args: ['version'], expect: /^Version:\s+1\.3\.6$/m },
  { peer: 'regclient', args: ['version'], expect: /^VCSTag:\s+v\d+\.\d+\.\d+$/m },
  { peer: 'registry-v3', args: ['--version'], expect: /github\.com\/distribution\/distribution\/v3 v3\.1\.1/ },
  { peer: 'cosign', args: ['version'], expect: /^GitVersion:\s+v3\.1\.3$/m },
  { peer: 'notation', args: ['version'], expect: /^Version:\s+v1\.3\.2\b/m },
  { peer: 'docker-registry', args: ['--version'], expect: /distribution 2\.8\.2/ },
  { peer: 'docker', args: ['--version'], expect: /^Docker version \d+\.\d+/ },
  { peer: 'docker-compose', args: ['version', '--short'], expect: /^1\.29\.\d+$/m },
  { peer: 'skopeo', args: ['--version'], expect: /^skopeo version \d+\.\d+/ },
  { peer: 'podman', args: ['--version'], expect: /^podman version \d+\.\d+/ },
  { peer: 'chromium', args: ['--version'], expect: /^Chromium \d+\./ },
];

describe('test peers answer their version commands', () => {
  for (const { peer, args, expect: pattern } of VERSION_COMMANDS) {
    it.skipIf(!peerAvailable(peer))(`${peer} ${args.join(' ')}`, async () => {
      expect(await run(peerPath(peer), args)).toMatch(pattern);
    });
  }

  it.skipIf(!peerAvailable('conformance'))('conformance is the pinned distribution-spec program', async () => {
    // the program has no version flag: its build info records the module version it was built from
    const goMod = await readFile(new URL('../peers/conformance/go.mod', import.meta.url), 'utf8');
    const pinned = /github\.com\/opencontainers\/distribution-spec\/conformance (\S+)/.exec(goMod)?.[1];
    expect(pinned).toMatch(/^v0\.0\.0-/);
    const info = await run('go', ['version', '-m', peerPath('conformance')]);
    expect(info).toContain(`github.com/opencontainers/distribution-spec/conformance\t${pinned ?? ''}`);
  });

  it.skipIf(!peerAvailable('versitygw'))('versitygw is v1.8.0 and serves S3 with the posix backend', async () => {
    // built with `go install`, so its --version says "git": the build info records the module version
    const info = await run('go', ['version', '-m', peerPath('versitygw')]);
    expect(info).toMatch(/\tmod\tgithub\.com\/versity\/versitygw\tv1\.8\.0\t/);
    const s3 = await startVersitygw();
    try {
      const bucket = await s3.createBucket();
      expect(bucket).toMatch(/^b-/);
      const res = await fetch(`${s3.endpoint}/${bucket}`);
      await res.arrayBuffer();
      // an unsigned request is refused: the gateway answers and checks credentials
      expect(res.status).toBe(403);
    } finally {
      await s3.stop();
    }
  });
});

describe.skipIf(!dockerAvailable())('local images', () => {
  it.skipIf(!imageAvailable(BASE_IMAGE))(`${BASE_IMAGE} runs node as root and as user node`, async () => {
    const out = await run('docker', [
      'run',
      '--rm',
      BASE_IMAGE,
      'node',
      '-e',
      'console.log(process.version, require("node:os").userInfo().uid, 6 * 7)',
    ]);
    expect(out.trim()).toBe(`${process.version} 0 42`);
    const asNode = await run('docker', [
      'run',
      '--rm',
      '--user',
      'node',
      BASE_IMAGE,
      'sh',
      '-c',
      'id -u && echo $HOME',
    ]);
    expect(asNode.trim().split('\n')).toEqual(['1000', '/home/node']);
  });

  it.skipIf(!imageAvailable(TRAEFIK_IMAGE))(`${TRAEFIK_IMAGE} is Traefik v3.6.x`, async () => {
    const out = await run('docker', ['run', '--rm', TRAEFIK_IMAGE, 'version']);
    expect(out).toMatch(/^Version:\s+v3\.6\.\d+$/m);
    const config = await run('docker', [
      'image',
      'inspect',
      '--format',
      '{{json .Config.Entrypoint}} {{json .Config.ExposedPorts}}',
      TRAEFIK_IMAGE,
    ]);
    expect(config.trim()).toBe('["/traefik"] {"443/tcp":{},"80/tcp":{}}');
  });
});

describe.skipIf(!peerAvailable('pebble') || !peerAvailable('openssl'))('pebble', () => {
  it('serves the ACME directory and its root over TLS with our listener certificate', async () => {
    const pebble = await startPebble({ host: '127.0.0.1' });
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const req = request(pebble.directoryUrl, { ca: pebble.caCertPem }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`status ${res.statusCode}`))));
        });
        req.on('error', reject);
        req.end();
      });
      const directory = JSON.parse(body) as Record<string, unknown>;
      expect(directory.newAccount).toMatch(/^https:\/\/127\.0\.0\.1:\d+\//);
      expect(directory.newOrder).toMatch(/^https:\/\/127\.0\.0\.1:\d+\//);
      expect(pebble.rootCaPem).toMatch(/^-----BEGIN CERTIFICATE-----/);
      expect(await readFile(pebble.caCertPath, 'utf8')).toBe(pebble.caCertPem);
    } finally {
      await pebble.stop();
    }
  });

  it.skipIf(!imageAvailable(BASE_IMAGE))('is reachable from a container at the docker bridge gateway', async () => {
    const pebble = await startPebble();
    try {
      expect(pebble.host).not.toBe('127.0.0.1');
      // the container trusts pebble's listener certificate the way Traefik's ACME client will: a mounted copy
      const out = await run('docker', [
        'run',
        '--rm',
        '-e',
        'NODE_EXTRA_CA_CERTS=/pebble.pem',
        '-v',
        `${pebble.caCertPath}:/pebble.pem:ro`,
        BASE_IMAGE,
        'node',
        '-e',
        `fetch(${JSON.stringify(pebble.directoryUrl)}).then((r) => r.json()).then((d) => console.log(typeof d.newNonce))`,
      ]);
      expect(out.trim()).toBe('string');
    } finally {
      await pebble.stop();
    }
  });
});

/** GET over HTTPS to 127.0.0.1:port with SNI `servername`, trusting only `ca`; resolves status, body and issuer CN. */
function tlsGet(
  port: number,
  servername: string,
  path: string,
  ca: string,
): Promise<{ status: number; body: string; issuer: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, servername, ca, headers: { host: servername }, timeout: 5_000 },
      (res) => {
        const issuer = (res.socket as TLSSocket).getPeerCertificate().issuer?.CN ?? '';
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, issuer }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

describe.skipIf(!imageAvailable(TRAEFIK_IMAGE) || !peerAvailable('pebble'))('Traefik with pebble', () => {
  it('gets a certificate from pebble over ACME and serves it', async () => {
    const pebble = await startPebble();
    const port = await freePort();
    const name = `regctl-peers-traefik-${port}`;
    const dynamic = join(pebble.dir, 'dynamic.yml');
    await writeFile(
      dynamic,
      [
        'http:',
        '  routers:',
        '    ping:',
        '      rule: "Host(`peer.test`)"',
        '      entryPoints: [websecure]',
        '      service: ping@internal',
        '      tls: { certResolver: pebble }',
      ].join('\n') + '\n',
    );
    try {
      await run('docker', [
        'run',
        '-d',
        '--name',
        name,
        '-p',
        `127.0.0.1:${port}:443`,
        '-e',
        'LEGO_CA_CERTIFICATES=/pebble.pem',
        '-v',
        `${pebble.caCertPath}:/pebble.pem:ro`,
        '-v',
        `${dynamic}:/dynamic.yml:ro`,
        TRAEFIK_IMAGE,
        '--log.level=INFO',
        '--ping.manualrouting=true',
        '--entrypoints.web.address=:80',
        '--entrypoints.websecure.address=:443',
        '--providers.file.filename=/dynamic.yml',
        `--certificatesresolvers.pebble.acme.caserver=${pebble.directoryUrl}`,
        '--certificatesresolvers.pebble.acme.email=peers@example.com',
        '--certificatesresolvers.pebble.acme.storage=/tmp/acme.json',
        '--certificatesresolvers.pebble.acme.httpchallenge.entrypoint=web',
      ]);
      const deadline = Date.now() + 90_000;
      let last: unknown;
      for (;;) {
        try {
          const res = await tlsGet(port, 'peer.test', '/ping', pebble.rootCaPem);
          expect(res.status).toBe(200);
          expect(res.body).toBe('OK');
          expect(res.issuer).toMatch(/^Pebble Intermediate CA/);
          break;
        } catch (err) {
          last = err;
        }
        if (Date.now() > deadline) {
          const logs = await run('docker', ['logs', name]).catch(() => '');
          throw new Error(`Traefik served no pebble certificate within 90 s (${String(last)}):\n${logs.slice(-4_000)}`);
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    } finally {
      await run('docker', ['rm', '-f', name]).catch(() => '');
      await pebble.stop();
    }
  });
});

describe.skipIf(!peerAvailable('docker-registry'))('reference registry (distribution 2.8.2)', () => {
  it('answers /v2/ with 401 without credentials and 200 with them', async () => {
    const registry = await startReferenceRegistry();
    try {
      const anonymous = await fetch(`${registry.url}/v2/`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toMatch(/^Basic realm="reference-registry"/);
      const wrong = await fetch(`${registry.url}/v2/`, {
        headers: { authorization: basicAuth(registry.username, 'not-the-password') },
      });
      expect(wrong.status).toBe(401);
      const ok = await fetch(`${registry.url}/v2/`, {
        headers: { authorization: basicAuth(registry.username, registry.password) },
      });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    } finally {
      await registry.stop();
    }
  });
});

describe.skipIf(!peerAvailable('conformance') || !peerAvailable('registry-v3'))('OCI conformance program', () => {
  it('runs against distribution v3 with basic auth and writes a report that agrees with its exit code', async () => {
    const registry = await startReferenceRegistry({ implementation: 'registry-v3' });
    const resultsDir = await mkdtemp(join(tmpdir(), 'regctl-conformance-'));
    try {
      const run = await runConformance({
        registry: registry.host,
        username: registry.username,
        password: registry.password,
        resultsDir,
      });
      expect(run.apis.Ping).toBe('Pass');
      expect(run.data.Image).toBe('Pass');
      const outcomes = [...Object.values(run.apis), ...Object.values(run.data)];
      expect(outcomes.length).toBeGreaterThan(20);
      expect(run.exitCode).toBe(outcomes.includes('FAIL') ? 1 : 0);
      // each failed check is named with its error, so a failing run says what failed
      expect(run.failures.length > 0).toBe(outcomes.includes('FAIL'));
      for (const line of run.failures) expect(line).toMatch(/name="OCI Conformance Test\/.+" error=/);
      expect(await readFile(join(resultsDir, 'junit.xml'), 'utf8')).toContain('<testsuite');
    } finally {
      await registry.stop();
      await rm(resultsDir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!peerAvailable('chromium'))('chromium', () => {
  it('opens a data: URL and reads its text back', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const marker = `peer-check-${await freePort()}`;
      await page.goto(`data:text/html,<main><p id="m">${marker}</p></main>`);
      expect(await page.textContent('#m')).toBe(marker);
    } finally {
      await browser.close();
    }
  });
});

describe('helpers', () => {
  it('freePort returns a loopback port that can be bound', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    const { createServer } = await import('node:net');
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it.skipIf(!peerAvailable('docker-registry'))(
    'a reference registry keeps a caller-owned data dir after stop',
    async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'regctl-peers-test-'));
      try {
        const registry = await startReferenceRegistry({ dataDir, auth: false });
        const res = await fetch(`${registry.url}/v2/_catalog`);
        expect(await res.json()).toEqual({ repositories: [] });
        await registry.stop();
        const { stat } = await import('node:fs/promises');
        expect((await stat(dataDir)).isDirectory()).toBe(true);
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  );
});
