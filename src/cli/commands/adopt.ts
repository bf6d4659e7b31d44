import { Command } from 'commander';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import type { CliContext } from '../context.js';
import { RegctlError } from '../../common/errors.js';
import { defaultEngineFactory, type EngineFactory } from './stack-engine.js';

interface AdoptOptions {
  from: string;
  dir?: string;
  volume?: string;
  project?: string;
  host?: string;
  name?: string;
  httpPort?: string;
  registryPort?: string;
  traefikImage?: string;
  baseImage?: string;
  dryRun?: boolean;
  json?: boolean;
}

export function adoptCommand(ctx: CliContext, engineFactory: EngineFactory = defaultEngineFactory): Command {
  return new Command('adopt')
    .description('take over a hand-made registry:2 stack: same data volume, same credentials, nothing deleted')
    .requiredOption('--from <dir>', "the old stack's directory (its .env, compose file and htpasswd)")
    .option('--dir <dir>', 'where to write the new stack (default: <from>/regctl)')
    .option('--volume <name>', 'the data volume, when it cannot be found from the compose file')
    .option('--project <name>', 'the old compose project name (volume name prefix)')
    .option('--host <domain>', 'domain for registry.<domain> (default: HOST from the old .env, else localhost)')
    .option('--name <name>', 'compose project name of the new stack (default regctl)')
    .option('--http-port <port>', 'host port for HTTP (default 80)')
    .option('--registry-port <port>', 'direct registry port in dev (default 5000)')
    .option('--traefik-image <image>', 'Traefik image (default traefik:v3.6, or $REGCTL_TRAEFIK_IMAGE)')
    .option('--base-image <image>', 'Node image to build on (default node:20-bookworm-slim, or $REGCTL_BASE_IMAGE)')
    .option('--dry-run', 'list what was found and what would change; write nothing')
    .option('--json', 'print one JSON document')
    .action(async (opts: AdoptOptions) => {
      const { CONFIG_FILE } = await import('../../config/load.js');
      const { ENV_KEYS } = await import('../../stack/env.js');
      const { atomicWrite } = await import('../../stack/write.js');
      const { inspectSeed } = await import('../../ops/adopt.js');
      const { runInit } = await import('../../ops/init.js');
      const { out } = ctx;
      const from = resolve(ctx.cwd, opts.from);
      const dir = resolve(ctx.cwd, opts.dir ?? join(from, 'regctl'));
      const { finding, password, htpasswd } = await inspectSeed({
        from,
        engine: engineFactory(ctx),
        ...(opts.volume ? { volume: opts.volume } : {}),
        ...(opts.project ? { project: opts.project } : {}),
      });
      if (!password && finding.problems.length === 0) {
        finding.problems.push('REGISTRY_PASSWORD is not in the old .env: regctl needs the admin password for health probes and day-two commands');
      }
      const host = opts.host ?? finding.host ?? 'localhost';
      const actions = [...finding.actions, `write the new stack to ${dir} (host ${host}; ${finding.users.join(', ')} keep full access, as registry:2 gave them)`];
      if (opts.json && opts.dryRun) {
        out.json({ ...finding, actions, dir, host, dryRun: true });
        if (finding.problems.length > 0) throw new RegctlError('CONFIG_INVALID', finding.problems[0]!, { hint: 'see the problems listed above' });
        return;
      }
      if (!opts.json) {
        out.step(`Found in ${from}`);
        if (finding.envFile) out.line(`  .env           ${finding.envFile} (user ${finding.username ?? '?'}, password ${finding.hasPassword ? 'present' : 'missing'}${finding.deleteEnabled !== undefined ? `, delete ${finding.deleteEnabled ? 'enabled' : 'disabled'}` : ''})`);
        if (finding.htpasswdFile) out.line(`  htpasswd       ${finding.htpasswdFile} (${finding.users.length} users)`);
        if (finding.composeFile) out.line(`  compose        ${finding.composeFile} (data volume "${finding.volumeKey}")`);
        if (finding.volume) out.line(`  volume         ${finding.volume}${finding.repositories !== undefined ? `, ${finding.repositories} repositories` : ''}`);
        out.step(opts.dryRun ? 'Would do' : 'Doing');
        for (const a of actions) out.line(`  - ${a}`);
      }
      if (finding.problems.length > 0) {
        throw new RegctlError('CONFIG_INVALID', finding.problems[0]!, { details: finding.problems.slice(1), hint: 'fix what is listed, or name things with --volume / --project' });
      }
      if (opts.dryRun) return;
      if (finding.runningContainers.length > 0) {
        throw new RegctlError('USAGE', `the old registry (${finding.runningContainers.join(', ')}) still runs on volume ${finding.volume}`, {
          hint: `stop it first (docker stop ${finding.runningContainers.join(' ')}); it is kept, so you can start it again`,
        });
      }
      const config: Record<string, unknown> = {
        version: 1,
        name: opts.name ?? 'regctl',
        host,
        mode: 'dev',
        users: Object.fromEntries(finding.users.map((u) => [u, { admin: true }])),
        storage: { volume: finding.volume },
      };
      const port = (v: string | undefined) => (v === undefined ? undefined : Number(v));
      const ports: Record<string, number> = {};
      if (opts.httpPort !== undefined) ports.http = port(opts.httpPort)!;
      if (opts.registryPort !== undefined) ports.registry = port(opts.registryPort)!;
      if (Object.keys(ports).length > 0) config.ports = ports;
      const images: Record<string, string> = {};
      const traefik = opts.traefikImage ?? ctx.env.REGCTL_TRAEFIK_IMAGE;
      const base = opts.baseImage ?? ctx.env.REGCTL_BASE_IMAGE;
      if (traefik) images.traefik = traefik;
      if (base) images.base = base;
      if (Object.keys(images).length > 0) config.images = images;
      await mkdir(join(dir, 'auth'), { recursive: true, mode: 0o700 });
      await atomicWrite(join(dir, CONFIG_FILE), stringify(config), 0o644);
      await atomicWrite(join(dir, 'auth', 'htpasswd'), htpasswd ?? '', 0o600);
      await atomicWrite(join(dir, '.env'), `${ENV_KEYS.username}=${finding.username}\n${ENV_KEYS.password}=${password}\n`, 0o600);
      await runInit(ctx, {
        dir,
        yes: true,
        force: true,
        ui: true,
        ...(opts.json ? { json: true } : {}),
      });
      if (!opts.json) out.ok(`Adopted: run \`regctl up --dir ${dir}\`; images and credentials are those of the old stack`);
    });
}
