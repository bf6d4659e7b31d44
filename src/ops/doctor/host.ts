/** Checks of this machine and its engine: ports, host names, and whether the engine trusts the HTTP registry. */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import type { EngineInfo } from '../../docker/engine.js';
import { portHolder, portIsFree } from '../ports.js';
import { projectLabels } from '../stack.js';
import { engineHasStackCa } from './dev-tls.js';
import type { Check } from './types.js';

/** Where Docker's daemon settings live for the person's platform, and how to apply them. */
export function daemonJsonAdvice(platform: NodeJS.Platform, registry: string): string {
  const snippet = JSON.stringify({ 'insecure-registries': [registry] });
  if (platform === 'linux') {
    return `add ${snippet} to /etc/docker/daemon.json (merge with what is there), then restart the engine: sudo systemctl restart docker — or run \`regctl login --trust\` (HTTPS with the stack's CA, no restart)`;
  }
  return `in Docker Desktop → Settings → Docker Engine, add ${snippet} to the JSON, then Apply & Restart`;
}

export function hostsAdvice(platform: NodeJS.Platform, names: string[]): string {
  const file = platform === 'win32' ? 'C:\\Windows\\System32\\drivers\\etc\\hosts' : '/etc/hosts';
  return `add the line "127.0.0.1 ${names.join(' ')}" to ${file} (or create DNS records pointing at this machine)`;
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

/** Each published port: free, or published by this stack's own running containers. */
export const portsCheck: Check = {
  id: 'ports',
  title: 'Ports',
  async run(ctx) {
    const ours = ctx.engineUp ? await ctx.engine.listContainers(projectLabels(ctx.model)).catch(() => []) : [];
    const wanted = ctx.model.services.flatMap((s) => s.ports.map((p) => ({ port: p.host, service: s.name })));
    const problems: string[] = [];
    const fixes: string[] = [];
    for (const { port, service } of wanted) {
      if (ours.some((c) => c.state === 'running' && c.ports.some((p) => p.hostPort === port))) continue;
      if (await portIsFree(port)) continue;
      const holder = ctx.engineUp ? await portHolder(port, ctx.engine) : undefined;
      problems.push(`port ${port} (${service}) is taken${holder ? ` by ${holder}` : ''}`);
      fixes.push(`stop ${holder ?? `what listens on ${port}`} or change ports in regctl.yaml`);
    }
    return problems.length === 0
      ? { status: 'pass', detail: `${wanted.map((w) => w.port).join(', ')} free or held by this stack` }
      : {
          status: 'fail',
          detail: problems.join('; '),
          fix: fixes.join('; ') + ', then `regctl init --force` and `regctl up`',
        };
  },
};

export const dnsCheck: Check = {
  id: 'dns',
  title: 'Host names',
  async run(ctx) {
    const unresolved: string[] = [];
    for (const name of ctx.names) {
      try {
        const r = await (ctx.opts.lookup ?? lookup)(name);
        if (name === ctx.registryHost) ctx.registryIp = r.address;
      } catch {
        unresolved.push(name);
      }
    }
    return unresolved.length === 0
      ? { status: 'pass', detail: `${ctx.names.join(', ')} resolve` }
      : {
          status: 'fail',
          detail: `${unresolved.join(', ')} do${unresolved.length === 1 ? 'es' : ''} not resolve`,
          fix: hostsAdvice(ctx.platform, unresolved),
        };
  },
};

/** dev: docker reaches the registry over HTTP only when the engine lists it (or its address) as insecure. */
export const trustCheck: Check = {
  id: 'trust',
  title: 'Engine trusts the HTTP registry',
  mode: 'dev',
  async run(ctx) {
    const clientName = `${ctx.registryHost}${ctx.config.ports.http === 80 ? '' : `:${ctx.config.ports.http}`}`;
    if (!ctx.engineUp) return { status: 'skip', detail: 'no engine to ask' };
    const info = await ctx.engineInfo();
    if (await engineHasStackCa(ctx, clientName)) {
      return {
        status: 'pass',
        detail: `${clientName} is reached over HTTPS (the engine's certs.d holds the stack's CA)`,
      };
    }
    return engineTrusts(info, clientName, ctx.registryIp)
      ? {
          status: 'pass',
          detail: `${clientName} is reached over HTTP (${ctx.registryIp ? `${ctx.registryIp} is in an insecure range or listed` : 'listed'})`,
        }
      : {
          status: 'fail',
          detail: `docker will try HTTPS for ${clientName} ("server gave HTTP response to HTTPS client")`,
          fix: daemonJsonAdvice(ctx.platform, clientName),
        };
  },
};

/** dev: the direct registry port, listed only when the engine would not trust it. */
export const trustDirectCheck: Check = {
  id: 'trust-direct',
  title: 'Engine trusts the direct port',
  mode: 'dev',
  async run(ctx) {
    if (!ctx.engineUp || ctx.config.ports.registry === 0) return undefined;
    const direct = `127.0.0.1:${ctx.config.ports.registry}`;
    if (engineTrusts(await ctx.engineInfo(), direct, '127.0.0.1')) return undefined;
    return {
      status: 'warn',
      detail: `${direct} is not in an insecure range`,
      fix: daemonJsonAdvice(ctx.platform, direct),
    };
  },
};
