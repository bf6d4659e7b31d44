import { html } from '../html.js';
import { brand, flashBox, layout, type Flash, type ViewContext } from './layout.js';

export function loginPage(ctx: ViewContext, opts: { next: string; user?: string; flash?: Flash }): string {
  return layout(ctx, {
    title: 'Sign in',
    bare: true,
    body: html`<div class="login-wrap"><div class="login">
  <div class="login-brand">${brand(ctx)}</div>
  ${flashBox(opts.flash)}
  <form class="card" method="post" action="${ctx.paths.login()}">
    <div class="card-body">
      <div><h1>Sign in</h1><p class="muted small">Use your registry account on ${ctx.publicRegistry}.</p></div>
      <input type="hidden" name="next" value="${opts.next}">
      <div class="field"><label for="username">User name</label>
        <input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus value="${opts.user ?? ''}"></div>
      <div class="field"><label for="password">Password</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required></div>
      <button type="submit" class="btn btn-primary">Sign in</button>
    </div>
  </form>
</div></div>`,
  }).value;
}
