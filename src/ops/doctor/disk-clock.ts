/** Disk headroom on the data volume and clock skew between this machine, the engine and the registry. */
import { statfs } from 'node:fs/promises';
import { formatBytes, parseSize } from '../../common/units.js';
import { DATA_DIR } from '../../stack/build-model.js';
import { probe } from '../http-probe.js';
import { messageOf, throughTraefik, type Check, type DoctorContext } from './types.js';

interface Space {
  free: number;
  total: number;
  where: string;
}

/** Free space as the running registry sees it (its admin API), when it answers. */
async function spaceFromRegistry(ctx: DoctorContext): Promise<{ space?: Space; problem: string }> {
  if (!ctx.running || !ctx.creds) return { problem: '' };
  try {
    const r = await probe({ ...throughTraefik(ctx), path: '/admin/v1/disk', auth: ctx.creds });
    const body =
      r.status === 200 ? (JSON.parse(r.body) as { freeBytes: number | null; totalBytes: number | null }) : undefined;
    if (body && body.freeBytes !== null && body.totalBytes !== null)
      return {
        space: { free: body.freeBytes, total: body.totalBytes, where: "the registry's data volume" },
        problem: '',
      };
    return { problem: `the registry answered HTTP ${r.status}` };
  } catch (err) {
    return { problem: messageOf(err) };
  }
}

/** Free space of the data volume's host path, from the engine. */
async function spaceFromVolume(ctx: DoctorContext, earlier: string): Promise<{ space?: Space; problem: string }> {
  const dataKey = ctx.model.services
    .find((s) => s.name === 'registry')
    ?.mounts.find((m) => m.target === DATA_DIR)?.source;
  const dataVolume = ctx.model.volumes.find((v) => v.key === dataKey)?.name;
  const mountpoint =
    ctx.engineUp && dataVolume ? await ctx.engine.volumeMountpoint(dataVolume).catch(() => undefined) : undefined;
  if (mountpoint) {
    try {
      const fs = await statfs(mountpoint);
      return {
        space: { free: fs.bavail * fs.bsize, total: fs.blocks * fs.bsize, where: `volume ${dataVolume}` },
        problem: '',
      };
    } catch (err) {
      return { problem: `cannot read ${mountpoint}: ${messageOf(err)}` };
    }
  }
  if (earlier) return { problem: earlier };
  return { problem: dataVolume ? `volume ${dataVolume} not found` : 'no data volume' };
}

/** Disk headroom on the data volume: as the registry sees it when it runs, else from the volume's host path. */
export const diskCheck: Check = {
  id: 'disk',
  title: 'Disk headroom',
  async run(ctx) {
    const minFree = ctx.config.registry.minFreeDisk;
    const floor = parseSize(minFree);
    const fromRegistry = await spaceFromRegistry(ctx);
    const { space, problem } = fromRegistry.space ? fromRegistry : await spaceFromVolume(ctx, fromRegistry.problem);
    if (!space) return { status: 'skip', detail: problem };
    const detail = `${formatBytes(space.free)} free of ${formatBytes(space.total)} on ${space.where}`;
    const fix =
      "free space on the volume's filesystem (`regctl gc` removes deleted images), or move the volume to a larger disk";
    if (space.free < floor)
      return { status: 'fail', detail: `${detail}: under the ${minFree} floor, uploads are refused`, fix };
    if (space.free < 2 * floor || space.free < space.total * 0.1)
      return { status: 'warn', detail: `${detail}: nearly full (floor ${minFree})`, fix };
    return { status: 'pass', detail };
  },
};

/** Clock skew between this machine, the engine and the registry. */
export const clockCheck: Check = {
  id: 'clock',
  title: 'Clock skew',
  async run(ctx) {
    const skews: string[] = [];
    let worst = 0;
    if (ctx.engineUp) {
      const systemTime = await ctx.engineTime().catch(() => undefined);
      if (systemTime) {
        const d = Math.abs(Date.parse(systemTime) - Date.now());
        worst = Math.max(worst, d);
        skews.push(`engine ${Math.round(d / 1000)} s`);
      }
    }
    if (ctx.running) {
      const r = await probe({ ...throughTraefik(ctx), path: '/v2/' }).catch(() => undefined);
      const date = r?.headers.date;
      if (date) {
        const d = Math.abs(Date.parse(date) - Date.now());
        worst = Math.max(worst, d);
        skews.push(`registry ${Math.round(d / 1000)} s`);
      }
    }
    if (skews.length === 0) return { status: 'skip', detail: 'nothing to compare with' };
    if (worst > 60_000)
      return {
        status: 'fail',
        detail: skews.join(', '),
        fix: 'synchronise the clocks (timedatectl set-ntp true); certificates and tokens fail when clocks disagree',
      };
    if (worst > 5_000)
      return {
        status: 'warn',
        detail: skews.join(', '),
        fix: 'enable time synchronisation (timedatectl set-ntp true)',
      };
    return { status: 'pass', detail: skews.join(', ') };
  },
};
