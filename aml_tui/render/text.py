"""Plain-text formatting shared by the headless reporter, the app and the reports."""

from __future__ import annotations


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
