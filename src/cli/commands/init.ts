import { Command } from 'commander';
import { portArg, wholeNumberArg } from '../arg-parsers.js';
import type { CliContext } from '../context.js';
import type { InitOptions } from '../../ops/init.js';

export function initCommand(ctx: CliContext): Command {
  return new Command('init')
    .description('create (or re-render) a stack directory: regctl.yaml, compose files, Traefik config, .env and auth/')
    .option('--dir <dir>', 'stack directory (default: the current directory)')
    .option('-y, --yes', 'ask nothing: take flags and defaults')
    .option(
      '--host <domain>',
      'domain: the registry is served at registry.<domain>, the UI at registry-ui.<domain> (default localhost)',
    )
    .option('--name <project>', 'compose project name: prefixes containers, network and volumes (default regctl)')
    .option('--user <name>', 'admin user name (default admin)')
    .option('--password-stdin', 'read the admin password from stdin instead of generating one')
    .option('--email <address>', "email for the ACME account (Let's Encrypt) used in prod")
    .option('--acme-ca-server <url>', "ACME directory URL (default Let's Encrypt production)")
    .option('--acme-ca-certificates <file>', 'PEM file of a private ACME CA for Traefik to trust (e.g. pebble)')
    .option('--traefik-image <image>', 'Traefik image (default traefik:v3.6, or $REGCTL_TRAEFIK_IMAGE)')
    .option(
      '--base-image <image>',
      'Node image the registry image is built on (default node:20-bookworm-slim, or $REGCTL_BASE_IMAGE)',
    )
    .option('--no-ui', 'do not run the web UI')
    .option('--http-port <port>', 'host port for HTTP (default 80)', portArg('--http-port'))
    .option('--https-port <port>', 'host port for HTTPS in prod (default 443)', portArg('--https-port'))
    .option(
      '--registry-port <port>',
      'direct registry port in dev, 0 for none (default 5000)',
      portArg('--registry-port', { allowZero: true }),
    )
    .option('--mode <mode>', 'compose (default): containers on this engine; swarm: Swarm services (compose.swarm.yaml)')
    .option(
      '--replicas <n>',
      'registry replicas in swarm mode (more than 1 needs --metadata postgres://...)',
      wholeNumberArg('--replicas', { min: 1, unit: 'replicas' }),
    )
    .option(
      '--metadata <url>',
      'PostgreSQL metadata shared by replicas: postgres://USER@HOST[:PORT]/DB (password from $REGCTL_METADATA_PASSWORD)',
    )
    .option(
      '--storage <url>',
      'keep images in S3 instead of a volume: s3://BUCKET[/PREFIX] (keys from $AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY)',
    )
    .option('--s3-endpoint <url>', 'S3 endpoint of a non-AWS server, e.g. http://s3.internal:7070')
    .option('--s3-region <region>', 'S3 region (default us-east-1)')
    .option('--s3-path-style', 'path-style S3 addressing (most S3-compatible servers need it)')
    .option('--with-postgres', 'swarm trial: run PostgreSQL as a service of the stack (one node holds its data)')
    .option(
      '--with-s3',
      'swarm trial: run an S3 server (versitygw) as a service of the stack (one node holds its data)',
    )
    .option(
      '--postgres-image <image>',
      'trial PostgreSQL image (default postgres:16-alpine, or $REGCTL_POSTGRES_IMAGE)',
    )
    .option('--s3-image <image>', 'trial S3 image (default versity/versitygw:v1.8.0, or $REGCTL_S3_IMAGE)')
    .option('--force', 'replace files that would change (hand-edited ones are saved as .bak; passwords are kept)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: InitOptions) => {
      const { runInit } = await import('../../ops/init.js');
      await runInit(ctx, opts);
    });
}
