"""A Document as Markdown (GitHub's flavour: pipe tables) whose figures are files in a folder
beside it, for a README or an assignment.

Markdown cannot colour a table cell, so the confusion matrix keeps its counts and marks the
diagonal in bold; everything else is the HTML report's content, in the same order.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from aml_tui.render.text import safe
from aml_tui.report.document import Block, Cell, Columns, Document, Figure, Heading, Paragraph
from aml_tui.report.document import Table as DocTable

SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")
"""Characters that would start Markdown (or HTML) markup in a string from a file."""


def text(value: str) -> str:
    """A string from a file, fit for Markdown: control characters visible, markup escaped."""
    return SPECIAL.sub(r"\\\1", safe(value, markup=False).replace("&", "&amp;"))


def figure_file(figure: Figure) -> str:
    return f"{figure.name}.{figure.drawn.format}"


def to_markdown(document: Document, figure_dir: str) -> str:
    """The Markdown text; `figure_dir` is the figures folder's name, relative to the file."""
    running = " (running)" if document.running else ""
    lines = [f"# {text(document.title)}{running}", "", f"*{text(document.subtitle)}*", ""]
    for block in document.blocks:
        lines += block_lines(block, figure_dir)
    return "\n".join(lines).rstrip() + "\n"


def block_lines(block: Block, figure_dir: str) -> list[str]:
    if isinstance(block, Heading):
        return ["#" * block.level + " " + text(block.text), ""]
    if isinstance(block, Paragraph):
        if block.kind == "warning":
            return [f"> **Note:** {text(block.text)}", ""]
        return [f"*{text(block.text)}*" if block.kind == "note" else text(block.text), ""]
    if isinstance(block, DocTable):
        return table_lines(block)
    if isinstance(block, Figure):
        path = quote(f"{figure_dir}/{figure_file(block)}")
        lines = [f"![{text(block.alt)}]({path})", ""]
        return lines + ([f"*{text(block.caption)}*", ""] if block.caption else [])
    return columns_lines(block, figure_dir)


def table_lines(table: DocTable) -> list[str]:
    def row(cells: list[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    header = [text(h) or " " for h in table.header]
    rule = ["---:" if i >= table.numeric_from else "---" for i in range(len(header))]
    lines = [row(header), row(rule)]
    for cells in table.rows:
        lines.append(row([cell_text(cell) for cell in cells]))
    lines.append("")
    caption = table.caption
    if table.kind == "matrix":  # no colours in Markdown: the diagonal is in bold
        caption += "; the diagonal (right predictions) in bold"
    return lines + ([f"*{text(caption)}*", ""] if caption else [])


def cell_text(cell: Cell) -> str:
    shown = text(cell.text)
    return f"**{shown}**" if cell.strong and shown else shown


def columns_lines(columns: Columns, figure_dir: str) -> list[str]:
    """Markdown has no columns: each part in turn, under its own heading."""
    lines: list[str] = []
    for title, blocks in columns.parts:
        lines += [f"### {text(title)}", ""]
        for block in blocks:
            lines += block_lines(block, figure_dir)
    return lines
