"""Plain-text formatting shared by the headless reporter, the app and the reports."""

from __future__ import annotations

import textwrap
import unicodedata
from collections.abc import Sequence

from rich.cells import cell_len
from rich.markup import escape

from aml_tui.core.events import EpochEnded

UNSHOWN = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))
"""Unicode categories `safe` shows as escapes: controls, format characters (bidi overrides,
zero-width), surrogates, private use, unassigned, line and paragraph separators."""


def safe(value: object, markup: bool = True) -> str:
    """A string from a file or a dataset, made fit to show: control characters (escape
    sequences, bells, carriage returns, newlines, C1 controls, bidi overrides, line
    separators, lone surrogates of undecodable file names) become visible `\\xNN`/`\\uNNNN`
    escapes, so nothing in it steers the terminal or breaks its line.

    With `markup`, square brackets are escaped for rich markup (rich's print and table
    cells, Textual's DataTable), so `[/]` or `[link=...]` in a class name or status is
    shown, never interpreted. Textual's own markup (Label, Static, notify) is another
    language: the app shows these strings with markup=False as plain Content instead.

    Every string read from a run folder or a dataset goes through here before it reaches
    a terminal, the app or a report."""
    text = "".join(
        ch
        if unicodedata.category(ch) not in UNSHOWN
        else (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        for ch in str(value)
    )
    return escape(text) if markup else text


def percent(value: float | None) -> str:
    """0.9974 -> "99.74%"; None (not measured) -> "-"."""
    return "-" if value is None else f"{100 * value:.2f}%"


def format_duration(seconds: float | None) -> str:
    """M:SS, or H:MM:SS from an hour; "--:--" when unknown."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "--:--"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def epoch_figures(event: EpochEnded) -> list[str]:
    """The figures of an epoch, in the order its line shows them."""
    parts = [
        f"epoch {event.epoch}/{event.epochs}",
        f"train loss {event.train_loss:.4f} acc {percent(event.train_acc)}",
    ]
    if event.val_acc is not None:  # a validation split: what best.pt and early stops judge
        val_loss = "-" if event.val_loss is None else f"{event.val_loss:.4f}"
        parts.append(f"val loss {val_loss} acc {percent(event.val_acc)}")
    parts.append(f"test loss {event.test_loss:.4f} acc {percent(event.test_acc)}")
    if event.scrambled_test_acc is not None:
        parts.append(f"scrambled acc {percent(event.scrambled_test_acc)}")
    parts += [f"lr {event.lr:.2g}", f"{event.train_images_per_s:,.0f} img/s"]
    if event.data_share is not None:  # the share of the epoch spent making batches
        parts.append(f"data {100 * event.data_share:.0f}%")
    parts.append(f"{event.epoch_seconds:.1f}s")
    return parts


def epoch_line(event: EpochEnded) -> str:
    """One line summing up an epoch, a star on the best; the app's log wraps it itself."""
    return " | ".join(epoch_figures(event)) + (" *" if event.is_best else "")


def epoch_lines(event: EpochEnded, width: int) -> list[str]:
    """The epoch's line fitted to `width` columns for the headless reporter (see
    `fit_figures`): the data share, the seconds and the lr go, in that order, when two lines
    are too few."""
    figures = epoch_figures(event)
    optional = [f for f in figures if f.startswith("data ")] + [figures[-1]]
    optional += [f for f in figures if f.startswith("lr ")]
    return fit_figures(figures, width, optional, " *" if event.is_best else "")


SEPARATOR = " | "
CONTINUED = "  "
"""Figures are separated by SEPARATOR; a line that carries on the one above starts CONTINUED."""


def fit_figures(
    figures: Sequence[str], width: int, optional: Sequence[str] = (), mark: str = "", lines: int = 2
) -> list[str]:
    """`figures` on lines of at most `width` columns, never a figure cut across two: on one
    line when they fit, else on up to `lines` lines, the later ones indented; when those are
    too few, the `optional` figures are left out, the first of them first. `mark` ends the
    last line. A figure wider than `width` alone keeps a line to itself, whole."""
    kept = list(figures)
    packed = _pack(kept, mark, width)
    for dropped in optional:
        if len(packed) <= lines:
            break
        kept.remove(dropped)
        packed = _pack(kept, mark, width)
    return packed


def _pack(figures: Sequence[str], mark: str, width: int) -> list[str]:
    """`figures` (`mark` glued to the last) packed greedily onto lines of `width` columns."""
    words = [*figures[:-1], figures[-1] + mark] if figures else []
    packed: list[str] = []
    for word in words:
        joined = f"{packed[-1]}{SEPARATOR}{word}" if packed else word
        if packed and cell_len(joined) <= width:
            packed[-1] = joined
        else:
            packed.append(f"{CONTINUED}{word}" if packed else word)
    return packed


def wrap_words(text: str, width: int, tail: str = "") -> list[str]:
    """`text` on lines of at most `width` columns, broken between words only (a word wider
    than the line, such as a long path, keeps a line of its own), the later lines indented;
    `tail` (a path after an arrow) is never broken: it ends the last line, or has its own."""
    lines = textwrap.wrap(
        text, max(width, 1), subsequent_indent=CONTINUED,
        break_long_words=False, break_on_hyphens=False,
    ) or [""]  # fmt: skip
    if tail and cell_len(f"{lines[-1]} {tail}") <= width:
        lines[-1] = f"{lines[-1]} {tail}"
    elif tail:
        lines.append(f"{CONTINUED}{tail}")
    return lines
