import type { ArtifactKind } from '../../common/artifact-kinds.js';
import { signers } from '../attachments.js';
import type { ImageDetails } from '../image-details.js';
import { formatBytesOrDash, formatDateTime, formatExactBytes, formatRelative, plural, shortDigest } from '../format.js';
import { html, type SafeHtml } from '../html.js';
import { isIndex, type ImageManifest } from '../registry-client.js';
import { layout, pullCommand, type ViewContext } from './layout.js';
import { crumbs, kindBadge } from './repo.js';

function list(items: readonly string[] | null | undefined): SafeHtml {
  if (!items || items.length === 0) return html`<span class="muted">none</span>`;
  return html`<ul class="list-plain mono">${items.map((i) => html`<li>${i}</li>`)}</ul>`;
}

function prettyJson(raw: string): string {
  try {
    return JSON.stringify(JSON.parse(raw), null, 2);
  } catch {
    return raw;
  }
}

/** History entries that produced a layer, paired with the layer's descriptor. */
function layerRows(
  d: ImageDetails,
): { digest: string; size: number; createdBy: string | undefined; created: string | undefined; mediaType: string }[] {
  const m = d.fetched.manifest as ImageManifest;
  const history = (d.config?.history ?? []).filter((h) => !h.empty_layer);
  return (m.layers ?? []).map((l, i) => ({
    digest: l.digest,
    size: l.size,
    mediaType: l.mediaType,
    createdBy: history[i]?.created_by,
    created: history[i]?.created,
  }));
}

const KIND_LABELS: Record<ArtifactKind, string> = {
  'cosign signature': 'cosign signature',
  'notation signature': 'notation signature',
  attestation: 'attestation',
  sbom: 'SBOM',
};

/** "signed: cosign, notation" next to the title when signatures are attached (present; the registry verifies). */
function signedMarks(d: ImageDetails): SafeHtml {
  if (d.kind === 'artifact' || d.fetched.manifest.subject) return html``;
  const by = signers(d.attachments);
  if (by.length === 0) return html`<span class="badge" data-testid="signed-marks">not signed</span>`;
  return html`<span class="badges" data-testid="signed-marks">${by.map(
    (s) => html`<span class="badge badge-ok" title="a ${s} signature is attached to this digest">signed · ${s}</span>`,
  )}</span>`;
}

/** The artifacts (signatures, SBOMs, attestations) whose subject is this digest, and cosign's attachment tags. */
function referrersCard(ctx: ViewContext, d: ImageDetails): SafeHtml {
  const rows = d.attachments;
  return html`<section class="card section" aria-labelledby="referrers-title">
  <div class="card-head"><h2 id="referrers-title">Referrers</h2><span class="hint">signatures, attestations, SBOMs and other artifacts attached to this digest</span></div>
  ${
    rows.length === 0 && d.referrers === undefined
      ? html`<p class="empty">${d.referrersError ?? 'unavailable'}</p>`
      : rows.length === 0
        ? html`<p class="empty">No artifacts refer to this image.</p>`
        : html`${d.referrers === undefined ? html`<p class="empty">${d.referrersError ?? 'unavailable'}</p>` : ''}<div class="table-wrap"><table class="stack" data-testid="referrer-table">
    <thead><tr><th scope="col">Kind</th><th scope="col">Artifact type</th><th scope="col">Digest</th><th scope="col" class="num">Size</th><th scope="col">Created</th></tr></thead>
    <tbody>${rows.map(
      (
        r,
      ) => html`<tr data-kind="${r.kind ?? 'other'}"><td data-label="Kind">${r.kind ? html`<span class="badge${r.kind.endsWith('signature') ? ' badge-ok' : ''}">${KIND_LABELS[r.kind]}</span>` : html`<span class="muted">other</span>`}${r.via === 'referrer' ? '' : html` <span class="muted small mono">tag ${r.via.tag}</span>`}</td>
      <td data-label="Type"><span class="badge">${r.type}</span></td>
      <td data-label="Digest"><a class="mono" href="${ctx.paths.image(d.name, r.digest)}">${shortDigest(r.digest)}</a></td>
      <td class="num" data-label="Size">${formatBytesOrDash(r.size)}</td>
      <td class="nowrap" data-label="Created">${formatDateTime(r.created)}</td></tr>`,
    )}</tbody>
  </table></div>`
  }
</section>`;
}

export function imagePage(ctx: ViewContext, d: ImageDetails): string {
  const host = ctx.publicRegistry;
  const isDigest = d.reference.includes(':');
  const title = isDigest ? `${d.name}@${shortDigest(d.fetched.digest)}` : `${d.name}:${d.reference}`;
  const m = d.fetched.manifest;
  const cfg = d.config?.config;
  const created =
    d.kind === 'index'
      ? d.platforms
          .map((p) => p.created)
          .filter(Boolean)
          .sort()
          .at(-1)
      : (d.config?.created ?? m.annotations?.['org.opencontainers.image.created']);
  const platformText =
    d.kind === 'index'
      ? plural(d.platforms.length, 'platform')
      : d.config
        ? [d.config.os, d.config.architecture, d.config.variant].filter(Boolean).join('/')
        : '—';
  const ports = Object.keys(cfg?.ExposedPorts ?? {});
  const labels = Object.entries(cfg?.Labels ?? {}).map(([k, v]) => `${k}=${v}`);
  const layers = isIndex(m) ? [] : layerRows(d);
  const subject = m.subject;

  const body = html`
<div class="page-head">
  <div>${crumbs(ctx, [{ href: ctx.paths.repo(d.name), label: d.name }, { label: isDigest ? shortDigest(d.reference) : d.reference }])}
  <h1 class="title-mono">${title} ${kindBadge(d.kind)} ${signedMarks(d)}</h1>
  <p class="mono small muted" data-testid="image-digest">${d.fetched.digest}</p></div>
</div>
<div class="stats">
  <div class="stat"><div class="stat-label">Size</div><div class="stat-value" title="${formatExactBytes(d.size)}">${formatBytesOrDash(d.size)}</div><div class="stat-sub">compressed, as stored</div></div>
  <div class="stat"><div class="stat-label">Created</div><div class="stat-value">${formatRelative(created)}</div><div class="stat-sub">${formatDateTime(created)}</div></div>
  <div class="stat"><div class="stat-label">${d.kind === 'index' ? 'Platforms' : 'Platform'}</div><div class="stat-value">${platformText}</div><div class="stat-sub">${d.kind === 'index' ? 'multi-arch index' : d.kind === 'artifact' ? (m.artifactType ?? (m as ImageManifest).config?.mediaType ?? 'artifact') : plural(layers.length, 'layer')}</div></div>
</div>
<section class="card" aria-labelledby="pull-title">
  <div class="card-head"><h2 id="pull-title">Pull</h2></div>
  <div class="card-body pulls">
    ${isDigest ? '' : pullCommand(`docker pull ${host}/${d.name}:${d.reference}`, 'Copy pull command by tag')}
    ${pullCommand(`docker pull ${host}/${d.name}@${d.fetched.digest}`, 'Copy pull command by digest')}
  </div>
</section>
${subject ? html`<div class="alert alert-warn section"><div><strong>This is an artifact about another image.</strong> Subject: <a class="mono" href="${ctx.paths.image(d.name, subject.digest)}">${shortDigest(subject.digest)}</a></div></div>` : ''}
${
  d.kind === 'index'
    ? html`<section class="card" aria-labelledby="platforms-title">
  <div class="card-head"><h2 id="platforms-title">Platforms</h2><span class="hint">each platform's own image</span></div>
  <div class="table-wrap"><table class="stack" data-testid="platform-table">
    <thead><tr><th scope="col">Platform</th><th scope="col">Digest</th><th scope="col" class="num">Size</th><th scope="col">Created</th></tr></thead>
    <tbody>${d.platforms.map(
      (
        p,
      ) => html`<tr data-platform="${p.platform}"><td data-label="Platform"><span class="badge">${p.platform}</span></td>
      <td data-label="Digest"><a class="mono" href="${ctx.paths.image(d.name, p.digest)}">${shortDigest(p.digest)}</a></td>
      <td class="num" data-label="Size" data-testid="platform-size">${formatBytesOrDash(p.size)}</td>
      <td class="nowrap" data-label="Created"><span title="${formatDateTime(p.created)}" data-testid="platform-created">${formatDateTime(p.created)}</span></td></tr>`,
    )}</tbody>
  </table></div>
</section>`
    : ''
}
${
  d.config
    ? html`<div class="grid section">
  <section class="card" aria-labelledby="config-title">
    <div class="card-head"><h2 id="config-title">Configuration</h2></div>
    <div class="card-body"><dl class="kv">
      <dt>Entrypoint</dt><dd>${cfg?.Entrypoint?.length ? html`<code>${JSON.stringify(cfg.Entrypoint)}</code>` : html`<span class="muted">none</span>`}</dd>
      <dt>Command</dt><dd>${cfg?.Cmd?.length ? html`<code>${JSON.stringify(cfg.Cmd)}</code>` : html`<span class="muted">none</span>`}</dd>
      <dt>Working dir</dt><dd>${cfg?.WorkingDir ? html`<code>${cfg.WorkingDir}</code>` : html`<span class="muted">/</span>`}</dd>
      <dt>User</dt><dd>${cfg?.User ? html`<code>${cfg.User}</code>` : html`<span class="muted">root (default)</span>`}</dd>
      <dt>Exposed ports</dt><dd data-testid="ports">${ports.length ? html`<div class="badges">${ports.map((p) => html`<span class="badge">${p}</span>`)}</div>` : html`<span class="muted">none</span>`}</dd>
      ${d.config.author ? html`<dt>Author</dt><dd>${d.config.author}</dd>` : ''}
    </dl></div>
  </section>
  <section class="card" aria-labelledby="env-title">
    <div class="card-head"><h2 id="env-title">Environment and labels</h2></div>
    <div class="card-body"><dl class="kv">
      <dt>Env</dt><dd data-testid="env">${list(cfg?.Env)}</dd>
      <dt>Labels</dt><dd data-testid="labels">${list(labels)}</dd>
    </dl></div>
  </section>
</div>`
    : ''
}
${
  layers.length
    ? html`<section class="card section" aria-labelledby="layers-title">
  <div class="card-head"><h2 id="layers-title">Layers</h2><span class="hint">${plural(layers.length, 'layer')} · ${formatBytesOrDash(layers.reduce((n, l) => n + l.size, 0))}</span></div>
  <div class="table-wrap"><table class="stack" data-testid="layer-table">
    <thead><tr><th scope="col">#</th><th scope="col">Created by</th><th scope="col">Digest</th><th scope="col" class="num">Size</th></tr></thead>
    <tbody>${layers.map(
      (l, i) => html`<tr><td class="muted" data-label="#">${i + 1}</td>
      <td data-label="Created by"><div class="history-cmd">${l.createdBy ?? '—'}</div>${l.created ? html`<div class="muted small">${formatDateTime(l.created)}</div>` : ''}</td>
      <td data-label="Digest"><span class="mono small" title="${l.digest}">${shortDigest(l.digest)}</span></td>
      <td class="num" data-label="Size">${formatBytesOrDash(l.size)}</td></tr>`,
    )}</tbody>
  </table></div>
</section>`
    : ''
}
${referrersCard(ctx, d)}
<section class="card section" aria-label="Raw JSON">
  <details><summary>Manifest JSON <span class="muted small mono">${d.fetched.mediaType}</span></summary><pre class="json" data-testid="raw-manifest">${prettyJson(d.fetched.raw)}</pre></details>
  ${d.configRaw ? html`<details><summary>Config JSON</summary><pre class="json">${d.configRaw}</pre></details>` : ''}
</section>`;
  return layout(ctx, { title, active: 'repos', body }).value;
}
