/**
 * `regctl logs [service]`: one service's log, or every service's with a `name | ` prefix per line. On a swarm
 * stack every task's lines carry a `<service>.<slot> | ` prefix.
 */
import { RegctlError } from '../common/errors.js';
import type { DockerEngine } from '../docker/engine.js';
import { engineLogOptions, writeLines, type LogFlags } from './log-lines.js';
import { loadStack } from './stack.js';
import { swarmLogs } from './swarm-ops.js';
import { isSwarmStack } from './swarm-stack.js';

export interface LogsOptions extends LogFlags {
  dir: string;
  engine: DockerEngine;
  service?: string;
  /** Receives each line (without its newline). */
  write: (line: string) => void;
}

export async function logs(opts: LogsOptions): Promise<void> {
  const { engine } = opts;
  await engine.ping();
  const stack = await loadStack(opts.dir);
  if (isSwarmStack(stack)) {
    await swarmLogs(stack, engine, opts);
    return;
  }
  const { model } = stack;
  const names = model.services.map((s) => s.name);
  const selected = opts.service ? model.services.filter((s) => s.name === opts.service) : model.services;
  if (opts.service && selected.length === 0) {
    throw new RegctlError('NOT_FOUND', `no service "${opts.service}" in stack ${model.project}`, {
      hint: `services: ${names.join(', ')}`,
    });
  }
  const present = [];
  for (const svc of selected) if (await engine.inspectContainer(svc.containerName)) present.push(svc);
  if (present.length === 0) {
    throw new RegctlError(
      'STACK_NOT_RUNNING',
      `${opts.service ? `service ${opts.service} of ` : ''}stack ${model.project} has no container`,
      {
        hint: `run \`regctl up --dir ${opts.dir}\` first`,
      },
    );
  }
  const width = Math.max(...present.map((s) => s.name.length));
  const prefix = (name: string) => (opts.service ? '' : `${name.padEnd(width)} | `);
  await Promise.all(
    present.map(async (svc) => {
      const stream = await engine.logs(svc.containerName, engineLogOptions(opts));
      await writeLines(stream, opts.write, prefix(svc.name));
    }),
  );
}
