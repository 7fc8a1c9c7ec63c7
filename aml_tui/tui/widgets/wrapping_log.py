"""A log that wraps its lines at its width, and wraps them again when the width changes."""

from __future__ import annotations

import textwrap
from collections import deque

from textual.events import Resize
from textual.widgets import Log

from aml_tui.render.text import CONTINUED, SEPARATOR, fit_figures


class WrappingLog(Log):
    """Textual's Log (fast, plain text) with wrapping: a Log cuts what is wider than it, and
    at 80 columns an epoch line is. The lines are kept as written and wrapped again after a
    resize, so lines written at 120 columns still read whole after the terminal shrinks."""

    def __init__(self, *, max_lines: int, id: str | None = None) -> None:
        super().__init__(max_lines=max_lines, id=id)
        self.written: deque[str] = deque(maxlen=max_lines)
        """The lines as written (wrapping makes more of them, never fewer)."""
        self.wrapped_at = 0
        """The width the shown lines were wrapped at."""

    def write_wrapped(self, text: str) -> None:
        """Write one line of plain text (the caller has made it safe), wrapped."""
        self.written.append(text)
        self.wrapped_at = self.wrap_width()
        self.write_lines(self.wrap(text, self.wrapped_at))

    def wrap_width(self) -> int:
        # Room for the vertical scrollbar, shown once the lines outgrow the log.
        width = self.size.width - self.styles.scrollbar_size_vertical
        return width if width >= 30 else max(30, self.app.size.width - 2)  # not laid out yet

    @staticmethod
    def wrap(text: str, width: int) -> list[str]:
        """Between words; a line of figures ("epoch 2/15 | train loss ... | 5.3s") between
        its figures where they fit the width, so no figure is cut across two lines (as
        the headless epoch lines are, render/text.fit_figures)."""
        lines = [text]
        if SEPARATOR in text:
            figures = text.split(SEPARATOR)
            lines = fit_figures(figures, width, lines=len(figures))
        return [
            part
            for line in lines
            for part in (
                textwrap.wrap(line, width, subsequent_indent=CONTINUED, break_on_hyphens=False)
                or [""]
            )
        ]

    def on_resize(self, event: Resize) -> None:
        width = self.wrap_width()
        if width != self.wrapped_at and self.written:
            self.wrapped_at = width
            self.clear()
            self.write_lines([line for text in self.written for line in self.wrap(text, width)])
