"""Plain-text formatting shared by the headless reporter, the app and the reports."""

from __future__ import annotations

import unicodedata

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


def epoch_line(event: EpochEnded) -> str:
    """One line summing up an epoch; shared by both output modes."""
    parts = [
        f"epoch {event.epoch}/{event.epochs}",
        f"train loss {event.train_loss:.4f} acc {percent(event.train_acc)}",
        f"test loss {event.test_loss:.4f} acc {percent(event.test_acc)}",
    ]
    if event.scrambled_test_acc is not None:
        parts.append(f"scrambled acc {percent(event.scrambled_test_acc)}")
    parts += [f"lr {event.lr:.2g}", f"{event.train_images_per_s:,.0f} img/s"]
    if event.data_share is not None:  # the share of the epoch spent making batches
        parts.append(f"data {100 * event.data_share:.0f}%")
    parts.append(f"{event.epoch_seconds:.1f}s")
    return " | ".join(parts) + (" *" if event.is_best else "")
