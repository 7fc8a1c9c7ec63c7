"""Screenshots (ctrl+s): the screen as an SVG file in the checkpoints folder, where reports
go too (tui/exports.py), and a pop-up that says where it went.

Textual's own delivery writes the file in a thread (or, under `aml-tui serve`, sends it to
the browser as a download) and reports back with DeliveryComplete or DeliveryFailed; the
app tells the user from those (`saved_text`, `failed_text`). The folder is the one Home
lists runs from: it exists or can be made wherever runs can be written, and Home lists only
folders, so the SVG files never show up as runs.
"""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from typing import Any

from textual.app import App

from aml_tui.render.text import safe
from aml_tui.tui.exports import saved_line

DELIVERY = "aml-tui-screenshot"
"""The name deliveries of screenshots carry (Textual's own handlers answer only theirs)."""


def screenshot_path(folder: Path, screen: str, now: datetime) -> Path:
    """A new file in `folder` named after the screen and the time; a second one in the
    same second gets -2, -3... rather than overwriting the first."""
    stem = f"aml-tui-{screen}-{now:%Y%m%d-%H%M%S}"
    path = folder / f"{stem}.svg"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}.svg"
    return path


def save_screenshot(app: App[Any], folder: Path) -> None:
    """Write the current screen to `folder` as SVG (the app hears when it is written)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        app.notify(failed_text(error), title="Screenshot", severity="error", markup=False)
        return
    screen = type(app.screen).__name__.removesuffix("Screen").lower() or "screen"
    path = screenshot_path(folder, screen, datetime.now())
    app.deliver_text(
        io.StringIO(app.export_screenshot()),
        save_directory=path.parent,
        save_filename=path.name,
        open_method="browser",
        mime_type="image/svg+xml",
        name=DELIVERY,
    )


def saved_text(path: Path | None) -> str:
    """Where the screenshot went (no path: a browser downloaded it), as plain text."""
    if path is None:
        return "screenshot sent to the browser"
    return saved_line("screenshot saved to", path)


def failed_text(error: BaseException) -> str:
    return safe(f"cannot save the screenshot: {error}", markup=False)
