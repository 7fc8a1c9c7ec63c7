"""The text colours the renderables share, picked for contrast where they are shown.

They print in a terminal (`aml-tui eval`, `compare`, a failed run) on its own background,
assumed dark, and in the app on its themes' backgrounds. ANSI "red" is 3.6:1 on black in
xterm's palette, and Textual's NO_COLOR greys turn it to 1.6:1; these stay at 4.5:1 or more
on black, in 256 colours (each is an entry of that palette), rounded to 16 colours (bright
red and bright green) and in NO_COLOR's greys. tests/test_contrast.py checks them.
No torch here: the app and the headless reporter import it at start-up.
"""

from __future__ import annotations

WRONG = "#ff5f5f"
"""A wrong prediction, a failure: light red."""

RIGHT = "#5fd75f"
"""A true class, a right prediction: light green."""
