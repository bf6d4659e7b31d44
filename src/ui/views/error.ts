import { html } from '../html.js';
import { layout, type ViewContext } from './layout.js';

export interface ErrorView {
  status: number;
  title: string;
  message: string;
  /** Where to go from here. */
  links?: { href: string; label: string }[];
}

export function errorPage(ctx: ViewContext, err: ErrorView): string {
  const links = err.links ?? [{ href: ctx.paths.repos(), label: 'All repositories' }];
  return layout(ctx, {
    title: err.title,
    body: html`<section class="error-page" aria-labelledby="error-title">
  <div class="error-code">${err.status}</div>
  <h1 id="error-title">${err.title}</h1>
  <p class="muted" data-testid="error-message">${err.message}</p>
  <div class="actions">${links.map((l, i) => html`<a class="btn${i === 0 ? ' btn-primary' : ''}" href="${l.href}">${l.label}</a>`)}</div>
</section>`,
  }).value;
}
