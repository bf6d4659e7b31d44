/** The dark palette: chosen with the theme switch, or by the system when no theme is chosen. */
const DARK = `
  color-scheme: dark;
  --bg: #0f1218;
  --surface: #171b23;
  --surface-2: #1e2430;
  --border: #2a3140;
  --border-strong: #3a4354;
  --text: #e6e9ef;
  --text-2: #aeb6c4;
  --text-3: #8a93a3;
  --accent: #748ffc;
  --accent-hover: #91a7ff;
  --accent-soft: #1f2747;
  --accent-text: #0f1218;
  --danger: #ff6b6b;
  --danger-hover: #ff8787;
  --danger-soft: #2e1517;
  --ok: #69db7c;
  --ok-soft: #142a1b;
  --warn-soft: #2b2310;
  --warn: #ffd43b;
  --focus: #91a7ff;
  --shadow: 0 1px 2px rgb(0 0 0 / 0.4);
`.slice(1);

/** The UI's one stylesheet, served as /static/style.css (a file, so the CSP needs no 'unsafe-inline'). */
export const STYLE_CSS = String.raw`
:root {
  color-scheme: light;
  --bg: #f6f7f9;
  --surface: #ffffff;
  --surface-2: #f1f3f6;
  --border: #e2e5ea;
  --border-strong: #cfd4dc;
  --text: #1b1f27;
  --text-2: #525a68;
  --text-3: #6f7785;
  --accent: #3b5bdb;
  --accent-hover: #2f4ac0;
  --accent-soft: #e8edff;
  --accent-text: #ffffff;
  --danger: #c92a2a;
  --danger-hover: #a61e1e;
  --danger-soft: #fff0f0;
  --ok: #2b8a3e;
  --ok-soft: #ebfbee;
  --warn-soft: #fff8e6;
  --warn: #8a5a00;
  --focus: #4c6ef5;
  --shadow: 0 1px 2px rgb(16 24 40 / 0.06), 0 1px 3px rgb(16 24 40 / 0.08);
  --radius: 10px;
  --mono: ui-monospace, "SFMono-Regular", "JetBrains Mono", "DejaVu Sans Mono", Menlo, Consolas, monospace;
  --sans: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", "Helvetica Neue", Arial, sans-serif;
}
:root[data-theme="dark"] {
${DARK}}
@media (prefers-color-scheme: dark) {
  :root:not([data-theme="light"]) {
${DARK}  }
}

*, *::before, *::after { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0;
  background: var(--bg);
  color: var(--text);
  font: 15px/1.5 var(--sans);
  min-height: 100vh;
  display: flex;
  flex-direction: column;
}
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
:focus-visible { outline: 2px solid var(--focus); outline-offset: 2px; border-radius: 4px; }
code, pre, .mono { font-family: var(--mono); font-size: 0.86em; }
h1, h2, h3 { line-height: 1.25; margin: 0; }
h1 { font-size: 1.5rem; font-weight: 650; letter-spacing: -0.01em; }
h2 { font-size: 1.08rem; font-weight: 620; }
p { margin: 0.4rem 0; }
.skip-link { position: absolute; left: -9999px; top: 0.5rem; background: var(--surface); padding: 0.5rem 0.8rem; z-index: 10; }
.skip-link:focus { left: 0.5rem; }
.visually-hidden { position: absolute !important; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }

/* Header */
.topbar { background: var(--surface); border-bottom: 1px solid var(--border); }
.topbar-inner { max-width: 1200px; margin: 0 auto; padding: 0 1.25rem; display: flex; align-items: center; gap: 1.25rem; min-height: 56px; flex-wrap: wrap; }
.brand { display: flex; align-items: center; gap: 0.55rem; color: var(--text); font-weight: 680; font-size: 1.02rem; }
.brand:hover { text-decoration: none; }
.brand-mark { width: 28px; height: 28px; border-radius: 7px; background: var(--accent); color: var(--accent-text); display: grid; place-items: center; }
.brand small { color: var(--text-3); font-weight: 500; font-size: 0.82rem; }
.nav { display: flex; gap: 0.25rem; flex: 1; }
.nav a { color: var(--text-2); padding: 0.4rem 0.7rem; border-radius: 7px; font-weight: 540; }
.nav a:hover { background: var(--surface-2); text-decoration: none; color: var(--text); }
.nav a[aria-current="page"] { color: var(--accent); background: var(--accent-soft); }
.userbox { display: flex; align-items: center; gap: 0.5rem; color: var(--text-2); font-size: 0.9rem; }
.userbox form { margin: 0; }
.theme-toggle { font-size: 1.05rem; line-height: 1; min-width: 34px; padding: 0.2rem 0.45rem; }
.avatar { width: 26px; height: 26px; border-radius: 50%; background: var(--surface-2); border: 1px solid var(--border); display: grid; place-items: center; font-weight: 650; font-size: 0.78rem; color: var(--text-2); text-transform: uppercase; }

main { width: 100%; max-width: 1200px; margin: 0 auto; padding: 1.5rem 1.25rem 3rem; flex: 1; }
footer { color: var(--text-3); font-size: 0.82rem; text-align: center; padding: 1rem; }

/* Page heading */
.page-head { display: flex; align-items: flex-end; justify-content: space-between; gap: 1rem; flex-wrap: wrap; margin-bottom: 1.1rem; }
.page-head p { color: var(--text-2); margin: 0.3rem 0 0; }
.crumbs { font-size: 0.88rem; color: var(--text-3); margin-bottom: 0.35rem; display: flex; flex-wrap: wrap; gap: 0.35rem; }
.crumbs a { color: var(--text-2); }
.crumbs span[aria-hidden] { color: var(--border-strong); }
.title-mono { font-family: var(--mono); font-size: 1.35rem; word-break: break-all; }

/* Cards and stats */
.card { background: var(--surface); border: 1px solid var(--border); border-radius: var(--radius); box-shadow: var(--shadow); }
.card + .card, .card + .grid, .grid + .card, .section { margin-top: 1.25rem; }
.card-head { display: flex; align-items: center; justify-content: space-between; gap: 0.75rem; padding: 0.85rem 1.1rem; border-bottom: 1px solid var(--border); flex-wrap: wrap; }
.card-head .hint { color: var(--text-3); font-size: 0.85rem; }
.card-body { padding: 1rem 1.1rem; }
.stats { display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); gap: 1rem; margin-bottom: 1.25rem; }
.stat { background: var(--surface); border: 1px solid var(--border); border-radius: var(--radius); padding: 0.9rem 1.1rem; box-shadow: var(--shadow); }
.stat-label { color: var(--text-3); font-size: 0.8rem; text-transform: uppercase; letter-spacing: 0.05em; font-weight: 600; }
.stat-value { font-size: 1.45rem; font-weight: 650; margin-top: 0.2rem; font-variant-numeric: tabular-nums; }
.stat-sub { color: var(--text-3); font-size: 0.82rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 1.25rem; }
.grid > .card { margin: 0; }

/* Tables */
.table-wrap { overflow-x: auto; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 0.65rem 1.1rem; border-bottom: 1px solid var(--border); vertical-align: top; }
th { font-size: 0.78rem; text-transform: uppercase; letter-spacing: 0.05em; color: var(--text-3); font-weight: 620; background: var(--surface-2); white-space: nowrap; }
tbody tr:last-child td { border-bottom: 0; }
tbody tr:hover td { background: color-mix(in srgb, var(--surface-2) 55%, transparent); }
td.num, th.num { text-align: right; white-space: nowrap; }
td.nowrap { white-space: nowrap; }
.repo-link { font-weight: 600; word-break: break-all; }
.muted { color: var(--text-3); }
.small { font-size: 0.85rem; }
.kv { display: grid; grid-template-columns: minmax(110px, max-content) 1fr; gap: 0.45rem 1.2rem; margin: 0; }
.kv dt { color: var(--text-3); font-size: 0.88rem; }
.kv dd { margin: 0; word-break: break-word; }
.list-plain { list-style: none; padding: 0; margin: 0; }
.list-plain li { padding: 0.15rem 0; word-break: break-all; }

/* Badges */
.badge { display: inline-flex; align-items: center; gap: 0.25rem; padding: 0.08rem 0.5rem; border-radius: 999px; font-size: 0.76rem; font-weight: 600; background: var(--surface-2); color: var(--text-2); border: 1px solid var(--border); white-space: nowrap; }
.badge-accent { background: var(--accent-soft); color: var(--accent); border-color: transparent; }
.badge-ok { background: var(--ok-soft); color: var(--ok); border-color: transparent; }
.badges { display: flex; flex-wrap: wrap; gap: 0.3rem; }
.platforms { display: grid; gap: 0.2rem; font-size: 0.86rem; }
.platform-row { display: flex; gap: 0.6rem; align-items: baseline; flex-wrap: wrap; }
.platform-row .badge { min-width: 7.5rem; justify-content: center; }

/* Forms and buttons */
label { font-weight: 560; font-size: 0.9rem; }
input[type="text"], input[type="password"], input[type="search"], select {
  font: inherit; color: var(--text); background: var(--surface); border: 1px solid var(--border-strong); border-radius: 8px; padding: 0.5rem 0.7rem; min-height: 38px; width: 100%;
}
input:focus-visible, select:focus-visible { outline: 2px solid var(--focus); outline-offset: 0; border-color: var(--focus); }
.btn { font: inherit; font-weight: 600; font-size: 0.9rem; display: inline-flex; align-items: center; justify-content: center; gap: 0.4rem; border-radius: 8px; padding: 0.45rem 0.9rem; min-height: 38px; border: 1px solid var(--border-strong); background: var(--surface); color: var(--text); cursor: pointer; white-space: nowrap; }
.btn:hover { background: var(--surface-2); text-decoration: none; }
.btn-primary { background: var(--accent); border-color: var(--accent); color: var(--accent-text); }
.btn-primary:hover { background: var(--accent-hover); border-color: var(--accent-hover); }
.btn-danger { background: var(--danger); border-color: var(--danger); color: #fff; }
.btn-danger:hover { background: var(--danger-hover); border-color: var(--danger-hover); }
.btn-ghost { border-color: transparent; background: transparent; color: var(--text-2); }
.btn-small { min-height: 30px; padding: 0.2rem 0.6rem; font-size: 0.82rem; }
.btn-icon { min-height: 30px; min-width: 30px; padding: 0.2rem 0.4rem; }
.toolbar { display: flex; gap: 0.75rem; align-items: flex-end; flex-wrap: wrap; padding: 0.9rem 1.1rem; border-bottom: 1px solid var(--border); }
.toolbar .field { display: grid; gap: 0.25rem; }
.toolbar .field-grow { flex: 1; min-width: 220px; }
.js .js-hide { display: none; }

/* Pull commands */
.pull { display: flex; align-items: stretch; border: 1px solid var(--border); border-radius: 8px; overflow: hidden; background: var(--surface-2); max-width: 100%; }
.pull code { padding: 0.4rem 0.65rem; flex: 1; white-space: nowrap; overflow-x: auto; align-self: center; }
.pull .btn { border: 0; border-left: 1px solid var(--border); border-radius: 0; min-height: 34px; }
.pulls { display: grid; gap: 0.45rem; }
.pull-pair { display: grid; grid-template-columns: minmax(0, max-content) minmax(14rem, 1fr); gap: 0.6rem; }
.pull-pair code { overflow: hidden; text-overflow: ellipsis; }
table.tags tr.tag-row td { border-bottom: 0; padding-bottom: 0.35rem; }
table.tags tr.pull-row td { padding-top: 0.2rem; padding-bottom: 0.8rem; }
table.tags tbody tr:hover td { background: transparent; }
.copied { color: var(--ok); }

/* Messages */
.alert { border-radius: var(--radius); padding: 0.8rem 1rem; border: 1px solid var(--border); background: var(--surface); margin-bottom: 1.1rem; display: flex; gap: 0.7rem; align-items: flex-start; }
.alert-error { background: var(--danger-soft); border-color: color-mix(in srgb, var(--danger) 35%, transparent); }
.alert-ok { background: var(--ok-soft); border-color: color-mix(in srgb, var(--ok) 35%, transparent); }
.alert-warn { background: var(--warn-soft); border-color: color-mix(in srgb, var(--warn) 35%, transparent); }
.alert strong { display: block; }
.empty { text-align: center; color: var(--text-3); padding: 2.5rem 1rem; }

/* Pagination */
.pager { display: flex; align-items: center; justify-content: space-between; gap: 1rem; padding: 0.75rem 1.1rem; border-top: 1px solid var(--border); color: var(--text-3); font-size: 0.88rem; flex-wrap: wrap; }
.pager nav { display: flex; gap: 0.4rem; }

/* Code blocks */
pre.json { margin: 0; padding: 1rem 1.1rem; overflow: auto; max-height: 480px; background: var(--surface-2); border-top: 1px solid var(--border); font-size: 0.8rem; line-height: 1.55; }
details > summary { cursor: pointer; padding: 0.85rem 1.1rem; font-weight: 600; list-style-position: inside; }
details[open] > summary { border-bottom: 1px solid var(--border); }
.history-cmd { font-family: var(--mono); font-size: 0.8rem; word-break: break-all; color: var(--text-2); }

/* Storage bars (SVG, so no inline styles are needed) */
.bar { display: block; width: 100%; min-width: 120px; height: 8px; border-radius: 4px; overflow: hidden; }
.bar .bar-bg { fill: var(--surface-2); }
.bar .bar-excl { fill: var(--accent); }
.bar .bar-shared { fill: color-mix(in srgb, var(--accent) 35%, var(--surface-2)); }
.legend { display: flex; gap: 1rem; font-size: 0.82rem; color: var(--text-3); align-items: center; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 0.3rem; vertical-align: -1px; }
.swatch-excl { background: var(--accent); }
.swatch-shared { background: color-mix(in srgb, var(--accent) 35%, var(--surface-2)); }

/* Delete preview */
.goes, .stays { display: grid; gap: 0.35rem; }
.goes .mono, .break { word-break: break-all; }
.impact { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 1.25rem; }
.impact .card { margin: 0; }
.impact h2 { display: flex; align-items: center; gap: 0.5rem; }
.dot { width: 9px; height: 9px; border-radius: 50%; display: inline-block; }
.dot-danger { background: var(--danger); }
.dot-ok { background: var(--ok); }
.actions { display: flex; gap: 0.75rem; align-items: center; flex-wrap: wrap; margin-top: 1.25rem; }

/* Login */
.login-wrap { min-height: calc(100vh - 140px); display: grid; place-items: center; }
.login { width: 100%; max-width: 380px; }
.login .card-body { padding: 1.6rem; display: grid; gap: 1rem; }
.login h1 { font-size: 1.3rem; }
.login .field { display: grid; gap: 0.35rem; }
.login .btn { width: 100%; }
.login-brand { display: flex; justify-content: center; margin-bottom: 1.2rem; }

/* Error page */
.error-page { max-width: 620px; margin: 3rem auto; text-align: center; }
.error-code { font-size: 3rem; font-weight: 750; color: var(--text-3); letter-spacing: -0.02em; }
.error-page .actions { justify-content: center; }

@media (max-width: 720px) {
  body { font-size: 14.5px; }
  .topbar-inner { padding: 0.5rem 0.9rem; gap: 0.5rem 0.9rem; }
  .topbar-inner { justify-content: space-between; }
  .nav { order: 3; flex-basis: 100%; }
  .userbox .avatar { display: none; }
  .brand small { display: none; }
  .userbox .user-name { display: none; }
  main { padding: 1rem 0.75rem 2rem; }
  th, td { padding: 0.55rem 0.7rem; }
  .hide-sm { display: none; }
  .stats { grid-template-columns: 1fr 1fr; gap: 0.6rem; }
  .stat-value { font-size: 1.2rem; }
  .toolbar { padding: 0.75rem; }
  .toolbar .field { flex: 1 1 40%; }
  .toolbar .field-grow { flex-basis: 100%; min-width: 0; }
  table.stack thead { display: none; }
  table.stack, table.stack tbody, table.stack tr, table.stack td { display: block; width: 100%; }
  table.stack tr { border-bottom: 1px solid var(--border); padding: 0.5rem 0; }
  table.stack td { border: 0; padding: 0.2rem 0.8rem; text-align: left; }
  table.stack td[data-label]::before { content: attr(data-label); color: var(--text-3); font-size: 0.75rem; text-transform: uppercase; letter-spacing: 0.04em; margin-right: 0.5rem; }
  table.stack td.num { text-align: left; }
  table.tags tr.tag-row { border-bottom: 0; padding-bottom: 0; }
  .pull-pair { grid-template-columns: minmax(0, 1fr); }
}
@media (prefers-reduced-motion: no-preference) {
  .btn, .nav a { transition: background-color 120ms ease, border-color 120ms ease; }
}
`;
