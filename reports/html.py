"""One self-contained HTML page with the Markdown report's content.

No network: the CSS and the few lines of script are inline, so the file opens from a
mail attachment or an air-gapped wiki. Every section is a ``<details>`` element (collapsible
with no script, and a print stylesheet opens them all), and a search box hides the method,
event and object sections whose text does not contain every typed word. The query is also
read from the URL fragment (``interface.html#q=build``), so a link can carry a search.
Who-calls-whom diagrams are drawn as inline SVG (senders left, receivers right), since
rendering Mermaid would need mermaid.js; the Mermaid source sits below each drawing.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from busdoc.reports.document import (
    Block,
    Bullets,
    Code,
    Diagram,
    Heading,
    Para,
    Table,
    build_document,
)

_CSS = """
:root { --fg: #1d2329; --muted: #5b6670; --line: #d5dbe1; --bg2: #f4f6f8; --accent: #0b5cad; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 1100px; padding: 0 1.2rem 4rem; }
header.bar { position: sticky; top: 0; background: #fff; border-bottom: 1px solid var(--line);
             padding: .6rem 0; z-index: 1; display: flex; gap: 1rem; align-items: center; }
header.bar input { flex: 1; font: inherit; padding: .35rem .6rem; border: 1px solid var(--line);
                   border-radius: 4px; }
header.bar button { font: inherit; padding: .3rem .7rem; border: 1px solid var(--line);
                    border-radius: 4px; background: var(--bg2); cursor: pointer; }
#count { color: var(--muted); white-space: nowrap; }
h1 { font-size: 1.7rem; } h2 { font-size: 1.35rem; display: inline; }
h3 { font-size: 1.1rem; display: inline; }
details { border-left: 3px solid var(--line); padding-left: .8rem; margin: .8rem 0; }
details.l2 { border-left-color: var(--accent); }
summary { cursor: pointer; padding: .2rem 0; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid var(--line); padding: .25rem .5rem; text-align: left;
         vertical-align: top; }
th { background: var(--bg2); }
code { background: var(--bg2); padding: 0 .2rem; border-radius: 3px; font-size: .88em;
       overflow-wrap: anywhere; }
pre { background: var(--bg2); padding: .6rem; overflow-x: auto; font-size: .85rem; }
pre code { background: none; padding: 0; }
a { color: var(--accent); }
.hidden { display: none; }
@media print {
  header.bar { display: none; }
  details { border: none; padding: 0; }
  details > summary { list-style: none; }
  .hidden { display: block; }
  pre { white-space: pre-wrap; }
  a { color: inherit; text-decoration: none; }
}
"""

_JS = """
(function () {
  var box = document.getElementById('q');
  var count = document.getElementById('count');
  var entries = Array.prototype.slice.call(document.querySelectorAll('details.entry'));
  function apply() {
    var words = box.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var shown = 0;
    entries.forEach(function (el) {
      var text = (el.getAttribute('data-search') + ' ' + el.textContent).toLowerCase();
      var hit = words.every(function (w) { return text.indexOf(w) >= 0; });
      el.classList.toggle('hidden', !hit);
      if (hit) { shown += 1; if (words.length) { el.open = true; } }
    });
    document.querySelectorAll('details.l2').forEach(function (sec) {
      var inner = sec.querySelectorAll('details.entry');
      if (!inner.length) { sec.classList.toggle('hidden', words.length > 0); return; }
      var visible = Array.prototype.some.call(inner, function (e) {
        return !e.classList.contains('hidden'); });
      sec.classList.toggle('hidden', !visible);
    });
    count.textContent = shown + ' of ' + entries.length + ' sections';
  }
  box.addEventListener('input', apply);
  document.getElementById('expand').addEventListener('click', function () {
    document.querySelectorAll('details').forEach(function (d) { d.open = true; }); });
  document.getElementById('collapse').addEventListener('click', function () {
    document.querySelectorAll('details.entry').forEach(function (d) { d.open = false; }); });
  window.addEventListener('beforeprint', function () {
    document.querySelectorAll('details').forEach(function (d) { d.open = true; }); });
  var m = /(?:^#|&)q=([^&]*)/.exec(location.hash);
  if (m) { box.value = decodeURIComponent(m[1].replace(/\\+/g, ' ')); }
  apply();
})();
"""

_INLINE = re.compile(r"\*\*(.+?)\*\*|\[([^\]]+)\]\((#[^)\s]+)\)")


def _inline(text: str) -> str:
    """The inline subset of ``reports.document``: `code`, **bold**, [label](#anchor)."""
    out: list[str] = []
    for i, part in enumerate(re.split(r"`([^`]*)`", text)):
        if i % 2:
            out.append(f"<code>{html.escape(part)}</code>")
            continue
        pos = 0
        for m in _INLINE.finditer(part):
            out.append(html.escape(part[pos:m.start()]))
            if m.group(1) is not None:
                out.append(f"<strong>{_inline(m.group(1))}</strong>")
            else:
                out.append(f'<a href="{html.escape(m.group(3))}">{_inline(m.group(2))}</a>')
            pos = m.end()
        out.append(html.escape(part[pos:]))
    return "".join(out).replace("_(no fields)_", "<em>(no fields)</em>")


def _bullets(items: tuple[tuple[int, str], ...]) -> str:
    out: list[str] = []
    depth = -1
    for level, text in items:
        if level > depth:
            out.append("<ul><li>" * (level - depth))
            depth = level
        else:
            while depth > level:
                out.append("</li></ul>")
                depth -= 1
            out.append("</li><li>")
        out.append(_inline(text))
    out.append("</li></ul>" * (depth + 1))
    return "".join(out)


def _svg(diagram: Diagram) -> str:
    """A two-column drawing, senders joined to receivers by numbered edges, and their table."""
    left = sorted({s for s, _r, _l in diagram.edges})
    right = sorted({r for _s, r, _l in diagram.edges})
    box_w = max(len(n) for n in left + right) * 8 + 24
    row, gap = 44, 240
    width = 2 * box_w + gap + 20
    height = max(len(left), len(right)) * row + 20
    ys = {("l", n): 10 + i * row for i, n in enumerate(left)}
    ys.update({("r", n): 10 + i * row for i, n in enumerate(right)})
    xr = 10 + box_w + gap
    out = [f'<svg class="calls" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           'aria-label="who calls whom">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
           'fill="#0b5cad"/></marker></defs>']
    for side, names, x in (("l", left, 10), ("r", right, xr)):
        for n in names:
            y = ys[(side, n)]
            out.append(f'<rect x="{x}" y="{y}" width="{box_w}" height="30" rx="4" '
                       'fill="#f4f6f8" stroke="#5b6670"/>'
                       f'<text x="{x + box_w / 2}" y="{y + 20}" text-anchor="middle" '
                       f'font-size="13">{html.escape(n)}</text>')
    n = len(diagram.edges)
    for k, (s, r, _label) in enumerate(diagram.edges):
        y1, y2 = ys[("l", s)] + 15, ys[("r", r)] + 15
        x1, x2 = 10 + box_w, xr
        # a numbered marker per edge, spread along the lines so crossings stay readable;
        # the labels themselves go in the table under the drawing
        t = 0.5 if n == 1 else 0.3 + 0.4 * k / (n - 1)
        cx, cy = x1 + t * (x2 - x1), y1 + t * (y2 - y1)
        out.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#0b5cad" '
                   'marker-end="url(#arrow)"/>'
                   f'<circle cx="{cx:.0f}" cy="{cy:.0f}" r="9" fill="#fff" stroke="#0b5cad"/>'
                   f'<text x="{cx:.0f}" y="{cy + 4:.0f}" text-anchor="middle" '
                   f'font-size="11">{k + 1}</text>')
    out.append("</svg>")
    rows = "".join(f"<tr><td>{k + 1}</td><td>{html.escape(s)}</td><td>{html.escape(r)}</td>"
                   f"<td>{html.escape(label)}</td></tr>"
                   for k, (s, r, label) in enumerate(diagram.edges))
    out.append("<table><thead><tr><th>#</th><th>sender</th><th>receiver</th><th>methods and "
               f"events</th></tr></thead><tbody>{rows}</tbody></table>")
    return "".join(out)


def render_blocks(blocks: list[Block], title: str) -> str:
    body: list[str] = []
    open_levels: list[int] = []

    def close(level: int) -> None:
        while open_levels and open_levels[-1] >= level:
            open_levels.pop()
            body.append("</details>")

    for block in blocks:
        if isinstance(block, Heading):
            if block.level == 1:
                close(2)
                body.append(f"<h1>{_inline(block.text)}</h1>")
                continue
            close(block.level)
            cls = "entry" if block.level >= 3 else "l2"
            ident = f' id="{html.escape(block.anchor)}"' if block.anchor else ""
            search = html.escape(block.search, quote=True)
            body.append(f'<details class="{cls}"{ident} data-search="{search}" open>'
                        f"<summary><h{block.level}>{_inline(block.text)}</h{block.level}>"
                        "</summary>")
            open_levels.append(block.level)
        elif isinstance(block, Para):
            body.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{_inline(h)}</th>" for h in block.head)
            rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>"
                           for row in block.rows)
            # key/value tables have blank headings (Markdown needs a header row, HTML not)
            thead = f"<thead><tr>{head}</tr></thead>" if any(block.head) else ""
            body.append(f"<table>{thead}<tbody>{rows}</tbody></table>")
        elif isinstance(block, Bullets):
            body.append(_bullets(block.items))
        elif isinstance(block, Diagram):
            body.append(_svg(block))
            body.append('<details class="source"><summary>Mermaid source</summary>'
                        f"<pre><code>{html.escape(block.mermaid)}</code></pre></details>")
        elif isinstance(block, Code):
            cls = f' class="language-{html.escape(block.lang)}"' if block.lang else ""
            body.append(f"<pre><code{cls}>{html.escape(block.text)}</code></pre>")
    close(0)
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        '<header class="bar"><input id="q" type="search" placeholder="Filter methods, events, '
        'objects… (all words must match)" autocomplete="off" aria-label="Filter">'
        '<span id="count"></span><button id="expand" type="button">Expand all</button>'
        '<button id="collapse" type="button">Collapse</button></header>',
        *body,
        f"<script>{_JS}</script>",
        "</body></html>",
    ]) + "\n"


def render_html(catalog: Mapping[str, Any]) -> str:
    """The catalog as one self-contained HTML page."""
    return render_blocks(build_document(catalog), "Observed AMQP interface")


def html_files(catalog: Mapping[str, Any]) -> dict[str, str]:
    return {"interface.html": render_html(catalog)}
