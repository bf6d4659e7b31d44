/**
 * `regctl doctor`: checks the whole path a `docker push` takes, from the engine to the bytes on disk, and
 * says for each problem what is wrong and the exact fix. Checks are independent: one failing never hides
 * the others, and a check whose prerequisite failed reports `skip` with the reason.
 */
import { lookup } from 'node:dns/promises';
import { readFile, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { BlockList, isIP } from 'node:net';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { parse as parseYaml } from 'yaml';
import { formatBytes, parseDuration, parseSize } from '../common/units.js';
import type { DockerEngine, EngineInfo } from '../docker/engine.js';
import { TRAEFIK_CONFIG_FILES, DATA_DIR } from '../stack/build-model.js';
import { ACME_STORAGE_DIR } from '../stack/traefik.js';
import { isTraefikDefaultCertificate, probe, servedCertificate } from './http-probe.js';
import { portIsFree, portHolder } from './ports.js';
import { adminCredentials, loadStack, projectLabels, type LoadedStack } from './stack.js';
import { status } from './status.js';

export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  id: string;
  title: string;
  status: CheckStatus;
  /** What was found. */
  detail: string;
  /** The exact fix, for warn and fail. */
  fix?: string;
}

export interface DoctorReport {
  ok: boolean;
  mode: 'dev' | 'prod';
  checks: CheckResult[];
}

export interface DoctorOptions {
  dir: string;
  engine: DockerEngine;
  prod?: boolean;
  /** Also push a slow, large synthetic upload through Traefik (takes over a minute). */
  uploadTest?: boolean;
  /** Address Traefik's published ports are reached on. */
  address?: string;
  platform?: NodeJS.Platform;
  onProgress?: (text: string) => void;
  /** Seconds the synthetic upload lasts (over Traefik's 60 s default read timeout). */
  uploadSeconds?: number;
  /** Bytes of the synthetic upload (over the 100 MB limit common in front of registries). */
  uploadBytes?: number;
}

const HOUR_MS = 3_600_000;

/** Where Docker's daemon settings live for the person's platform, and how to apply them. */
export function daemonJsonAdvice(platform: NodeJS.Platform, registry: string): string {
  const snippet = JSON.stringify({ 'insecure-registries': [registry] });
  if (platform === 'linux') {
    return `add ${snippet} to /etc/docker/daemon.json (merge with what is there), then restart the engine: sudo systemctl restart docker — or run \`regctl login --trust\``;
  }
  return `in Docker Desktop → Settings → Docker Engine, add ${snippet} to the JSON, then Apply & Restart`;
}

export function hostsAdvice(platform: NodeJS.Platform, names: string[]): string {
  const file = platform === 'win32' ? 'C:\\Windows\\System32\\drivers\\etc\\hosts' : '/etc/hosts';
  return `add the line "127.0.0.1 ${names.join(' ')}" to ${file} (or create DNS records pointing at this machine)`;
}

/** Traefik reads a bare YAML number as seconds; a string is a Go duration. Undefined when it does not parse. */
function durationOrUndefined(text: string): number | undefined {
  try {
    return parseDuration(text);
  } catch {
    return undefined;
  }
}

function engineTrusts(info: EngineInfo, registry: string, ip: string | undefined): boolean {
  if (info.insecureRegistries.includes(registry)) return true;
  if (!ip) return false;
  const list = new BlockList();
  for (const cidr of info.insecureCidrs) {
    const [net, bits] = cidr.split('/');
    if (!net || !bits) continue;
    const type = isIP(net) === 6 ? 'ipv6' : 'ipv4';
    if (isIP(ip) === (type === 'ipv6' ? 6 : 4)) list.addSubnet(net, Number(bits), type);
  }
  return list.check(ip, isIP(ip) === 6 ? 'ipv6' : 'ipv4');
}

/**
 * Streams `bytes` of zeros as one PATCH, paced to last `seconds`, through Traefik; resolves with the
 * status. The upload session is cancelled afterwards either way.
 */
async function slowUpload(o: {
  address: string;
  port: number;
  host: string;
  tls: boolean;
  auth: { username: string; password: string };
  bytes: number;
  seconds: number;
  onProgress?: (text: string) => void;
}): Promise<{ status: number; elapsedMs: number; error?: string }> {
  const auth = `Basic ${Buffer.from(`${o.auth.username}:${o.auth.password}`).toString('base64')}`;
  const start = await probe({ address: o.address, port: o.port, host: o.host, tls: o.tls, insecure: true, path: '/v2/regctl-doctor/blobs/uploads/', method: 'POST', auth: o.auth });
  const location = start.headers.location;
  if (start.status !== 202 || !location) return { status: start.status, elapsedMs: 0, error: `upload did not start (HTTP ${start.status})` };
  const path = location.startsWith('http') ? new URL(location).pathname + new URL(location).search : location;
  const began = Date.now();
  const result = await new Promise<{ status: number; error?: string }>((resolve) => {
    const req = (o.tls ? httpsRequest : httpRequest)(
      {
        host: o.address,
        port: o.port,
        path,
        method: 'PATCH',
        headers: { host: o.host, authorization: auth, 'content-type': 'application/octet-stream', 'content-length': String(o.bytes) },
        ...(o.tls ? { servername: o.host, rejectUnauthorized: false } : {}),
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
      },
    );
    req.on('error', (err) => resolve({ status: 0, error: err.message }));
    const chunk = Buffer.alloc(64 * 1024);
    const perTick = Math.max(1, Math.ceil(o.bytes / (o.seconds * 4)));
    let sent = 0;
    const timer = setInterval(() => {
      let budget = Math.min(perTick, o.bytes - sent);
      while (budget > 0) {
        const n = Math.min(budget, chunk.length);
        req.write(n === chunk.length ? chunk : chunk.subarray(0, n));
        sent += n;
        budget -= n;
      }
      o.onProgress?.(`synthetic upload: ${formatBytes(sent)} of ${formatBytes(o.bytes)}, ${Math.round((Date.now() - began) / 1000)} s`);
      if (sent >= o.bytes) {
        clearInterval(timer);
        req.end();
      }
    }, 250);
    req.on('close', () => clearInterval(timer));
  });
  await probe({ address: o.address, port: o.port, host: o.host, tls: o.tls, insecure: true, path, method: 'DELETE', auth: o.auth }).catch(() => undefined);
  return { ...result, elapsedMs: Date.now() - began };
}

export async function doctor(opts: DoctorOptions): Promise<DoctorReport> {
  const checks: CheckResult[] = [];
  const add = (c: CheckResult) => {
    checks.push(c);
    opts.onProgress?.(`${c.title}: ${c.status}`);
  };
  const platform = opts.platform ?? process.platform;
  const address = opts.address ?? '127.0.0.1';

  let engineUp = false;
  try {
    await opts.engine.ping();
    engineUp = true;
    add({ id: 'engine', title: 'Docker engine', status: 'pass', detail: 'the engine answers' });
  } catch (err) {
    add({ id: 'engine', title: 'Docker engine', status: 'fail', detail: (err as Error).message, fix: 'start the Docker daemon (sudo systemctl start docker), or point DOCKER_HOST at a running engine' });
  }

  let stack: LoadedStack;
  try {
    stack = await loadStack(opts.dir, { ...(opts.prod ? { prod: true } : {}) });
    add({ id: 'config', title: 'Stack configuration', status: 'pass', detail: `${join(opts.dir, 'regctl.yaml')} is valid` });
  } catch (err) {
    add({ id: 'config', title: 'Stack configuration', status: 'fail', detail: (err as Error).message, fix: 'run `regctl init` in this directory, or fix regctl.yaml' });
    return { ok: false, mode: opts.prod ? 'prod' : 'dev', checks };
  }
  const { model, config } = stack;
  const mode = model.mode;
  const tls = mode === 'prod';
  const registryHost = model.hostnames.registry;
  const publicPort = tls ? config.ports.https : config.ports.http;
  const names = [model.hostnames.registry, ...(model.hostnames.ui ? [model.hostnames.ui] : [])];
  // What a client sends as Host: the name, with the port when it is not the scheme's default.
  const hostHeader = publicPort === (tls ? 443 : 80) ? registryHost : `${registryHost}:${publicPort}`;

  // Ports: free, or published by this stack's own containers.
  const ours = engineUp ? await opts.engine.listContainers(projectLabels(model)).catch(() => []) : [];
  const wanted = model.services.flatMap((s) => s.ports.map((p) => ({ port: p.host, service: s.name })));
  const portProblems: string[] = [];
  const portFixes: string[] = [];
  for (const { port, service } of wanted) {
    if (ours.some((c) => c.state === 'running' && c.ports.some((p) => p.hostPort === port))) continue;
    if (await portIsFree(port)) continue;
    const holder = engineUp ? await portHolder(port, opts.engine) : undefined;
    portProblems.push(`port ${port} (${service}) is taken${holder ? ` by ${holder}` : ''}`);
    portFixes.push(`stop ${holder ?? `what listens on ${port}`} or change ports in regctl.yaml`);
  }
  add(
    portProblems.length === 0
      ? { id: 'ports', title: 'Ports', status: 'pass', detail: `${wanted.map((w) => w.port).join(', ')} free or held by this stack` }
      : { id: 'ports', title: 'Ports', status: 'fail', detail: portProblems.join('; '), fix: portFixes.join('; ') + ', then `regctl init --force` and `regctl up`' },
  );

  // Names.
  let registryIp: string | undefined;
  const unresolved: string[] = [];
  for (const name of names) {
    try {
      const r = await lookup(name);
      if (name === registryHost) registryIp = r.address;
    } catch {
      unresolved.push(name);
    }
  }
  add(
    unresolved.length === 0
      ? { id: 'dns', title: 'Host names', status: 'pass', detail: `${names.join(', ')} resolve` }
      : { id: 'dns', title: 'Host names', status: 'fail', detail: `${unresolved.join(', ')} do${unresolved.length === 1 ? 'es' : ''} not resolve`, fix: hostsAdvice(platform, unresolved) },
  );

  // Trust of an HTTP registry by the engine (dev).
  if (mode === 'dev') {
    const clientName = `${registryHost}${config.ports.http === 80 ? '' : `:${config.ports.http}`}`;
    if (!engineUp) {
      add({ id: 'trust', title: 'Engine trusts the HTTP registry', status: 'skip', detail: 'no engine to ask' });
    } else {
      const info = await opts.engine.engineInfo();
      const trusted = engineTrusts(info, clientName, registryIp);
      add(
        trusted
          ? { id: 'trust', title: 'Engine trusts the HTTP registry', status: 'pass', detail: `${clientName} is reached over HTTP (${registryIp ? `${registryIp} is in an insecure range or listed` : 'listed'})` }
          : { id: 'trust', title: 'Engine trusts the HTTP registry', status: 'fail', detail: `docker will try HTTPS for ${clientName} ("server gave HTTP response to HTTPS client")`, fix: daemonJsonAdvice(platform, clientName) },
      );
      if (config.ports.registry !== 0) {
        const direct = `127.0.0.1:${config.ports.registry}`;
        const directTrusted = engineTrusts(info, direct, '127.0.0.1');
        if (!directTrusted) add({ id: 'trust-direct', title: 'Engine trusts the direct port', status: 'warn', detail: `${direct} is not in an insecure range`, fix: daemonJsonAdvice(platform, direct) });
      }
    }
  }

  // The stack's containers.
  let running = false;
  if (engineUp) {
    try {
      const s = await status({ dir: opts.dir, engine: opts.engine });
      running = s.services.some((x) => x.service === 'traefik' && x.state === 'running');
      const bad = s.services.filter((x) => x.state !== 'running' || (x.health !== undefined && x.health !== 'healthy'));
      add(
        bad.length === 0
          ? { id: 'stack', title: 'Stack containers', status: 'pass', detail: s.services.map((x) => `${x.service} ${x.health ?? x.state}`).join(', ') }
          : { id: 'stack', title: 'Stack containers', status: 'fail', detail: bad.map((x) => `${x.service} is ${x.health ?? x.state}`).join(', '), fix: `run \`regctl up${tls ? ' --prod' : ''}\` (and \`regctl logs <service>\` to see why a service is unhealthy)` },
      );
    } catch (err) {
      add({ id: 'stack', title: 'Stack containers', status: 'fail', detail: (err as Error).message, fix: 'run `regctl up`' });
    }
  }

  // Traefik's read timeout: its 60 s default cuts long pushes.
  try {
    const file = join(opts.dir, TRAEFIK_CONFIG_FILES[mode]);
    const staticConfig = parseYaml(await readFile(file, 'utf8')) as { entryPoints?: Record<string, { transport?: { respondingTimeouts?: { readTimeout?: string | number } } }> };
    const short: string[] = [];
    for (const [name, ep] of Object.entries(staticConfig.entryPoints ?? {})) {
      if (name === 'ping') continue;
      const raw = ep.transport?.respondingTimeouts?.readTimeout;
      const ms = raw === undefined ? 60_000 : typeof raw === 'number' ? raw * 1000 : durationOrUndefined(raw);
      if (ms === undefined || (ms !== 0 && ms < HOUR_MS)) short.push(`${name}: ${raw ?? '60s (Traefik default)'}`);
    }
    add(
      short.length === 0
        ? { id: 'traefik-timeout', title: 'Traefik read timeout', status: 'pass', detail: 'entrypoints allow long uploads' }
        : { id: 'traefik-timeout', title: 'Traefik read timeout', status: 'fail', detail: `uploads are cut after ${short.join(', ')}`, fix: 'set traefik.readTimeout: 0s in regctl.yaml, then `regctl init --force` and `regctl up`' },
    );
  } catch (err) {
    add({ id: 'traefik-timeout', title: 'Traefik read timeout', status: 'fail', detail: `cannot read Traefik's static config: ${(err as Error).message}`, fix: 'run `regctl init --force` to render it again' });
  }

  const creds = await adminCredentials(opts.dir);
  if (!running) {
    add({ id: 'location', title: 'Upload Location headers', status: 'skip', detail: 'Traefik is not running' });
  } else if (!creds) {
    add({ id: 'location', title: 'Upload Location headers', status: 'skip', detail: 'no admin credentials in .env' });
  } else {
    try {
      const r = await probe({ address, port: publicPort, host: registryHost, hostHeader, tls, insecure: true, path: '/v2/regctl-doctor/blobs/uploads/', method: 'POST', auth: creds });
      const loc = r.headers.location ?? '';
      if (r.status === 202 && loc) {
        await probe({ address, port: publicPort, host: registryHost, hostHeader, tls, insecure: true, path: loc.startsWith('http') ? new URL(loc).pathname + new URL(loc).search : loc, method: 'DELETE', auth: creds }).catch(() => undefined);
      }
      const origin = model.urls.registry;
      const good = r.status === 202 && (loc.startsWith('/') || loc.startsWith(`${origin}/`));
      add(
        good
          ? { id: 'location', title: 'Upload Location headers', status: 'pass', detail: loc.startsWith('/') ? 'relative' : `carry ${origin}` }
          : { id: 'location', title: 'Upload Location headers', status: 'fail', detail: r.status === 202 ? `Location is ${loc}, not under ${origin}` : `starting an upload answered HTTP ${r.status}`, fix: 'make the proxy send X-Forwarded-Proto and X-Forwarded-Host (Traefik does by default), and check the registry router in compose labels' },
      );
    } catch (err) {
      add({ id: 'location', title: 'Upload Location headers', status: 'fail', detail: (err as Error).message, fix: `check that Traefik answers on port ${publicPort}` });
    }
  }

  if (opts.uploadTest) {
    if (!running || !creds) {
      add({ id: 'upload', title: 'Slow large upload through Traefik', status: 'skip', detail: running ? 'no admin credentials in .env' : 'Traefik is not running' });
    } else {
      const seconds = opts.uploadSeconds ?? 65;
      const bytes = opts.uploadBytes ?? 128 * 1024 * 1024;
      const r = await slowUpload({ address, port: publicPort, host: registryHost, tls, auth: creds, bytes, seconds, ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) });
      add(
        r.status === 202
          ? { id: 'upload', title: 'Slow large upload through Traefik', status: 'pass', detail: `${formatBytes(bytes)} over ${Math.round(r.elapsedMs / 1000)} s accepted` }
          : { id: 'upload', title: 'Slow large upload through Traefik', status: 'fail', detail: `${formatBytes(bytes)} over ${Math.round(r.elapsedMs / 1000)} s: ${r.error ?? `HTTP ${r.status}`}`, fix: 'raise the proxy\'s read timeout (traefik.readTimeout: 0s) and remove body size limits or buffering middlewares on the registry route' },
      );
    }
  }

  // Disk headroom on the data volume: as the registry sees it when it runs, else from the volume's host path.
  const floor = parseSize(config.registry.minFreeDisk);
  let space: { free: number; total: number; where: string } | undefined;
  let spaceProblem = '';
  if (running && creds) {
    try {
      const r = await probe({ address, port: publicPort, host: registryHost, tls, insecure: true, path: '/admin/v1/disk', auth: creds });
      const body = r.status === 200 ? (JSON.parse(r.body) as { freeBytes: number | null; totalBytes: number | null }) : undefined;
      if (body && body.freeBytes !== null && body.totalBytes !== null) space = { free: body.freeBytes, total: body.totalBytes, where: 'the registry\'s data volume' };
      else spaceProblem = `the registry answered HTTP ${r.status}`;
    } catch (err) {
      spaceProblem = (err as Error).message;
    }
  }
  if (!space) {
    const dataKey = model.services.find((s) => s.name === 'registry')?.mounts.find((m) => m.target === DATA_DIR)?.source;
    const dataVolume = model.volumes.find((v) => v.key === dataKey)?.name;
    const mountpoint = engineUp && dataVolume ? await opts.engine.volumeMountpoint(dataVolume).catch(() => undefined) : undefined;
    if (mountpoint) {
      try {
        const fs = await statfs(mountpoint);
        space = { free: fs.bavail * fs.bsize, total: fs.blocks * fs.bsize, where: `volume ${dataVolume}` };
      } catch (err) {
        spaceProblem = `cannot read ${mountpoint}: ${(err as Error).message}`;
      }
    } else if (!spaceProblem) {
      spaceProblem = dataVolume ? `volume ${dataVolume} not found` : 'no data volume';
    }
  }
  if (!space) {
    add({ id: 'disk', title: 'Disk headroom', status: 'skip', detail: spaceProblem });
  } else {
    const detail = `${formatBytes(space.free)} free of ${formatBytes(space.total)} on ${space.where}`;
    const fix = 'free space on the volume\'s filesystem (`regctl gc` removes deleted images), or move the volume to a larger disk';
    if (space.free < floor) add({ id: 'disk', title: 'Disk headroom', status: 'fail', detail: `${detail}: under the ${config.registry.minFreeDisk} floor, uploads are refused`, fix });
    else if (space.free < 2 * floor || space.free < space.total * 0.1) add({ id: 'disk', title: 'Disk headroom', status: 'warn', detail: `${detail}: nearly full (floor ${config.registry.minFreeDisk})`, fix });
    else add({ id: 'disk', title: 'Disk headroom', status: 'pass', detail });
  }

  // Clock skew between this machine, the engine and the registry.
  const skews: string[] = [];
  let worst = 0;
  if (engineUp) {
    const info = await opts.engine.engineInfo().catch(() => undefined);
    if (info?.systemTime) {
      const d = Math.abs(Date.parse(info.systemTime) - Date.now());
      worst = Math.max(worst, d);
      skews.push(`engine ${Math.round(d / 1000)} s`);
    }
  }
  if (running) {
    const r = await probe({ address, port: publicPort, host: registryHost, tls, insecure: true, path: '/v2/' }).catch(() => undefined);
    const date = r?.headers.date;
    if (date) {
      const d = Math.abs(Date.parse(date) - Date.now());
      worst = Math.max(worst, d);
      skews.push(`registry ${Math.round(d / 1000)} s`);
    }
  }
  if (skews.length === 0) add({ id: 'clock', title: 'Clock skew', status: 'skip', detail: 'nothing to compare with' });
  else if (worst > 60_000) add({ id: 'clock', title: 'Clock skew', status: 'fail', detail: skews.join(', '), fix: 'synchronise the clocks (timedatectl set-ntp true); certificates and tokens fail when clocks disagree' });
  else if (worst > 5_000) add({ id: 'clock', title: 'Clock skew', status: 'warn', detail: skews.join(', '), fix: 'enable time synchronisation (timedatectl set-ntp true)' });
  else add({ id: 'clock', title: 'Clock skew', status: 'pass', detail: skews.join(', ') });

  if (mode === 'prod') await prodChecks({ add, stack, engine: opts.engine, engineUp, running, address });

  return { ok: checks.every((c) => c.status !== 'fail'), mode, checks };
}

async function prodChecks(o: { add: (c: CheckResult) => void; stack: LoadedStack; engine: DockerEngine; engineUp: boolean; running: boolean; address: string }): Promise<void> {
  const { add, stack } = o;
  const { model, config } = stack;
  const host = model.hostnames.registry;
  if (!o.running) {
    add({ id: 'certificate', title: 'Certificate', status: 'skip', detail: 'Traefik is not running' });
  } else {
    try {
      const cert = await servedCertificate({ address: o.address, port: config.ports.https, servername: host });
      const covers = cert.altNames.includes(host) || cert.subject === host;
      const detail = `issued by ${cert.issuer} for ${cert.altNames.join(', ') || cert.subject}, expires ${cert.validTo.slice(0, 10)} (${cert.daysLeft} days)`;
      if (isTraefikDefaultCertificate(cert)) add({ id: 'certificate', title: 'Certificate', status: 'fail', detail: 'Traefik serves its default self-signed certificate: ACME has not issued one', fix: 'check `regctl logs traefik` for ACME errors; port 80 must reach this machine from the internet for the HTTP challenge, and acme.email must be set' });
      else if (!covers) add({ id: 'certificate', title: 'Certificate', status: 'fail', detail: `${detail}: does not cover ${host}`, fix: 'remove acme.json from the letsencrypt volume and `regctl up --prod` again' });
      else if (cert.daysLeft < 14) add({ id: 'certificate', title: 'Certificate', status: 'warn', detail, fix: 'Traefik renews 30 days before expiry: check `regctl logs traefik` for renewal errors' });
      else add({ id: 'certificate', title: 'Certificate', status: 'pass', detail });
    } catch (err) {
      add({ id: 'certificate', title: 'Certificate', status: 'fail', detail: (err as Error).message, fix: `check that Traefik answers on port ${config.ports.https}` });
    }
  }

  const le = model.volumes.find((v) => v.key === 'letsencrypt')?.name;
  const mp = o.engineUp && le ? await o.engine.volumeMountpoint(le).catch(() => undefined) : undefined;
  if (!mp) {
    add({ id: 'acme-json', title: 'acme.json permissions', status: 'skip', detail: le ? `volume ${le} not found` : 'no ACME volume' });
  } else {
    try {
      const st = await stat(join(mp, 'acme.json'));
      const mode = st.mode & 0o777;
      add(
        mode === 0o600
          ? { id: 'acme-json', title: 'acme.json permissions', status: 'pass', detail: 'mode 600' }
          : { id: 'acme-json', title: 'acme.json permissions', status: 'fail', detail: `mode ${mode.toString(8)}: Traefik refuses to use it`, fix: `chmod 600 ${join(mp, 'acme.json')} (the file in the ${le} volume at ${ACME_STORAGE_DIR}/acme.json), then \`regctl up --prod\`` },
      );
    } catch {
      add({ id: 'acme-json', title: 'acme.json permissions', status: 'skip', detail: 'no acme.json yet (Traefik creates it on its first certificate)' });
    }
  }

  if (!o.running) {
    add({ id: 'http-challenge', title: 'Port 80 for the HTTP challenge', status: 'skip', detail: 'Traefik is not running' });
  } else {
    try {
      const r = await probe({ address: o.address, port: config.ports.http, host, path: '/.well-known/acme-challenge/regctl-doctor' });
      add({ id: 'http-challenge', title: 'Port 80 for the HTTP challenge', status: 'pass', detail: `Traefik answers on port ${config.ports.http} (HTTP ${r.status})` });
    } catch (err) {
      add({ id: 'http-challenge', title: 'Port 80 for the HTTP challenge', status: 'fail', detail: (err as Error).message, fix: `publish port ${config.ports.http} and open it in the firewall: Let's Encrypt validates over port 80` });
    }
  }
}
