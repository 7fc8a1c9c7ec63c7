"""A Document as one HTML file that opens offline in any browser and prints well.

Self-contained: figures are data: URIs, the style sheet is in the page, no script, no font
to fetch, and a Content-Security-Policy that forbids loading anything else. Every string is
escaped twice over: control characters made visible (`safe`), then HTML-escaped.
"""

from __future__ import annotations

import base64
import html

from aml_tui import __version__
from aml_tui.render.text import safe
from aml_tui.report.document import Block, Cell, Columns, Document, Figure, Heading, Paragraph
from aml_tui.report.document import Table as DocTable

MIME = {"svg": "image/svg+xml", "png": "image/png"}

CSS = """
:root { --text: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa;
        --warn: #9a6700; --warn-bg: #fff8c5; --run: #0969da; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1180px; padding: 24px 32px 48px; color: var(--text);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
header { border-bottom: 1px solid var(--line); margin-bottom: 8px; }
h1 { font-size: 24px; margin: 0 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 19px; margin: 28px 0 8px; padding-bottom: 4px;
     border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 18px 0 6px; }
h4 { font-size: 15px; margin: 16px 0 4px; }
.subtitle { color: var(--muted); margin: 0 0 12px; }
.badge { display: inline-block; vertical-align: middle; margin-left: 8px; padding: 1px 10px;
         border-radius: 999px; font-size: 13px; font-weight: 600; color: #fff;
         background: var(--run); }
p.note { color: var(--muted); font-size: 14px; }
p.warning { background: var(--warn-bg); border-left: 4px solid var(--warn); padding: 8px 12px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 14px; }
figure.table table { margin-bottom: 0; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; overflow-wrap: anywhere; }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.matrix td, table.matrix th { padding: 3px 6px; border: 1px solid var(--line); }
table.matrix td.num { min-width: 2.8em; }
table.fields td:first-child { color: var(--muted); white-space: nowrap; }
figure { margin: 8px 0 20px; break-inside: avoid; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.columns { display: grid; gap: 24px; align-items: start; }
.columns > section { min-width: 0; overflow-x: auto; }
.columns > section > h3:first-child { margin-top: 0; padding: 4px 8px; background: var(--soft);
                                      border-radius: 4px; overflow-wrap: anywhere; }
@media (max-width: 900px) { .columns { grid-template-columns: 1fr !important; } }
@media print { body { max-width: none; padding: 0; font-size: 12px; }
               h2 { break-after: avoid; } table, figure { break-inside: avoid; } }
@page { margin: 14mm; }
"""

POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
"""Nothing may load from anywhere: images come from data: URIs, style from this page."""


def text(value: str) -> str:
    """A string from a file, fit for HTML: control characters visible, markup escaped."""
    return html.escape(safe(value, markup=False))


def to_html(document: Document) -> str:
    badge = '<span class="badge">running</span>' if document.running else ""
    body = "\n".join(block_html(block) for block in document.blocks)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{POLICY}">
<meta name="generator" content="aml-tui {html.escape(__version__)}">
<link rel="icon" href="data:,">
<title>{text(document.title)}</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>{text(document.title)}{badge}</h1>
<p class="subtitle">{text(document.subtitle)}</p>
</header>
<main>
{body}
</main>
</body>
</html>
"""


def block_html(block: Block) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{text(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        return f'<p class="{block.kind}">{text(block.text)}</p>'
    if isinstance(block, DocTable):
        return table_html(block)
    if isinstance(block, Figure):
        return figure_html(block)
    return columns_html(block)


def table_html(table: DocTable) -> str:
    def cls(index: int) -> str:
        return ' class="num"' if index >= table.numeric_from else ""

    head = "".join(f"<th{cls(i)}>{text(h)}</th>" for i, h in enumerate(table.header))
    rows = []
    for row in table.rows:
        if table.kind == "matrix":  # the first cell names the row's true class
            cells = [f"<th>{text(row[0].text)}</th>"]
            cells += [cell_html(cell, ' class="num"') for cell in row[1:]]
        else:
            cells = [cell_html(cell, cls(i)) for i, cell in enumerate(row)]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    body = (
        f'<table class="{table.kind}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    caption = table.caption
    if table.kind == "matrix":  # its colours are this writer's: it says what they mean
        caption += "; colour: share of the row, green on the diagonal, red off it"
    if not caption:
        return body
    # A figure, not <caption>: a caption is only as wide as its table (a narrow matrix).
    return f'<figure class="table">{body}<figcaption>{text(caption)}</figcaption></figure>'


def cell_html(cell: Cell, attributes: str) -> str:
    content = text(cell.text)
    if cell.strong:
        content = f"<strong>{content}</strong>"
    if cell.background is not None:
        r, g, b = cell.background
        dark = 0.299 * r + 0.587 * g + 0.114 * b < 150  # white text on a dark cell
        colour = ";color:#fff" if dark else ""
        attributes += f' style="background:rgb({r},{g},{b}){colour}"'
    return f"<td{attributes}>{content}</td>"


def figure_html(figure: Figure) -> str:
    drawn = figure.drawn
    data = base64.b64encode(drawn.data).decode("ascii")
    caption = f"<figcaption>{text(figure.caption)}</figcaption>" if figure.caption else ""
    return (
        f'<figure><img src="data:{MIME[drawn.format]};base64,{data}" alt="{text(figure.alt)}"'
        f' width="{drawn.width}">{caption}</figure>'
    )


def columns_html(columns: Columns) -> str:
    parts = [
        f"<section><h3>{text(title)}</h3>\n" + "\n".join(block_html(b) for b in blocks)
        + "</section>"
        for title, blocks in columns.parts
    ]  # fmt: skip
    style = f"grid-template-columns: repeat({len(parts)}, minmax(0, 1fr))"
    return f'<div class="columns" style="{style}">\n' + "\n".join(parts) + "\n</div>"
