"""A one-line label that the dashboard rewrites on every tick: cheap to update.

A Label's update asks for a new layout of the whole screen (its width may change), even when
the text is the same. A TextLine has a fixed size (one line, the width its container gives it),
so an update only repaints its own line, and an update to the same text does nothing.
"""

from __future__ import annotations

from textual.content import Content
from textual.visual import VisualType
from textual.widgets import Label


class TextLine(Label):
    """One line of text, as wide as its container allows; updates repaint it alone."""

    DEFAULT_CSS = """
    TextLine {
        width: 1fr;
        height: 1;
    }
    """

    def __init__(self, content: VisualType = "", **kwargs: object) -> None:
        super().__init__(content, **kwargs)  # type: ignore[arg-type]
        self.shown: object = _key(content)

    def update(self, content: VisualType = "", *, layout: bool = False) -> None:
        """Show `content` if it differs from what is shown (text or styles); its size is
        fixed, so no new layout unless `layout` asks for one."""
        key = _key(content)
        if key == self.shown and not layout:
            return
        self.shown = key
        super().update(content, layout=layout)


def _key(content: VisualType) -> object:
    """What makes two contents look the same: Content compares its text only."""
    if isinstance(content, Content):
        return (content.plain, tuple(content.spans))
    if isinstance(content, str):
        return content
    return object()  # other visuals: always redrawn
