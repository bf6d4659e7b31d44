/**
 * `regctl down`: stop and remove the stack's containers and network. Data volumes stay unless `volumes`
 * is set, and then only after a confirmation (or `yes`).
 */
import { CliError } from '../cli/errors.js';
import type { Output } from '../cli/output.js';
import type { Prompts } from '../cli/prompts.js';
import type { DockerEngine } from '../docker/engine.js';
import { buildStackModel } from '../stack/build-model.js';
import { loadStack, projectLabels } from './stack.js';

export interface DownOptions {
  dir: string;
  out: Output;
  engine: DockerEngine;
  prompts: Prompts;
  volumes?: boolean;
  yes?: boolean;
}

export interface DownResult {
  project: string;
  containersRemoved: string[];
  networkRemoved: boolean;
  volumesRemoved: string[];
  volumesKept: string[];
}

export async function down(opts: DownOptions): Promise<DownResult> {
  const { out, engine } = opts;
  await engine.ping();
  const stack = await loadStack(opts.dir);
  const { model, config } = stack;
  const prodModel = buildStackModel(config, 'prod');
  const devModel = buildStackModel(config, 'dev');
  const volumeNames = [...new Set([...devModel.volumes, ...prodModel.volumes].map((v) => v.name))];

  if (opts.volumes && !opts.yes) {
    if (!opts.prompts.interactive) {
      throw new CliError('USAGE', `--volumes deletes the registry's data (${volumeNames.join(', ')}) and needs confirmation`, {
        hint: 'add --yes to confirm without a prompt',
      });
    }
    const ok = await opts.prompts.confirm(`Delete the volumes ${volumeNames.join(', ')} and every image stored in them?`, { default: false });
    if (!ok) throw new CliError('CANCELLED', 'nothing removed', { hint: 'run `regctl down` without --volumes to keep the data' });
  }

  const result: DownResult = { project: model.project, containersRemoved: [], networkRemoved: false, volumesRemoved: [], volumesKept: [] };
  const containers = await engine.listContainers(projectLabels(model));
  if (containers.length === 0) out.ok(`No containers of ${model.project} are running`);
  // Traefik last: it keeps routing until the services behind it are gone.
  const ordered = [...containers].sort((a, b) => Number(a.name.endsWith('-traefik')) - Number(b.name.endsWith('-traefik')));
  for (const c of ordered) {
    out.step(`Stopping ${c.name}`);
    await engine.stopContainer(c.name, 10);
    await engine.removeContainer(c.name);
    result.containersRemoved.push(c.name);
    out.ok(`${c.name} removed`);
  }
  result.networkRemoved = await engine.removeNetwork(model.network.name);
  if (result.networkRemoved) out.ok(`Network ${model.network.name} removed`);

  const allVolumes = new Set(await engine.listVolumes({}));
  const ours = [...new Set([...(await engine.listVolumes(projectLabels(model))), ...volumeNames])].filter((n) => allVolumes.has(n)).sort();
  for (const name of ours) {
    if (!opts.volumes) {
      result.volumesKept.push(name);
    } else if (await engine.removeVolume(name)) {
      result.volumesRemoved.push(name);
      out.ok(`Volume ${name} removed`);
    }
  }
  if (result.volumesKept.length) out.line(`  Data kept in ${result.volumesKept.join(', ')} (\`regctl down --volumes\` deletes it)`);
  out.ok(`Stack ${model.project} is down`);
  return result;
}
