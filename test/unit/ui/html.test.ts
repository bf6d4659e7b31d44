import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { escapeHtml, html, raw } from '../../../src/ui/html.js';

describe('html templates', () => {
  it('escapes interpolated text, in content and in attributes', () => {
    const name = `<script>alert("x")</script>&'`;
    expect(html`<p title="${name}">${name}</p>`.value).toBe(
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;</p>',
    );
  });

  it('keeps nested templates and raw markup, joins arrays, and drops null, undefined and false', () => {
    const items = ['a<b', 'c'];
    expect(
      html`<ul>${items.map((i) => html`<li>${i}</li>`)}</ul>${null}${undefined}${false}${raw('<hr>')}${0}`.value,
    ).toBe('<ul><li>a&lt;b</li><li>c</li></ul><hr>0');
  });

  it('never lets an interpolated string open a tag or close an attribute', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const out = html`<a href="${s}">${s}</a>`.value;
        const inner = out.slice('<a href="'.length, -'</a>'.length);
        expect(inner.replace('">', '')).not.toMatch(/[<>"]/);
        expect(escapeHtml(s).replace(/&(amp|lt|gt|quot|#39);/g, '')).not.toMatch(/[&<>"']/);
      }),
    );
  });
});
