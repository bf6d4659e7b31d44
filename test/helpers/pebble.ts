import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { dockerAvailable, dockerBridgeGateway, freePort, requirePeer } from './peers.js';
import { stopChild } from '../../bench/lib/child.js';

const execFileAsync = promisify(execFile);

/** A running Debian pebble (ACME test server) with challenge validation switched off. */
export interface Pebble {
  /** ACME directory, e.g. https://172.17.0.1:40123/dir, at an address containers can reach. */
  directoryUrl: string;
  /** Pebble's management interface (roots, intermediates, cert status). */
  managementUrl: string;
  /** The host the listeners are bound to. */
  host: string;
  /** PEM of the root that signs the certificates pebble issues (from /roots/0; new on every start). */
  rootCaPem: string;
  /** PEM file of the self-signed certificate pebble's own HTTPS listeners present: give it to the ACME
   * client (for Traefik: mount it and point LEGO_CA_CERTIFICATES at it). */
  caCertPath: string;
  /** Same content as caCertPath. */
  caCertPem: string;
  /** Temporary directory holding the config and certificate; removed by stop(). */
  dir: string;
  stop(): Promise<void>;
}

export interface PebbleOptions {
  /** Address to listen on. Default: docker's bridge gateway when docker answers, else 127.0.0.1. */
  host?: string;
  /** Extra environment for pebble (e.g. PEBBLE_WFE_NONCEREJECT). */
  env?: Record<string, string>;
}

/** GET over HTTPS trusting exactly `ca`. */
function httpsGet(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, method: 'GET', timeout: 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout on GET ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

/** Starts pebble with a fresh self-signed listener certificate made by `openssl req -x509`. */
export async function startPebble(options: PebbleOptions = {}): Promise<Pebble> {
  const pebbleBin = requirePeer('pebble');
  const openssl = requirePeer('openssl');
  const host = options.host ?? (dockerAvailable() ? dockerBridgeGateway() : '127.0.0.1');
  const dir = await mkdtemp(join(tmpdir(), 'regctl-pebble-'));
  const certPath = join(dir, 'pebble-listener.pem');
  const keyPath = join(dir, 'pebble-listener.key');
  const sans = ['DNS:localhost', 'DNS:pebble', 'IP:127.0.0.1'];
  if (isIP(host) !== 0 && host !== '127.0.0.1') sans.push(`IP:${host}`);
  else if (isIP(host) === 0 && host !== 'localhost') sans.push(`DNS:${host}`);
  await execFileAsync(openssl, [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    certPath,
    '-days',
    '2',
    '-subj',
    '/CN=pebble',
    '-addext',
    `subjectAltName=${sans.join(',')}`,
    '-addext',
    'basicConstraints=critical,CA:FALSE',
    '-addext',
    'extendedKeyUsage=serverAuth',
  ]);
  const [acmePort, mgmtPort, httpPort, tlsPort] = [
    await freePort(host),
    await freePort(host),
    await freePort(host),
    await freePort(host),
  ];
  const configPath = join(dir, 'pebble-config.json');
  await writeFile(
    configPath,
    JSON.stringify({
      pebble: {
        listenAddress: `${host}:${acmePort}`,
        managementListenAddress: `${host}:${mgmtPort}`,
        certificate: certPath,
        privateKey: keyPath,
        httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );
  const caCertPem = await readFile(certPath, 'utf8');
  const child = spawn(pebbleBin, ['-config', configPath], {
    cwd: dir,
    env: { ...process.env, PEBBLE_VA_ALWAYS_VALID: '1', PEBBLE_VA_NOSLEEP: '1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (c: Buffer): void => {
    output = (output + c.toString('utf8')).slice(-8_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  const urlHost = isIP(host) === 6 ? `[${host}]` : host;
  const directoryUrl = `https://${urlHost}:${acmePort}/dir`;
  const managementUrl = `https://${urlHost}:${mgmtPort}`;
  const stop = async (): Promise<void> => {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 20_000;
  let rootCaPem: string;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`pebble exited before answering (${child.exitCode ?? child.signalCode}):\n${output}`);
    }
    try {
      const dirRes = await httpsGet(directoryUrl, caCertPem);
      const roots = await httpsGet(`${managementUrl}/roots/0`, caCertPem);
      if (dirRes.status === 200 && roots.status === 200 && roots.body.includes('BEGIN CERTIFICATE')) {
        rootCaPem = roots.body;
        break;
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`pebble did not answer ${directoryUrl} within 20 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { directoryUrl, managementUrl, host, rootCaPem, caCertPath: certPath, caCertPem, dir, stop };
}
