/**
 * `regctl login --trust` (dev): the engine trusts the stack's local CA for the registry's addresses by finding it
 * in `/etc/docker/certs.d/<host>[:port]/ca.crt`, which dockerd reads on every connection to that registry, so no
 * daemon restart (and no daemon.json edit) is needed. Browsers and the OS keep their own stores: the steps for
 * them are printed, never run.
 */
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { RegctlError } from '../common/errors.js';
import { readIfExists } from '../common/fs.js';
import type { StackConfig } from '../config/schema.js';
import { CA_CERT_FILE, CA_KEY_FILE } from '../stack/dev-tls.js';
import { atomicWrite } from '../stack/write.js';
import { caProblem } from './dev-ca.js';
import { loadStack } from './stack.js';

export const DOCKER_CERTS_DIR = '/etc/docker/certs.d';

/**
 * The `host[:port]` names docker may reach the registry by through Traefik in dev: the HTTPS port, and the HTTP
 * port when it differs (Traefik answers TLS there too, and docker tries TLS first), each without the scheme's
 * default port, as image names and certs.d directories write them.
 */
export function trustAddresses(config: StackConfig, registryHost: string): string[] {
  const https = config.ports.https === 443 ? registryHost : `${registryHost}:${config.ports.https}`;
  const http = config.ports.http === 80 ? registryHost : `${registryHost}:${config.ports.http}`;
  return [...new Set([https, http])];
}

export interface CaInstallFile {
  path: string;
  status: 'created' | 'unchanged' | 'replaced';
}

/** Whether two PEM texts hold the same certificate (whitespace and trailing lines aside). */
export function sameCertificate(a: string, b: string): boolean {
  try {
    return new X509Certificate(a).fingerprint256 === new X509Certificate(b).fingerprint256;
  } catch {
    return false;
  }
}

/** The stack's CA certificate (PEM), checked to be usable for `names`; a one-line error otherwise. */
export async function stackCa(dir: string, names: string[]): Promise<string> {
  const cert = await readIfExists(join(dir, CA_CERT_FILE));
  const key = await readIfExists(join(dir, CA_KEY_FILE));
  if (cert === undefined || key === undefined) {
    throw new RegctlError('CONFIG_MISSING', `no local CA in ${join(dir, 'certs')}`, {
      hint: 'run `regctl init` (or `regctl up`) in this directory first: it makes the CA',
    });
  }
  const problem = caProblem({ cert, key }, names);
  if (problem) {
    throw new RegctlError('CONFIG_INVALID', `the local CA cannot be used: ${problem}`, {
      hint: 'run `regctl up` to make a new one, then `regctl login --trust` again',
    });
  }
  return cert;
}

/** Copies `caPem` to `<certsDir>/<address>/ca.crt` for each address; a file already holding it is left alone. */
export async function installCa(
  caPem: string,
  addresses: string[],
  certsDir = DOCKER_CERTS_DIR,
): Promise<CaInstallFile[]> {
  const files: CaInstallFile[] = [];
  for (const address of addresses) {
    const path = join(certsDir, address, 'ca.crt');
    const current = await readIfExists(path).catch(() => undefined);
    if (current !== undefined && sameCertificate(current, caPem)) {
      files.push({ path, status: 'unchanged' });
      continue;
    }
    try {
      await atomicWrite(path, caPem, 0o644);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
        throw new RegctlError('USAGE', `cannot write ${path} (${code}): the engine's certs.d belongs to root`, {
          hint: 'run it as root: sudo regctl login --trust',
        });
      }
      throw err;
    }
    files.push({ path, status: current === undefined ? 'created' : 'replaced' });
  }
  return files;
}

/** How to make browsers and the OS trust the CA at `caPath` (printed for a person; regctl runs none of it). */
export function browserTrustSteps(caPath: string, name: string): string[] {
  const nick = `regctl local CA (${name})`;
  return [
    `Linux system store (curl, skopeo, podman): sudo cp ${caPath} /usr/local/share/ca-certificates/regctl-${name}.crt && sudo update-ca-certificates`,
    `Chrome/Chromium on Linux (NSS): certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n "${nick}" -i ${caPath}`,
    `Firefox: Settings → Privacy & Security → Certificates → View Certificates → Authorities → Import ${caPath}, tick "Trust this CA to identify websites"`,
    `macOS: sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain ${caPath}`,
    `Windows: certutil -addstore -f Root ${caPath}`,
  ];
}

export interface TrustResult {
  /** The stack's CA file (absolute), for the browser steps. */
  caPath: string;
  /** The stack's name, which names the CA in the OS and browser stores. */
  name: string;
  addresses: string[];
  files: CaInstallFile[];
}

/** `login --trust` on the dev stack in `dir`: its CA into the engine's certs.d for every registry address. */
export async function trustStack(dir: string, certsDir = DOCKER_CERTS_DIR): Promise<TrustResult> {
  const { config, model } = await loadStack(dir);
  if (model.mode !== 'dev') {
    throw new RegctlError('USAGE', '--trust is for the dev stack', {
      hint: 'the prod stack serves a public ACME certificate: no engine change is needed',
    });
  }
  const names = Object.values(model.hostnames);
  const ca = await stackCa(dir, names);
  const addresses = trustAddresses(config, model.hostnames.registry);
  const files = await installCa(ca, addresses, certsDir);
  return { caPath: join(dir, CA_CERT_FILE), name: config.name, addresses, files };
}
