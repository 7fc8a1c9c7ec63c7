"""The app's two themes, and which one a terminal gets.

Over SSH most terminals say TERM=xterm-256color and no COLORTERM, so the console writes the
nearest of 256 colours; some say TERM=xterm and get 16. Textual's own dark theme loses its
contrast on the way down (white on the 16-colour grey of its footer is 4:1, a disabled
button's label the colour of its button), and its cursor blue is under 4.5:1 even in true
colour. So:

- `aml-dark`, for true colour and 256 colours: Textual's dark theme with every colour that
  text sits on or is drawn in taken from the 256-colour palette itself (the downgrade leaves
  it as it is) and chosen for a contrast of at least 4.5:1.
- `aml-ansi`, for 16 colours: the terminal's own colours by name (ansi_*), as Textual's
  ansi-dark theme does, so nothing is rounded to a neighbour that happens to match its text.

Under NO_COLOR Textual draws `aml-dark` in greys (its Monochrome filter), which the contrast
of this theme survives, and drops the colours of `aml-ansi` altogether (its NoColor filter):
the terminal's own text on its own background, with bold, dim, underline (the cursor) and
reverse video left. tests/test_contrast.py checks every screen in each of these modes.
"""

from __future__ import annotations

import io

from rich.console import Console
from textual import constants
from textual.theme import Theme

DARK = Theme(
    name="aml-dark",
    primary="#005f87",
    secondary="#005f87",
    accent="#ffaf00",
    warning="#ffaf00",
    error="#af0000",
    success="#5faf5f",
    foreground="#e4e4e4",
    background="#121212",
    surface="#1c1c1c",
    panel="#262626",
    dark=True,
    variables={
        "block-cursor-background": "#87afd7",
        "block-cursor-foreground": "#000000",
        "block-cursor-blurred-background": "#303030",
        "block-cursor-blurred-foreground": "#e4e4e4",
        "text-muted": "#a8a8a8",
        "text-disabled": "#949494",
        "text-error": "#ff8787",
        "text-success": "#87d787",
        "text-warning": "#ffd75f",
        "footer-key-foreground": "#ffaf00",
    },
)
"""True colour and 256 colours: every colour an entry of the 256-colour palette."""

ANSI = Theme(
    name="aml-ansi",
    ansi=True,
    primary="ansi_blue",
    secondary="ansi_cyan",
    warning="ansi_yellow",
    error="ansi_red",
    success="ansi_green",
    accent="ansi_bright_yellow",
    foreground="ansi_white",
    background="ansi_default",
    surface="ansi_black",
    panel="ansi_default",
    boost="ansi_default",
    dark=True,
    variables={
        "ansi-background": "ansi_black",
        "ansi-foreground": "ansi_white",
        "border-blurred": "ansi_black",
        # The cursor: black on white, and underlined so that it is still there under
        # NO_COLOR, when Textual drops every ANSI colour of this theme (a reverse-video
        # cursor would do, but the option lists lose it on the way).
        "block-cursor-foreground": "ansi_black",
        "block-cursor-background": "ansi_white",
        "block-cursor-text-style": "bold underline",
        "input-cursor-background": "ansi_black",
        "input-cursor-foreground": "ansi_bright_white",
        "input-cursor-text-style": "none",
        "input-selection-background": "ansi_blue",
        "input-selection-foreground": "ansi_bright_white",
        "screen-selection-background": "ansi_blue",
        "screen-selection-foreground": "ansi_bright_white",
        "footer-key-foreground": "ansi_bright_yellow",
        "text-error": "ansi_bright_red",
    },
)
"""16 colours: the terminal's own colours by name."""


def theme_for(color_system: str | None) -> Theme:
    """The theme for a console's colour system ("truecolor", "256", "standard",
    "windows", or None when it writes no colour)."""
    return DARK if color_system in ("truecolor", "256", None) else ANSI


def terminal_theme() -> Theme:
    """The theme for this terminal, told by its environment as Textual's console tells it
    (TEXTUAL_COLOR_SYSTEM, else COLORTERM and TERM). Known before the app is made: Textual
    picks its NO_COLOR filter then, and only an app made with native ANSI colours gets the
    one that suits `aml-ansi` (the other turns its colours to black on black)."""
    console = Console(
        color_system=constants.COLOR_SYSTEM,  # type: ignore[arg-type]
        file=io.StringIO(),
        force_terminal=True,
        legacy_windows=False,
    )
    return theme_for(console.color_system)
