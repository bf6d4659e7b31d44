import { readFile, rename, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export const RELIABILITY_DOC = fileURLToPath(new URL('../../docs/reliability.md', import.meta.url));

/**
 * Replaces the generated section `name` of docs/reliability.md (between `<!-- name:begin -->` and
 * `<!-- name:end -->`), appending it when absent. Written to a temp file and renamed over the document.
 */
export async function writeReportSection(name: string, markdown: string): Promise<void> {
  let doc: string;
  try {
    doc = await readFile(RELIABILITY_DOC, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    doc = '# Reliability\n';
  }
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const block = `${begin}\n${markdown.trim()}\n${end}`;
  const i = doc.indexOf(begin);
  const j = doc.indexOf(end);
  doc = i >= 0 && j > i ? doc.slice(0, i) + block + doc.slice(j + end.length) : `${doc.trimEnd()}\n\n${block}\n`;
  const tmp = `${RELIABILITY_DOC}.tmp-${process.pid}`;
  await writeFile(tmp, doc);
  await rename(tmp, RELIABILITY_DOC);
}

/** `90s`, `2m`, `30m`, `1h` or milliseconds. */
export function durationMs(text: string | undefined, fallback: number): number {
  if (!text) return fallback;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new Error(`not a duration: ${text}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'ms') as 'ms'];
}
