"""The leaderboard of `aml-tui sweep show`: one row per combination, best mean accuracy first.

Its own module, like the runs listing: it needs no torch, so `sweep show` stays quick.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from aml_tui.core.runstore.leaderboard import ConfigStats, RunResult, Stats, leaderboard, ranked
from aml_tui.core.runstore.sweeps import Sweep
from aml_tui.render.text import percent, safe


def params_text(params: Mapping[str, Any]) -> str:
    """A combination's settings as `name=value` pairs ("seeds only" for a sweep of seeds)."""
    return " ".join(f"{key}={value}" for key, value in params.items()) or "(seeds only)"


def mean_std(stats: Stats | None) -> str:
    """99.12% ± 0.08 (the std in percentage points); "-" before any run finished."""
    if stats is None:
        return "-"
    spread = f" ± {100 * stats.std:.2f}" if stats.std is not None else ""
    return percent(stats.mean) + spread


def sweep_view(sweep: Sweep, results: Sequence[RunResult], scrambles: bool) -> Group:
    """A heading (the sweep, how far it got) over the leaderboard table."""
    done = sum(r.status == "completed" for r in results)
    failed = sum(r.status == "failed" for r in results)
    heading = (
        f"sweep {safe(sweep.sweep_id)} ({safe(sweep.experiment)}): {done}/{len(results)} runs "
        f"completed" + (f", {failed} failed" if failed else "") + f", seeds {_seeds(sweep.seeds)}"
    )
    return Group(Text.from_markup(heading), leaderboard_table(leaderboard(results), scrambles))


def leaderboard_table(rows: Sequence[ConfigStats], scrambles: bool) -> Table:
    """Best mean test accuracy first; test accuracy is mean ± sample std over the seeds."""
    table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0))
    columns = ["#", "settings", "runs", "test acc", "min", "max"]
    columns += ["scrambled acc"] if scrambles else []
    columns += ["best acc", "img/s"]
    for column in columns:
        table.add_column(column, justify="left" if column == "settings" else "right")
    for row in ranked(rows):
        test = row.test_acc
        cells = [
            f"c{row.config}", safe(params_text(row.params)), f"{row.finished}/{row.n}",
            mean_std(test), percent(test.low if test else None),
            percent(test.high if test else None),
        ]  # fmt: skip
        cells += [mean_std(row.scrambled_test_acc)] if scrambles else []
        speed = f"{row.images_per_s_mean:,.0f}" if row.images_per_s_mean is not None else "-"
        cells += [percent(row.best_acc_mean), speed]
        table.add_row(*cells)
    return table


def _seeds(seeds: Sequence[int]) -> str:
    """0-4 for a range, else the list."""
    if len(seeds) > 2 and list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(str(s) for s in seeds)
