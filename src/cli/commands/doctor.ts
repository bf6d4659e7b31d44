import { Command } from 'commander';
import { resolve } from 'node:path';
import type { CliContext } from '../context.js';
import { RegctlError } from '../../common/errors.js';
import type { CheckStatus } from '../../ops/doctor.js';
import { defaultEngineFactory, type EngineFactory } from './stack-engine.js';

export function doctorCommand(ctx: CliContext, engineFactory: EngineFactory = defaultEngineFactory): Command {
  return new Command('doctor')
    .description('check the whole path a docker push takes and say how to fix what is wrong')
    .option('--dir <dir>', 'stack directory (default: the current directory)')
    .option('--prod', 'check the prod (HTTPS) stack')
    .option('--upload-test', 'also push a slow 128 MiB upload through Traefik (takes over a minute)')
    .option('--json', 'print one JSON document')
    .action(async (opts: { dir?: string; prod?: boolean; uploadTest?: boolean; json?: boolean }) => {
      const { doctor } = await import('../../ops/doctor.js');
      const { out } = ctx;
      const report = await doctor({
        dir: resolve(ctx.cwd, opts.dir ?? '.'),
        engine: engineFactory(ctx),
        ...(opts.prod ? { prod: true } : {}),
        ...(opts.uploadTest ? { uploadTest: true } : {}),
        ...(ctx.env.REGCTL_DOCKER_CERTS_DIR ? { certsDir: ctx.env.REGCTL_DOCKER_CERTS_DIR } : {}),
        ...(opts.json ? {} : { onProgress: (text: string) => out.progress(text) }),
      });
      if (opts.json) {
        out.json(report);
      } else {
        const mark: Record<CheckStatus, string> = {
          pass: out.color.green('✓'),
          warn: out.color.yellow('!'),
          fail: out.color.red('✗'),
          skip: out.color.dim('-'),
        };
        for (const c of report.checks) {
          out.line(`${mark[c.status]} ${c.title}: ${c.status === 'skip' ? out.color.dim(c.detail) : c.detail}`);
          if (c.fix && (c.status === 'fail' || c.status === 'warn')) out.line(`    ${out.color.dim('fix:')} ${c.fix}`);
        }
      }
      const failed = report.checks.filter((c) => c.status === 'fail');
      if (failed.length > 0) {
        throw new RegctlError(
          'CHECKS_FAILED',
          `${failed.length} check${failed.length > 1 ? 's' : ''} failed: ${failed.map((c) => c.id).join(', ')}`,
          {
            hint: 'apply the fixes above, then run `regctl doctor` again',
          },
        );
      }
      if (!opts.json) out.ok('everything a docker push needs is in place');
    });
}
