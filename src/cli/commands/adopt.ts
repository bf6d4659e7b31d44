import { Command } from 'commander';
import { join, resolve } from 'node:path';
import { portArg } from '../arg-parsers.js';
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
  httpPort?: number;
  registryPort?: number;
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
    .option('--http-port <port>', 'host port for HTTP (default 80)', portArg('--http-port'))
    .option(
      '--registry-port <port>',
      'direct registry port in dev, 0 for none (default 5000)',
      portArg('--registry-port', { allowZero: true }),
    )
    .option('--traefik-image <image>', 'Traefik image (default traefik:v3.6, or $REGCTL_TRAEFIK_IMAGE)')
    .option('--base-image <image>', 'Node image to build on (default node:20-bookworm-slim, or $REGCTL_BASE_IMAGE)')
    .option('--dry-run', 'list what was found and what would change; write nothing')
    .option('--json', 'print one JSON document')
    .action(async (opts: AdoptOptions) => {
      const { inspectSeed, writeAdoptedStack } = await import('../../ops/adopt.js');
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
        finding.problems.push(
          'REGISTRY_PASSWORD is not in the old .env: regctl needs the admin password for health probes and day-two commands',
        );
      }
      const host = opts.host ?? finding.host ?? 'localhost';
      const actions = [
        ...finding.actions,
        `write the new stack to ${dir} (host ${host}; ${finding.users.join(', ')} keep full access, as registry:2 gave them)`,
      ];
      if (opts.json && opts.dryRun) {
        out.json({ ...finding, actions, dir, host, dryRun: true });
        if (finding.problems.length > 0)
          throw new RegctlError('CONFIG_INVALID', finding.problems[0]!, { hint: 'see the problems listed above' });
        return;
      }
      if (!opts.json) {
        out.step(`Found in ${from}`);
        if (finding.envFile)
          out.line(
            `  .env           ${finding.envFile} (user ${finding.username ?? '?'}, password ${finding.hasPassword ? 'present' : 'missing'}${finding.deleteEnabled !== undefined ? `, delete ${finding.deleteEnabled ? 'enabled' : 'disabled'}` : ''})`,
          );
        if (finding.htpasswdFile) out.line(`  htpasswd       ${finding.htpasswdFile} (${finding.users.length} users)`);
        if (finding.composeFile)
          out.line(`  compose        ${finding.composeFile} (data volume "${finding.volumeKey}")`);
        if (finding.volume)
          out.line(
            `  volume         ${finding.volume}${finding.repositories !== undefined ? `, ${finding.repositories} repositories` : ''}`,
          );
        out.step(opts.dryRun ? 'Would do' : 'Doing');
        for (const a of actions) out.line(`  - ${a}`);
      }
      if (finding.problems.length > 0) {
        throw new RegctlError('CONFIG_INVALID', finding.problems[0]!, {
          details: finding.problems.slice(1),
          hint: 'fix what is listed, or name things with --volume / --project',
        });
      }
      if (opts.dryRun) return;
      if (finding.runningContainers.length > 0) {
        throw new RegctlError(
          'USAGE',
          `the old registry (${finding.runningContainers.join(', ')}) still runs on volume ${finding.volume}`,
          {
            hint: `stop it first (docker stop ${finding.runningContainers.join(' ')}); it is kept, so you can start it again`,
          },
        );
      }
      await writeAdoptedStack(ctx, {
        dir,
        finding,
        password: password ?? '',
        htpasswd,
        host,
        ...(opts.name !== undefined ? { name: opts.name } : {}),
        ...(opts.httpPort !== undefined ? { httpPort: opts.httpPort } : {}),
        ...(opts.registryPort !== undefined ? { registryPort: opts.registryPort } : {}),
        ...(opts.traefikImage !== undefined ? { traefikImage: opts.traefikImage } : {}),
        ...(opts.baseImage !== undefined ? { baseImage: opts.baseImage } : {}),
        ...(opts.json ? { json: true } : {}),
      });
      if (!opts.json)
        out.ok(`Adopted: run \`regctl up --dir ${dir}\`; images and credentials are those of the old stack`);
    });
}
