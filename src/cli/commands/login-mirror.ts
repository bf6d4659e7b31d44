import type { CliContext } from '../context.js';
import { RegctlError } from '../../common/errors.js';
import { DAEMON_JSON, type RegistryAddress } from '../../ops/login.js';
import {
  applyMirror,
  containerdHostsToml,
  DOCKER_HUB,
  dockerMirrors,
  mirrorUrl,
  planMirror,
} from '../../ops/mirror.js';

/**
 * `regctl login --mirror`: shows the daemon.json change, asks (unless `--yes`), writes it, reloads dockerd and
 * checks with `docker info` that the mirror is in force; then prints containerd's hosts.toml.
 * REGCTL_DAEMON_JSON and REGCTL_DOCKERD_PIDFILE point it elsewhere than the engine's own files.
 */
export async function loginMirror(ctx: CliContext, where: RegistryAddress, yes: boolean): Promise<void> {
  const { out } = ctx;
  const url = mirrorUrl(where.address, where.http);
  const path = ctx.env.REGCTL_DAEMON_JSON ?? DAEMON_JSON;
  const plan = await planMirror(url, path);
  if (plan.unchanged) out.ok(`${path} already lists ${url} in registry-mirrors`);
  else {
    out.line(plan.diff.trimEnd());
    const agreed = yes || (await ctx.prompts.confirm(`Write this change to ${path} and reload dockerd?`));
    if (!agreed) throw new RegctlError('CANCELLED', `${path} left unchanged`);
    const pid = await applyMirror(
      plan,
      ctx.env.REGCTL_DOCKERD_PIDFILE ? { pidfile: ctx.env.REGCTL_DOCKERD_PIDFILE } : {},
    );
    out.ok(`${path} updated; dockerd (pid ${pid}) reloaded with SIGHUP`);
    const mirrors = await dockerMirrors(ctx.env);
    if (mirrors === undefined) out.warn('`docker info` did not answer: check the mirror with docker info yourself');
    else if (mirrors.some((m) => m.replace(/\/+$/, '') === url))
      out.ok(`docker info lists ${url} as a registry mirror`);
    else out.warn(`docker info does not list ${url} yet (it lists: ${mirrors.join(', ') || 'none'})`);
  }
  out.line(
    `dockerd asks its registry-mirrors for Docker Hub images only; pull other registries' images through the cache by name (${where.address}/<prefix>/<image>).`,
  );
  out.line(
    "The registry answers dockerd's mirror requests when one of its proxies entries, for Docker Hub, has dockerMirror: true.",
  );
  if (where.http && !/^(localhost|127\.)/.test(where.address))
    out.line('dockerd talks plain HTTP to this registry only if it trusts it: regctl login --trust');
  out.line('');
  out.line(`For containerd (and kubelets), write this to /etc/containerd/certs.d/${DOCKER_HUB}/hosts.toml; other`);
  out.line("upstreams take the same file under their own host's directory:");
  out.line('');
  out.line(containerdHostsToml(DOCKER_HUB, url).trimEnd());
}
