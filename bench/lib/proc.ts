import { readFile, readdir, writeFile } from 'node:fs/promises';

/** Resource figures of a server process and its descendants, read from /proc (Linux only). */
export interface ProcSample {
  /** Peak resident set (VmHWM) since start or since the last {@link resetPeak}, bytes, summed over the tree. */
  peakRssBytes: number;
  /** Current resident set (VmRSS), bytes, summed over the tree. */
  rssBytes: number;
  /** utime + stime of the tree, seconds. */
  cpuSeconds: number;
}

const CLOCK_TICKS = 100;

async function statusField(pid: number, field: string): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return match ? Number(match[1]) * 1024 : 0;
}

async function cpuTicks(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** `pid` and every live descendant of it. */
export async function processTree(pid: number): Promise<number[]> {
  const parents = new Map<number, number[]>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const text = await readFile(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]);
      const list = parents.get(ppid) ?? [];
      list.push(Number(entry));
      parents.set(ppid, list);
    } catch {
      // the process ended while we looked
    }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.shift() as number;
    out.push(next);
    queue.push(...(parents.get(next) ?? []));
  }
  return out;
}

export async function sampleProcess(pid: number): Promise<ProcSample> {
  const sample: ProcSample = { peakRssBytes: 0, rssBytes: 0, cpuSeconds: 0 };
  for (const p of await processTree(pid)) {
    try {
      sample.peakRssBytes += await statusField(p, 'VmHWM');
      sample.rssBytes += await statusField(p, 'VmRSS');
      sample.cpuSeconds += (await cpuTicks(p)) / CLOCK_TICKS;
    } catch {
      // a descendant ended between listing and reading
    }
  }
  return sample;
}

/**
 * Resets VmHWM to the current RSS for the tree (writing 5 to /proc/PID/clear_refs, Linux ≥ 4.0), so the next
 * sample's peak belongs to the phase that follows. Returns false where the kernel refuses it.
 */
export async function resetPeak(pid: number): Promise<boolean> {
  let ok = true;
  for (const p of await processTree(pid)) {
    try {
      await writeFile(`/proc/${p}/clear_refs`, '5');
    } catch {
      ok = false;
    }
  }
  return ok;
}
