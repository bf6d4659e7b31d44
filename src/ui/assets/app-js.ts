/**
 * The UI's only script, served as /static/app.js. Everything works without it; it adds the theme switch, copy
 * buttons, confirmation prompts and auto-submitting sort menus. Loaded in <head> without `defer` so the chosen
 * theme applies before the first paint.
 */
export const APP_JS = String.raw`(function () {
  'use strict';
  var root = document.documentElement;
  var KEY = 'regctl-ui-theme';
  function stored() {
    try { return localStorage.getItem(KEY) || 'auto'; } catch (e) { return 'auto'; }
  }
  function apply(mode) {
    if (mode === 'light' || mode === 'dark') root.setAttribute('data-theme', mode);
    else root.removeAttribute('data-theme');
  }
  apply(stored());
  root.classList.add('js');

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    return new Promise(function (resolve, reject) {
      var area = document.createElement('textarea');
      area.value = text;
      area.setAttribute('readonly', '');
      area.className = 'visually-hidden';
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) resolve(); else reject(new Error('copy failed'));
    });
  }

  function labelFor(mode) {
    return mode === 'light' ? 'Theme: light' : mode === 'dark' ? 'Theme: dark' : 'Theme: follows the system';
  }
  function showMode(button, mode) {
    button.textContent = mode === 'light' ? '\u2600' : mode === 'dark' ? '\u263E' : '\u25D0';
    button.setAttribute('aria-label', labelFor(mode) + ' (click to change)');
    button.title = labelFor(mode);
  }

  document.addEventListener('DOMContentLoaded', function () {
    var toggle = document.getElementById('theme-toggle');
    if (toggle) {
      toggle.hidden = false;
      showMode(toggle, stored());
      toggle.addEventListener('click', function () {
        var order = ['auto', 'light', 'dark'];
        var next = order[(order.indexOf(stored()) + 1) % order.length];
        try { localStorage.setItem(KEY, next); } catch (e) { /* private mode: apply for this page only */ }
        apply(next);
        showMode(toggle, next);
      });
    }

    document.querySelectorAll('[data-copy]').forEach(function (button) {
      button.hidden = false;
      button.addEventListener('click', function () {
        var text = button.getAttribute('data-copy') || '';
        var status = document.getElementById('copy-status');
        var original = button.getAttribute('data-label') || button.textContent;
        copyText(text).then(function () {
          button.textContent = 'Copied';
          button.classList.add('copied');
          button.setAttribute('data-copied', text);
          if (status) status.textContent = 'Copied: ' + text;
          setTimeout(function () { button.textContent = original; button.classList.remove('copied'); }, 1600);
        }, function () {
          if (status) status.textContent = 'Copy failed: select the command and copy it by hand.';
        });
      });
    });

    document.querySelectorAll('form[data-confirm]').forEach(function (form) {
      form.addEventListener('submit', function (event) {
        if (!window.confirm(form.getAttribute('data-confirm') || 'Are you sure?')) event.preventDefault();
      });
    });

    document.querySelectorAll('select[data-autosubmit]').forEach(function (select) {
      select.addEventListener('change', function () { if (select.form) select.form.submit(); });
    });
  });
})();
`;
