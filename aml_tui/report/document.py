"""A report as plain blocks (headings, text, tables, figures, columns), so the HTML and the
Markdown writer show the same content and neither decides what a report holds.

Every string in a block is plain text as read from a run folder or a dataset: each writer
escapes it for its own format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2
    """2 for a section, 3 for a part of one."""


@dataclass(frozen=True)
class Paragraph:
    text: str
    kind: Literal["text", "note", "warning"] = "text"
    """A note is secondary (how to read a figure); a warning says the numbers are partial."""


@dataclass(frozen=True)
class Cell:
    text: str
    background: tuple[int, int, int] | None = None
    """RGB of the cell's background (the confusion matrix's colours), else none."""
    strong: bool = False


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    caption: str = ""
    numeric_from: int = 1
    """Columns from this one on hold numbers: right-aligned."""
    kind: Literal["data", "matrix", "fields"] = "data"
    """A matrix is drawn compact (square cells); fields are name/value pairs."""


@dataclass(frozen=True)
class Drawn:
    """A figure's file."""

    format: Literal["svg", "png"]
    data: bytes
    width: int
    """Its size on the page in CSS pixels (96 per inch): a PNG drawn at print resolution
    is shown at the size it was drawn for, not at one screen pixel per dot."""


@dataclass(frozen=True)
class Figure:
    name: str
    """File name stem, unique in the report ("curves", "mistakes-a")."""
    drawn: Drawn
    alt: str
    """What the figure shows, in words, for screen readers and when images are off."""
    caption: str = ""


@dataclass(frozen=True)
class Columns:
    """Parts shown side by side (a comparison); one after another where there is no room."""

    parts: tuple[tuple[str, tuple[Block, ...]], ...]
    """(title, blocks) of each column."""


Block = Heading | Paragraph | Table | Figure | Columns


@dataclass(frozen=True)
class Document:
    title: str
    subtitle: str
    """What was reported and when, in one line."""
    running: bool
    """Whether a run in it was still training: the report shows it as it stood."""
    blocks: tuple[Block, ...] = field(default=())


def figures(blocks: tuple[Block, ...]) -> list[Figure]:
    """Every figure of the blocks, in order (inside columns too)."""
    found: list[Figure] = []
    for block in blocks:
        if isinstance(block, Figure):
            found.append(block)
        elif isinstance(block, Columns):
            for _, part in block.parts:
                found.extend(figures(part))
    return found
