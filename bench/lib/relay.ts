/**
 * TCP relays from an address containers reach (docker's bridge gateway) to a server listening on 127.0.0.1 only:
 * how a stack's services reach the throwaway PostgreSQL and versitygw the bench and the swarm e2e test start on
 * loopback, without those servers listening on every interface.
 */
import { execFileSync } from 'node:child_process';
import { connect, createServer, type Server } from 'node:net';

/** Relays TCP connections from `host:<port>` (a free port) to `127.0.0.1:target`. */
export async function relay(host: string, target: number): Promise<{ server: Server; port: number }> {
  const server = createServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    for (const side of [client, upstream]) side.on('error', () => [client, upstream].forEach((x) => x.destroy()));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const addr = server.address();
  return { server, port: typeof addr === 'object' && addr ? addr.port : 0 };
}

/** The IPv4 gateway of docker's default bridge: the host as containers (and swarm tasks, via docker_gwbridge) see it. */
export function bridgeGateway(docker = 'docker'): string {
  const out = execFileSync(
    docker,
    ['network', 'inspect', 'bridge', '--format', '{{range .IPAM.Config}}{{.Gateway}} {{end}}'],
    {
      encoding: 'utf8',
      timeout: 20_000,
    },
  );
  const ip = out.split(/\s+/).find((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a));
  if (!ip)
    throw new Error(`docker's bridge network has no IPv4 gateway (docker network inspect bridge: ${out.trim()})`);
  return ip;
}
