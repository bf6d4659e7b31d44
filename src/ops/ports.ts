/**
 * Host port checks before containers publish them, so that a taken port fails `up` before anything is
 * created, with the holder named when it can be found (a container, or a process `ss` reports).
 */
import { createServer } from 'node:net';
import { RegctlError } from '../common/errors.js';
import type { DockerEngine } from '../docker/engine.js';

/** True when a TCP listener could bind `port` on `hostIp` (all addresses when omitted). */
export function portIsFree(port: number, hostIp?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host: hostIp ?? '0.0.0.0', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Who listens on a port: a container name, a process from `ss`, or undefined. */
export async function portHolder(port: number, engine: DockerEngine): Promise<string | undefined> {
  try {
    for (const c of await engine.listContainers({})) {
      if (c.state === 'running' && c.ports.some((p) => p.hostPort === port)) return `container ${c.name}`;
    }
  } catch {
    // fall through to ss
  }
  try {
    const { stdout } = await (
      await import('execa')
    ).execa('ss', ['-Hltnp', `sport = :${port}`], { reject: false, timeout: 3000 });
    const m = /users:\(\("([^"]+)",pid=(\d+)/.exec(stdout);
    if (m) return `process ${m[1]} (pid ${m[2]})`;
  } catch {
    // ss missing: holder unknown
  }
  return undefined;
}

export async function assertPortsFree(
  ports: { port: number; hostIp?: string | undefined }[],
  engine: DockerEngine,
): Promise<void> {
  for (const { port, hostIp } of ports) {
    if (await portIsFree(port, hostIp)) continue;
    const holder = await portHolder(port, engine);
    throw portInUse(port, holder);
  }
}

export function portInUse(port: number, holder?: string): RegctlError {
  return new RegctlError('PORT_IN_USE', `port ${port} is already in use${holder ? ` by ${holder}` : ''}`, {
    hint: `stop what holds port ${port}, or choose another port in regctl.yaml (ports.http / ports.https / ports.registry)`,
  });
}
