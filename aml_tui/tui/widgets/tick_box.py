"""A checkbox whose state reads without colour: an X in the box when on, an empty box off.

Textual's Checkbox always draws its X and tells the states apart by colour alone (on: green;
off: the X nearly the colour of its box); under NO_COLOR or 16 colours the two look alike.
"""

from __future__ import annotations

from textual.widgets import Checkbox


class TickBox(Checkbox):
    """A Checkbox drawn `▐X▌` when checked and `▐ ▌` when not (colours in aml_tui.tcss)."""

    BUTTON_INNER = " "

    def watch_value(self) -> None:
        # The glyph follows the value; Checkbox then sets the -on class and posts Changed.
        self.BUTTON_INNER = "X" if self.value else " "
        super().watch_value()
