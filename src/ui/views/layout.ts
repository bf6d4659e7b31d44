import { html, type SafeHtml } from '../html.js';
import type { Paths } from '../paths.js';
import type { Notice } from '../sessions.js';

/** What every page needs to draw its frame. */
export interface ViewContext {
  paths: Paths;
  /** Signed-in user, if any. */
  user: string | undefined;
  csrf: string | undefined;
  admin: boolean;
  /** The registry host shown in pull commands. */
  publicRegistry: string;
  version: string;
  assetVersion: string;
}

export type Flash = Notice;

const LOGO = html`<svg width="18" height="18" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><path d="M21 8 12 3 3 8v8l9 5 9-5z"/><path d="m3 8 9 5 9-5"/><path d="M12 13v8"/></svg>`;

export function brand(ctx: ViewContext): SafeHtml {
  return html`<a class="brand" href="${ctx.paths.repos()}"><span class="brand-mark">${LOGO}</span><span>regctl <small>registry</small></span></a>`;
}

export function flashBox(flash: Flash | undefined): SafeHtml {
  if (!flash) return html``;
  return html`<div class="alert alert-${flash.kind}" role="${flash.kind === 'error' ? 'alert' : 'status'}"><div><strong>${flash.title}</strong>${flash.text ? html`<span>${flash.text}</span>` : ''}</div></div>`;
}

export function layout(
  ctx: ViewContext,
  opts: { title: string; active?: 'repos' | 'storage' | 'robots' | 'events'; body: SafeHtml; bare?: boolean },
): SafeHtml {
  const nav = ctx.user
    ? html`<nav class="nav" aria-label="Main">
        <a href="${ctx.paths.repos()}"${opts.active === 'repos' ? html` aria-current="page"` : ''}>Repositories</a>
        ${ctx.admin ? html`<a href="${ctx.paths.storage()}"${opts.active === 'storage' ? html` aria-current="page"` : ''}>Storage</a>` : ''}
        ${ctx.admin ? html`<a href="${ctx.paths.robots()}"${opts.active === 'robots' ? html` aria-current="page"` : ''}>Robots</a>` : ''}
        ${ctx.admin ? html`<a href="${ctx.paths.events()}"${opts.active === 'events' ? html` aria-current="page"` : ''}>Deliveries</a>` : ''}
      </nav>
      <div class="userbox">
        <button type="button" class="btn btn-ghost btn-small theme-toggle" id="theme-toggle" hidden>◐</button>
        <span class="avatar" aria-hidden="true">${ctx.user.slice(0, 1)}</span>
        <span class="user-name" data-testid="user">${ctx.user}</span>
        <form method="post" action="${ctx.paths.logout()}">
          <input type="hidden" name="csrf" value="${ctx.csrf ?? ''}">
          <button type="submit" class="btn btn-small">Sign out</button>
        </form>
      </div>`
    : html`<div class="nav"></div><div class="userbox"><button type="button" class="btn btn-ghost btn-small theme-toggle" id="theme-toggle" hidden>◐</button>${
        opts.bare ? '' : html`<a class="btn btn-small" href="${ctx.paths.login()}" data-testid="sign-in">Sign in</a>`
      }</div>`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${opts.title} · regctl registry</title>
<link rel="stylesheet" href="${ctx.paths.asset(`style.css?v=${ctx.assetVersion}`)}">
<script src="${ctx.paths.asset(`app.js?v=${ctx.assetVersion}`)}"></script>
</head>
<body>
<a class="skip-link" href="#main">Skip to content</a>
${opts.bare ? '' : html`<header class="topbar"><div class="topbar-inner">${brand(ctx)}${nav}</div></header>`}
<main id="main" tabindex="-1">
${opts.body}
</main>
<footer>regctl ${ctx.version} · registry ${ctx.publicRegistry}</footer>
<div id="copy-status" class="visually-hidden" role="status" aria-live="polite"></div>
</body>
</html>`;
}

/** A pull command with its copy button (the button appears only when the script runs). */
export function pullCommand(command: string, label: string): SafeHtml {
  return html`<div class="pull"><code>${command}</code><button type="button" class="btn btn-small" data-copy="${command}" data-label="Copy" aria-label="${label}" hidden>Copy</button></div>`;
}
