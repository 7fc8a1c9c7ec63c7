"""The Experiments list of Home: the built-ins, those this process loaded, then the installed
entry points (listed from their packages' metadata, imported only when chosen)."""

from __future__ import annotations

from textual.content import Content
from textual.widgets.option_list import Option

from aml_tui.core.experiments import EXPERIMENTS, LOADED, Experiment
from aml_tui.core.sources import EntryPointInfo
from aml_tui.render.text import safe


def experiment_options(entry_points: dict[str, EntryPointInfo]) -> list[Option]:
    """The built-ins, the experiments this process loaded, then the installed entry points
    (a line on where each comes from; not imported). A loaded entry point stays in its own
    row. Names and descriptions a user wrote are plain text, never markup."""
    named = {info.name for info in entry_points.values()}
    recipes: list[Experiment] = list(EXPERIMENTS.values())
    recipes += [e for name, e in LOADED.items() if name not in named]
    # No dim: dimmed text on the cursor's light background falls under 4.5:1.
    options = [
        Option(_two_lines(e.name, e.description), id=f"experiment:{e.name}") for e in recipes
    ]
    options += [
        Option(_two_lines(info.name, f"from {info.package} {info.version}"), id=option_id)
        for option_id, info in entry_points.items()
    ]
    return options


def _two_lines(name: str, about: str) -> Content:
    return Content.assemble((safe(name, markup=False), "bold"), "\n  ", safe(about, markup=False))
