import { Command } from 'commander';
import { resolve } from 'node:path';
import type { CliContext } from '../context.js';
import { defaultEngineFactory, type EngineFactory } from './stack-engine.js';

export function statusCommand(ctx: CliContext, engineFactory: EngineFactory = defaultEngineFactory): Command {
  return new Command('status')
    .showHelpAfterError('(run `regctl status --help` for usage)')
    .description("show each service's state and health, the URLs, the data size and the certificate")
    .option('--dir <dir>', 'stack directory (default: the current directory)')
    .option('--json', 'print one JSON document')
    .action(async (opts: { dir?: string; json?: boolean }) => {
      const { status } = await import('../../ops/status.js');
      const { formatBytes } = await import('../../common/units.js');
      const s = await status({ dir: resolve(ctx.cwd, opts.dir ?? '.'), engine: engineFactory(ctx) });
      const { out } = ctx;
      if (opts.json) {
        out.json(s);
        return;
      }
      out.line(
        `Stack ${s.project} (${s.mode}): ${s.healthy ? out.color.green('healthy') : out.color.yellow('not healthy')}`,
      );
      const width = Math.max(...s.services.map((x) => x.service.length));
      for (const svc of s.services) {
        const state = svc.health ? `${svc.state} (${svc.health})` : svc.state;
        const ok = svc.state === 'running' && (svc.health === undefined || svc.health === 'healthy');
        out.line(
          `  ${svc.service.padEnd(width)}  ${ok ? out.color.green(state) : out.color.yellow(state)}${svc.image ? `  ${out.color.dim(svc.image)}` : ''}`,
        );
      }
      out.line(`  Registry: ${s.urls.registry}`);
      if (s.urls.ui) out.line(`  Web UI:   ${s.urls.ui}`);
      for (const v of s.volumes)
        out.line(`  Volume ${v.name}: ${v.sizeBytes !== undefined ? formatBytes(v.sizeBytes) : 'size unknown'}`);
      if (s.certificate) {
        const c = s.certificate;
        out.line(
          `  Certificate: ${c.subject} by ${c.issuer}, expires ${c.validTo} (${c.daysLeft} days)${c.acme ? '' : ' — Traefik default, ACME not obtained yet'}`,
        );
      } else if (s.certificateError) {
        out.line(`  Certificate: unavailable (${s.certificateError})`);
      }
    });
}
