import { upstreamHost } from '../../common/cached-from.js';
import { html, type SafeHtml } from '../html.js';

/** "cached from registry-1.docker.io" beside a repository of the pull-through cache; nothing for the registry's own. */
export function cachedBadge(upstream: string | undefined): SafeHtml {
  if (!upstream) return html``;
  return html` <span class="badge" data-testid="cached-from" title="${upstream}">cached from ${upstreamHost(upstream)}</span>`;
}
