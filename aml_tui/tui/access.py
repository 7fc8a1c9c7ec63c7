"""The one typed way from a screen or widget to the aml-tui app.

Textual types `node.app` as a plain `App`; `aml_app(node)` returns it as `AppServices`, what
screens may ask of the app, so they read `checkpoints` or call `open_configure` without
`type: ignore`. The app module imports the screens, so the screens depend on this interface
rather than on the app class; app.py checks (for mypy) that AmlTuiApp provides it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from textual.dom import DOMNode
from textual.notifications import SeverityLevel

from aml_tui.render.text import safe

if TYPE_CHECKING:
    from aml_tui.config import TrainConfig
    from aml_tui.core.runstore.sweeps import Sweep


class AppServices(Protocol):
    """What the aml-tui app does for its screens."""

    checkpoints: Path
    """The folder holding the run folders."""
    sweep_runners: dict[str, subprocess.Popen[bytes]]
    """Sweep runner processes this app started, by sweep id."""
    last_run: str | None
    """The run the Train screen showed last: Home highlights it when it shows again."""

    def leave(self, farewell: str | None = None, failed: bool = False) -> None: ...
    def open_configure(self, experiment: str) -> None: ...
    def start_training(self, config: TrainConfig, resume: Path | None = None) -> None: ...
    def resume_run(self, run: Path) -> str | None: ...
    def start_sweep(self, sweep: Sweep, jobs: int = 1) -> None: ...
    def run_sweep(self, new: Sweep | None, sweep_id: str, jobs: int) -> object: ...


def aml_app(node: DOMNode) -> AppServices:
    """The app `node` runs in (create_app builds every app this package runs)."""
    return cast("AppServices", node.app)


def notify_plain(
    node: DOMNode,
    text: str,
    title: str = "",
    severity: SeverityLevel = "information",
    timeout: float | None = None,
) -> None:
    """A pop-up whose text may quote a file, a run id or an error: shown as it is (through
    `safe`, never read as markup)."""
    node.app.notify(
        safe(text, markup=False), title=title, severity=severity, timeout=timeout, markup=False
    )


def notify_bug(node: DOMNode, error: BaseException | None, title: str = "aml-tui bug") -> None:
    """A worker raised: our bug, shown as a lasting pop-up."""
    notify_plain(node, f"{type(error).__name__}: {error}", title, "error", 15)
