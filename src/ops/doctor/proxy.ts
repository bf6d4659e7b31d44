/** Checks of the running stack as a client meets it: its containers, Traefik's timeouts, upload Location headers. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseDuration } from '../../common/units.js';
import { TRAEFIK_CONFIG_FILES } from '../../stack/build-model.js';
import { probe } from '../http-probe.js';
import { status } from '../status.js';
import { messageOf, throughTraefik, TRAEFIK_NOT_RUNNING, type Check } from './types.js';

const HOUR_MS = 3_600_000;

/** Traefik reads a bare YAML number as seconds; a string is a Go duration. Undefined when it does not parse. */
function readTimeoutMs(raw: string | number | undefined): number | undefined {
  if (raw === undefined) return 60_000;
  if (typeof raw === 'number') return raw * 1000;
  try {
    return parseDuration(raw);
  } catch {
    return undefined;
  }
}

/** Listed only when the engine answers; finds whether Traefik runs, which the checks through it need. */
export const stackCheck: Check = {
  id: 'stack',
  title: 'Stack containers',
  async run(ctx) {
    if (!ctx.engineUp) return undefined;
    try {
      const s = await status({ dir: ctx.opts.dir, engine: ctx.engine });
      ctx.running = s.services.some((x) => x.service === 'traefik' && x.state === 'running');
      const bad = s.services.filter((x) => x.state !== 'running' || (x.health !== undefined && x.health !== 'healthy'));
      return bad.length === 0
        ? { status: 'pass', detail: s.services.map((x) => `${x.service} ${x.health ?? x.state}`).join(', ') }
        : {
            status: 'fail',
            detail: bad.map((x) => `${x.service} is ${x.health ?? x.state}`).join(', '),
            fix: `run \`regctl up${ctx.tls ? ' --prod' : ''}\` (and \`regctl logs <service>\` to see why a service is unhealthy)`,
          };
    } catch (err) {
      return { status: 'fail', detail: messageOf(err), fix: 'run `regctl up`' };
    }
  },
};

/** Traefik's 60 s default read timeout cuts long pushes: every entrypoint but ping needs 0 (none) or an hour and more. */
export const traefikTimeoutCheck: Check = {
  id: 'traefik-timeout',
  title: 'Traefik read timeout',
  async run(ctx) {
    type StaticConfig = {
      entryPoints?: Record<string, { transport?: { respondingTimeouts?: { readTimeout?: string | number } } }>;
    };
    try {
      const file = join(ctx.opts.dir, TRAEFIK_CONFIG_FILES[ctx.mode]);
      const staticConfig = parseYaml(await readFile(file, 'utf8')) as StaticConfig;
      const short: string[] = [];
      for (const [name, ep] of Object.entries(staticConfig.entryPoints ?? {})) {
        if (name === 'ping') continue;
        const raw = ep.transport?.respondingTimeouts?.readTimeout;
        const ms = readTimeoutMs(raw);
        if (ms === undefined || (ms !== 0 && ms < HOUR_MS)) short.push(`${name}: ${raw ?? '60s (Traefik default)'}`);
      }
      return short.length === 0
        ? { status: 'pass', detail: 'entrypoints allow long uploads' }
        : {
            status: 'fail',
            detail: `uploads are cut after ${short.join(', ')}`,
            fix: 'set traefik.readTimeout: 0s in regctl.yaml, then `regctl init --force` and `regctl up`',
          };
    } catch (err) {
      return {
        status: 'fail',
        detail: `cannot read Traefik's static config: ${messageOf(err)}`,
        fix: 'run `regctl init --force` to render it again',
      };
    }
  },
};

/** Starting an upload through Traefik: the Location must be relative or under the registry's public URL. */
export const locationCheck: Check = {
  id: 'location',
  title: 'Upload Location headers',
  async run(ctx) {
    if (!ctx.running) return TRAEFIK_NOT_RUNNING;
    if (!ctx.creds) return { status: 'skip', detail: 'no admin credentials in .env' };
    // As a client sends it: Host carries the port when it is not the scheme's default.
    const asClient = { ...throughTraefik(ctx), hostHeader: ctx.hostHeader, auth: ctx.creds };
    try {
      const r = await probe({ ...asClient, path: '/v2/regctl-doctor/blobs/uploads/', method: 'POST' });
      const loc = r.headers.location ?? '';
      if (r.status === 202 && loc) {
        const path = loc.startsWith('http') ? new URL(loc).pathname + new URL(loc).search : loc;
        await probe({ ...asClient, path, method: 'DELETE' }).catch(() => undefined);
      }
      const origin = ctx.model.urls.registry;
      const good = r.status === 202 && (loc.startsWith('/') || loc.startsWith(`${origin}/`));
      return good
        ? { status: 'pass', detail: loc.startsWith('/') ? 'relative' : `carry ${origin}` }
        : {
            status: 'fail',
            detail:
              r.status === 202
                ? `Location is ${loc}, not under ${origin}`
                : `starting an upload answered HTTP ${r.status}`,
            fix: 'make the proxy send X-Forwarded-Proto and X-Forwarded-Host (Traefik does by default), and check the registry router in compose labels',
          };
    } catch (err) {
      return { status: 'fail', detail: messageOf(err), fix: `check that Traefik answers on port ${ctx.publicPort}` };
    }
  },
};
