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

    def update(self, content: VisualType = "", *, layout: bool = False) -> None:
        """Show `content` if it differs from what is shown (text or styles). No new layout
        unless `layout` asks for one, or CSS made this line's size follow its text."""
        if not layout and _key(content) == _key(self.content):
            return
        sized = all(
            scalar is not None and not scalar.is_auto
            for scalar in (self.styles.width, self.styles.height)
        )
        super().update(content, layout=layout or not sized)


def _key(content: VisualType) -> object:
    """What makes two contents look the same: Content compares its text only."""
    if isinstance(content, Content):
        return (content.plain, tuple(content.spans))
    if isinstance(content, str):
        return content
    return object()  # other visuals: always redrawn
