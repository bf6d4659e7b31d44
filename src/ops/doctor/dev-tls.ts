/**
 * dev only: HTTPS with the stack's local CA. The CA and the leaf on disk, the engine's certs.d holding the CA for
 * the registry's addresses, and Traefik serving the leaf (a TLS handshake verified against ca.crt alone).
 */
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { readIfExists } from '../../common/fs.js';
import { CA_CERT_FILE, CA_KEY_FILE, leafFiles } from '../../stack/dev-tls.js';
import { caProblem, daysLeft, fileMode, leafProblem, RENEW_DAYS } from '../dev-ca.js';
import { DOCKER_CERTS_DIR, sameCertificate, trustAddresses } from '../trust.js';
import { messageOf, TRAEFIK_NOT_RUNNING, type Check, type DoctorContext, type Verdict } from './types.js';

const NO_CA: Verdict = { status: 'skip', detail: 'no usable local CA' };

async function readCa(ctx: DoctorContext): Promise<{ cert: string; key: string } | undefined> {
  const cert = await readIfExists(join(ctx.opts.dir, CA_CERT_FILE));
  const key = await readIfExists(join(ctx.opts.dir, CA_KEY_FILE));
  if (cert === undefined || key === undefined || caProblem({ cert, key }, ctx.names)) return undefined;
  return { cert, key };
}

const keyModeProblem = async (dir: string, file: string): Promise<string | undefined> => {
  const mode = await fileMode(join(dir, file));
  return mode !== undefined && mode !== 0o600 ? `${file} is mode ${mode.toString(8)}, not 600` : undefined;
};

export const devCaCheck: Check = {
  id: 'dev-ca',
  title: 'Local CA',
  mode: 'dev',
  async run(ctx) {
    const cert = await readIfExists(join(ctx.opts.dir, CA_CERT_FILE));
    const key = await readIfExists(join(ctx.opts.dir, CA_KEY_FILE));
    if (cert === undefined || key === undefined) {
      return {
        status: 'fail',
        detail: `${cert === undefined ? CA_CERT_FILE : CA_KEY_FILE} is missing`,
        fix: 'run `regctl up` (or `regctl init`): it makes the CA, then `regctl login --trust`',
      };
    }
    const problem = caProblem({ cert, key }, ctx.names) ?? (await keyModeProblem(ctx.opts.dir, CA_KEY_FILE));
    if (problem) {
      return {
        status: 'fail',
        detail: problem,
        fix: problem.includes('mode')
          ? `chmod 600 ${join(ctx.opts.dir, CA_KEY_FILE)}`
          : 'run `regctl up`: it replaces an unusable CA; then `regctl login --trust` again',
      };
    }
    const x = new X509Certificate(cert);
    return {
      status: 'pass',
      detail: `${x.subject.split('\n')[0]}, expires ${x.validTo} (${daysLeft(x, new Date())} days)`,
    };
  },
};

export const devLeafCheck: Check = {
  id: 'dev-cert',
  title: 'Dev certificate',
  mode: 'dev',
  async run(ctx) {
    const ca = await readCa(ctx);
    if (!ca) return NO_CA;
    const files = leafFiles(ctx.config.host);
    const cert = await readIfExists(join(ctx.opts.dir, files.cert));
    const key = await readIfExists(join(ctx.opts.dir, files.key));
    const renew = "run `regctl up`: it issues a new leaf for the stack's host names";
    if (cert === undefined || key === undefined)
      return { status: 'fail', detail: `${cert === undefined ? files.cert : files.key} is missing`, fix: renew };
    const problem = leafProblem({ cert, key }, ca.cert, ctx.names, new Date(), 0);
    if (problem) return { status: 'fail', detail: problem, fix: renew };
    const modeProblem = await keyModeProblem(ctx.opts.dir, files.key);
    if (modeProblem) return { status: 'fail', detail: modeProblem, fix: `chmod 600 ${join(ctx.opts.dir, files.key)}` };
    const soon = leafProblem({ cert, key }, ca.cert, ctx.names, new Date(), RENEW_DAYS);
    if (soon) return { status: 'warn', detail: soon, fix: renew };
    const x = new X509Certificate(cert);
    return {
      status: 'pass',
      detail: `for ${ctx.names.join(', ')}, expires ${x.validTo} (${daysLeft(x, new Date())} days)`,
    };
  },
};

export const devCaTrustCheck: Check = {
  id: 'dev-ca-trust',
  title: 'Engine trusts the local CA',
  mode: 'dev',
  async run(ctx) {
    const ca = await readCa(ctx);
    if (!ca) return NO_CA;
    if (ctx.platform !== 'linux') {
      return {
        status: 'skip',
        detail: `certs.d is read on linux here; on ${ctx.platform} Docker Desktop uses ~/.docker/certs.d/<host>/ca.crt`,
      };
    }
    const certsDir = ctx.opts.certsDir ?? DOCKER_CERTS_DIR;
    const wrong: string[] = [];
    for (const address of trustAddresses(ctx.config, ctx.registryHost)) {
      const path = join(certsDir, address, 'ca.crt');
      const held = await readIfExists(path).catch(() => undefined);
      if (held === undefined) wrong.push(`${path} is missing`);
      else if (!sameCertificate(held, ca.cert)) wrong.push(`${path} holds another certificate`);
    }
    if (wrong.length === 0) return { status: 'pass', detail: `${certsDir} holds the stack's CA` };
    return {
      // An engine that treats the registry as insecure reaches it without the CA; clients that verify still need it.
      status: ctx.registryIp && /^127\./.test(ctx.registryIp) ? 'warn' : 'fail',
      detail: wrong.join('; '),
      fix: 'run `regctl login --trust` (as root): the engine reads certs.d per connection, no restart',
    };
  },
};

/** A TLS handshake to Traefik's HTTPS port as the registry's name, verified against ca.crt and nothing else. */
function verifiedHandshake(ctx: DoctorContext, ca: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: ctx.address,
      port: ctx.config.ports.https,
      servername: ctx.registryHost,
      ca,
      rejectUnauthorized: true,
    });
    socket.setTimeout(5000, () => socket.destroy(new Error('TLS handshake timed out')));
    socket.once('secureConnect', () => {
      const peer = socket.getPeerX509Certificate();
      socket.end();
      if (peer) resolve(peer);
      else reject(new Error('the server presented no certificate'));
    });
    socket.once('error', reject);
  });
}

export const devHttpsCheck: Check = {
  id: 'dev-https',
  title: 'HTTPS through Traefik',
  mode: 'dev',
  async run(ctx) {
    if (!ctx.running) return TRAEFIK_NOT_RUNNING;
    const ca = await readCa(ctx);
    if (!ca) return NO_CA;
    const where = `${ctx.registryHost} on port ${ctx.config.ports.https}`;
    try {
      const served = await verifiedHandshake(ctx, ca.cert);
      const onDisk = await readIfExists(join(ctx.opts.dir, leafFiles(ctx.config.host).cert));
      if (onDisk !== undefined && !sameCertificate(onDisk, served.toString())) {
        return {
          status: 'warn',
          detail: `${where} serves an older leaf (expires ${served.validTo}) than certs/traefik holds`,
          fix: `restart Traefik to load the new one: docker restart ${ctx.model.project}-traefik`,
        };
      }
      return { status: 'pass', detail: `${where} serves the leaf, verified against ca.crt` };
    } catch (err) {
      return {
        status: 'fail',
        detail: `${where}: ${messageOf(err)}`,
        fix: 'run `regctl init --force` then `regctl up` so Traefik mounts traefik/tls.yml and certs/traefik/',
      };
    }
  },
};

/** Whether the engine's certs.d holds the stack's usable CA for `address` (docker then reaches it over HTTPS). */
export async function engineHasStackCa(ctx: DoctorContext, address: string): Promise<boolean> {
  const ca = await readCa(ctx);
  if (!ca || ctx.platform !== 'linux') return false;
  const held = await readIfExists(join(ctx.opts.certsDir ?? DOCKER_CERTS_DIR, address, 'ca.crt')).catch(
    () => undefined,
  );
  return held !== undefined && sameCertificate(held, ca.cert);
}
