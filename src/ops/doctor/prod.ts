/** prod only: the served certificate, acme.json's permissions, and port 80 for Let's Encrypt's HTTP challenge. */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ACME_STORAGE_DIR } from '../../stack/traefik.js';
import { isTraefikDefaultCertificate, probe, servedCertificate } from '../http-probe.js';
import { messageOf, TRAEFIK_NOT_RUNNING, type Check } from './types.js';

export const certificateCheck: Check = {
  id: 'certificate',
  title: 'Certificate',
  mode: 'prod',
  async run(ctx) {
    if (!ctx.running) return TRAEFIK_NOT_RUNNING;
    const host = ctx.registryHost;
    const port = ctx.config.ports.https;
    try {
      const cert = await servedCertificate({ address: ctx.address, port, servername: host });
      const covers = cert.altNames.includes(host) || cert.subject === host;
      const detail = `issued by ${cert.issuer} for ${cert.altNames.join(', ') || cert.subject}, expires ${cert.validTo.slice(0, 10)} (${cert.daysLeft} days)`;
      if (isTraefikDefaultCertificate(cert)) {
        return {
          status: 'fail',
          detail: 'Traefik serves its default self-signed certificate: ACME has not issued one',
          fix: 'check `regctl logs traefik` for ACME errors; port 80 must reach this machine from the internet for the HTTP challenge, and acme.email must be set',
        };
      }
      if (!covers)
        return {
          status: 'fail',
          detail: `${detail}: does not cover ${host}`,
          fix: 'remove acme.json from the letsencrypt volume and `regctl up --prod` again',
        };
      if (cert.daysLeft < 14)
        return {
          status: 'warn',
          detail,
          fix: 'Traefik renews 30 days before expiry: check `regctl logs traefik` for renewal errors',
        };
      return { status: 'pass', detail };
    } catch (err) {
      return { status: 'fail', detail: messageOf(err), fix: `check that Traefik answers on port ${port}` };
    }
  },
};

export const acmeJsonCheck: Check = {
  id: 'acme-json',
  title: 'acme.json permissions',
  mode: 'prod',
  async run(ctx) {
    const le = ctx.model.volumes.find((v) => v.key === 'letsencrypt')?.name;
    const mp = ctx.engineUp && le ? await ctx.engine.volumeMountpoint(le).catch(() => undefined) : undefined;
    if (!mp) return { status: 'skip', detail: le ? `volume ${le} not found` : 'no ACME volume' };
    let mode: number;
    try {
      mode = (await stat(join(mp, 'acme.json'))).mode & 0o777;
    } catch {
      return { status: 'skip', detail: 'no acme.json yet (Traefik creates it on its first certificate)' };
    }
    return mode === 0o600
      ? { status: 'pass', detail: 'mode 600' }
      : {
          status: 'fail',
          detail: `mode ${mode.toString(8)}: Traefik refuses to use it`,
          fix: `chmod 600 ${join(mp, 'acme.json')} (the file in the ${le} volume at ${ACME_STORAGE_DIR}/acme.json), then \`regctl up --prod\``,
        };
  },
};

export const httpChallengeCheck: Check = {
  id: 'http-challenge',
  title: 'Port 80 for the HTTP challenge',
  mode: 'prod',
  async run(ctx) {
    if (!ctx.running) return TRAEFIK_NOT_RUNNING;
    const port = ctx.config.ports.http;
    try {
      const r = await probe({
        address: ctx.address,
        port,
        host: ctx.registryHost,
        path: '/.well-known/acme-challenge/regctl-doctor',
      });
      return { status: 'pass', detail: `Traefik answers on port ${port} (HTTP ${r.status})` };
    } catch (err) {
      return {
        status: 'fail',
        detail: messageOf(err),
        fix: `publish port ${port} and open it in the firewall: Let's Encrypt validates over port 80`,
      };
    }
  },
};
