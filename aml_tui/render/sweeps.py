"""The leaderboard of `aml-tui sweep show`: one row per combination, best mean accuracy first.

Its own module, like the runs listing: it needs no torch, so `sweep show` stays quick.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from aml_tui.core.runstore.leaderboard import ConfigStats, RunResult, Stats, leaderboard, ranked
from aml_tui.core.runstore.sweep_state import SweepProgress
from aml_tui.core.runstore.sweeps import Sweep
from aml_tui.render.text import percent, safe


def params_text(params: Mapping[str, Any]) -> str:
    """A combination's settings as `name=value` pairs ("seeds only" for a sweep of seeds),
    a number to four significant figures (a search's lr 0.0020229232366643824 is 0.002023)."""
    shown = (f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
             for key, value in params.items())  # fmt: skip
    return " ".join(shown) or "(seeds only)"


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
    return Group(Text.from_markup(heading), FittedLeaderboard(leaderboard(results), scrambles))


class FittedLeaderboard:
    """The leaderboard at the console's width: under WIDE_COLUMNS columns (an 80-column
    terminal over SSH) without min, max and img/s, as the Sweep screen's table, so the
    accuracies are never cropped (`--json` has them all)."""

    def __init__(self, rows: Sequence[ConfigStats], scrambles: bool) -> None:
        self.rows, self.scrambles = rows, scrambles

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield leaderboard_table(self.rows, self.scrambles, options.max_width >= WIDE_COLUMNS)


WIDE_COLUMNS = 100
"""Room for every column of the leaderboard, with settings of a typical search."""


def leaderboard_columns(scrambles: bool, wide: bool = True) -> list[str]:
    """The leaderboard's columns wherever it is shown (`sweep show`, a sweep's report, the
    Sweep screen); the screen's narrow table leaves out min, max and img/s (`wide=False`)."""
    columns = ["#", "settings", "runs", "test acc"] + (["min", "max"] if wide else [])
    columns += ["scrambled acc"] if scrambles else []
    return [*columns, "best acc"] + (["img/s"] if wide else [])


def leaderboard_cells(row: ConfigStats, columns: Sequence[str]) -> list[str]:
    """One combination's cells under `columns`, as plain text: settings come from the sweep's
    record, so a front end that reads markup escapes them."""
    test = row.test_acc
    speed = row.images_per_s_mean
    value = {
        "#": f"c{row.config}",
        "settings": params_text(row.params),
        "runs": f"{row.finished}/{row.n}",
        "test acc": mean_std(test),
        "min": percent(test.low if test else None),
        "max": percent(test.high if test else None),
        "scrambled acc": mean_std(row.scrambled_test_acc),
        "best acc": percent(row.best_acc_mean),
        "img/s": f"{speed:,.0f}" if speed is not None else "-",
    }
    return [value[column] for column in columns]


def leaderboard_table(rows: Sequence[ConfigStats], scrambles: bool, wide: bool = True) -> Table:
    """Best mean test accuracy first (scrambled, for runs trained on scrambled images); each
    accuracy is the mean ± sample std over the seeds."""
    table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0))
    columns = leaderboard_columns(scrambles, wide)
    for column in columns:
        if column == "settings":  # its longest setting whole: the figures wrap instead
            widest = max((len(p) for r in rows for p in params_text(r.params).split()), default=8)
            table.add_column(column, min_width=widest)
        else:
            table.add_column(column, justify="right")
    for row in ranked(rows):
        table.add_row(*(safe(cell) for cell in leaderboard_cells(row, columns)))
    return table


def _seeds(seeds: Sequence[int]) -> str:
    """0-4 for a range, else the list."""
    if len(seeds) > 2 and list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(str(s) for s in seeds)


def best_cell(progress: SweepProgress) -> str:
    """The best combination so far and its mean test accuracy ("best c2 99.12% ± 0.08"),
    as Home and `sweep list` show it; "-" before any run finished. A search's best trial
    is the one of best validation accuracy ("best t7 val 91.20%")."""
    if progress.sweep.search is not None:
        done = [row for row in progress.trials if row.status == "completed" and row.val_acc]
        top_trial = max(done, key=lambda row: row.val_acc or 0.0, default=None)
        return f"best t{top_trial.number} val {percent(top_trial.val_acc)}" if top_trial else "-"
    top = next(iter(progress.ranked), None)
    if top is None or top.own_acc is None:
        return "-"
    return (
        f"best c{top.config} {'scrambled ' if top.trained_scrambled else ''}{mean_std(top.own_acc)}"
    )


def sweeps_table(listed: Sequence[SweepProgress]) -> Table:
    """`aml-tui sweep list`: one row per sweep, newest first, as Home lists them. Ids,
    experiments and settings come from the sweeps' records: shown through `safe`."""
    table = Table(show_edge=False, pad_edge=False)
    for column in ("sweep", "experiment", "runs", "best"):
        table.add_column(column, overflow="fold")
    for progress in listed:
        table.add_row(safe(progress.sweep.sweep_id), safe(progress.sweep.experiment),
                      safe(progress.summary()), safe(best_cell(progress)))  # fmt: skip
    if not listed:
        table.add_row("no sweeps yet", "", "", "")
    return table
