import { GC_DEFAULTS } from '../../common/gc-defaults.js';
import type { DeletePreview } from '../data.js';
import { formatBytesOrDash, formatExactBytes, plural, shortDigest } from '../format.js';
import { html } from '../html.js';
import { layout, type ViewContext } from './layout.js';
import { crumbs, kindBadge, platformList } from './repo.js';

export function deletePage(ctx: ViewContext, p: DeletePreview): string {
  const imageStays = p.siblings.length > 0;
  const body = html`
<div class="page-head">
  <div>${crumbs(ctx, [{ href: ctx.paths.repo(p.name), label: p.name }, { href: ctx.paths.image(p.name, p.tag), label: p.tag }, { label: 'Delete' }])}
  <h1>Delete tag <span class="title-mono">${p.name}:${p.tag}</span>?</h1>
  <p>Deleting removes this one tag. Other tags are never touched.</p></div>
</div>
<div class="impact">
  <section class="card" aria-labelledby="goes-title" data-testid="goes">
    <div class="card-head"><h2 id="goes-title"><span class="dot dot-danger" aria-hidden="true"></span>Goes now</h2></div>
    <div class="card-body goes">
      <div><strong class="mono">${p.name}:${p.tag}</strong> ${kindBadge(p.info.kind)}</div>
      <div class="mono small muted">${p.info.digest}</div>
      ${platformList(p.info.platforms, p.info.kind === 'index')}
      ${imageStays ? '' : html`<p class="small">The image ${shortDigest(p.info.digest)} will have no tag left; ${GC_DEFAULTS.deleteUntagged ? 'a garbage collection removes it' : html`<code>regctl gc</code> keeps it (untagged manifests stay by default) and <code>regctl gc --delete-untagged</code> removes it`}.</p>`}
    </div>
  </section>
  <section class="card" aria-labelledby="stays-title" data-testid="stays">
    <div class="card-head"><h2 id="stays-title"><span class="dot dot-ok" aria-hidden="true"></span>Stays</h2></div>
    <div class="card-body stays">
      ${
        imageStays
          ? html`<p>${plural(p.siblings.length, 'other tag')} point${p.siblings.length === 1 ? 's' : ''} at the same image, so the image and its layers stay:</p>
        <div class="badges">${p.siblings.map((t) => html`<span class="badge badge-ok" data-testid="sibling">${t}</span>`)}</div>`
          : html`<p>No other tag of <strong>${p.name}</strong> points at this image.</p>`
      }
      <p class="small muted">Every other tag and repository is unchanged.</p>
    </div>
  </section>
  <section class="card" aria-labelledby="gc-title" data-testid="gc-estimate">
    <div class="card-head"><h2 id="gc-title">Space a GC would free</h2></div>
    <div class="card-body">
      <div class="stat-value" data-testid="gc-frees" data-bytes="${p.gcFreesBytes}" title="${formatExactBytes(p.gcFreesBytes)}">${p.gcFreesBytes === 0 ? '0 B' : `up to ${formatBytesOrDash(p.gcFreesBytes)}`}</div>
      <p class="small muted">${
        imageStays
          ? 'The image is still tagged, so nothing becomes garbage.'
          : GC_DEFAULTS.deleteUntagged
            ? html`${plural(p.exclusiveBlobs, 'blob')} (manifests, config, layers) that no other tag of this repository uses; blobs that other repositories share are kept.`
            : html`<code>regctl gc</code> keeps untagged manifests, so this delete frees nothing by itself; <code>regctl gc --delete-untagged</code> would free up to <strong data-testid="untagged-frees" data-bytes="${p.exclusiveBytes}">${formatBytesOrDash(p.exclusiveBytes)}</strong> (${plural(p.exclusiveBlobs, 'blob')} no other tag of this repository uses; blobs other repositories share are kept).`
      }</p>
      ${p.reclaimableNow !== undefined ? html`<p class="small">Already reclaimable before this delete: <strong data-testid="reclaimable-now" data-bytes="${p.reclaimableNow}">${formatBytesOrDash(p.reclaimableNow)}</strong> (a dry run of <code>regctl gc</code> with its defaults).</p>` : ''}
    </div>
  </section>
</div>
<form class="actions" method="post" action="${ctx.paths.delete(p.name, p.tag)}" data-confirm="Delete the tag ${p.name}:${p.tag}? This cannot be undone.">
  <input type="hidden" name="csrf" value="${ctx.csrf ?? ''}">
  <button type="submit" class="btn btn-danger">Delete tag ${p.tag}</button>
  <a class="btn" href="${ctx.paths.repo(p.name)}">Cancel</a>
</form>`;
  return layout(ctx, { title: `Delete ${p.name}:${p.tag}`, active: 'repos', body }).value;
}
