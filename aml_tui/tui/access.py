"""The one typed way from a screen or widget to the aml-tui app.

Textual types `node.app` as a plain `App`; `aml_app(node)` says which app it is, so screens
read `checkpoints` or call `open_configure` without `type: ignore`. The app module imports the
screens, so it is imported here for type checking only (at run time it would be a cycle).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.dom import DOMNode

if TYPE_CHECKING:
    from aml_tui.tui.app import AmlTuiApp


def aml_app(node: DOMNode) -> AmlTuiApp:
    """The AmlTuiApp `node` runs in (create_app builds every app this package runs)."""
    return cast("AmlTuiApp", node.app)
