"""A search's trials as `sweep show` and `sweep --no-ui` print them: settings, status and
validation accuracy (what the search ranks by) with test accuracy beside, best first, and
one line per run as it ends. No torch.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console, RenderableType
from rich.table import Table

from aml_tui.core.files import UnreadableText, read_regular
from aml_tui.core.runstore.leaderboard import RunResult, leaderboard
from aml_tui.core.runstore.search_trials import TrialRow, best_so_far, ranked_trials, search_trials
from aml_tui.core.runstore.sweeps import Sweep, scrambles
from aml_tui.render.sweeps import FittedLeaderboard, params_text
from aml_tui.render.text import percent, safe

TRIAL_COLUMNS = ("trial", "status", "val acc", "test acc", "epochs", "settings")


def trial_columns(sweep: Sweep) -> tuple[str, ...]:
    """TRIAL_COLUMNS, the test column named "scrambled acc" when every trial trains on
    scrambled images (its test accuracy is the scrambled test set's, see TrialRow)."""
    chosen = sweep.combinations if sweep.chosen else [{}]
    if not all(sweep.trains_scrambled(params) for params in chosen):
        return TRIAL_COLUMNS
    return tuple("scrambled acc" if column == "test acc" else column for column in TRIAL_COLUMNS)


def trial_cells(row: TrialRow) -> list[str]:
    """One trial's cells under TRIAL_COLUMNS, plain text (settings come from the record)."""
    return [f"t{row.number}", row.status, percent(row.val_acc), percent(row.test_acc),
            str(row.epochs), params_text(_rounded(row.params))]  # fmt: skip


def _rounded(params: dict[str, object]) -> dict[str, object]:
    return {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in params.items()}


def trials_table(rows: Sequence[TrialRow], columns: Sequence[str] = TRIAL_COLUMNS) -> Table:
    """Completed trials best first (by validation accuracy), then running and pruned ones."""
    table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0))
    for column in columns:
        table.add_column(column, justify="left" if column in ("settings", "status") else "right")
    for row in ranked_trials(rows):
        table.add_row(*(safe(cell) for cell in trial_cells(row)))
    return table


def search_heading(sweep: Sweep, rows: Sequence[TrialRow]) -> str:
    """search ID (experiment, tpe, prune asha): 12/40 trials finished (9 completed, 3
    pruned), best val 91.20% at trial 7."""
    assert sweep.search is not None
    counts = {s: sum(r.status == s for r in rows) for s in ("completed", "pruned", "failed")}
    curve = best_so_far(rows)
    best = f", best val {percent(curve[-1][1])}" if curve else ""
    failed = f", {counts['failed']} failed" if counts["failed"] else ""
    return (
        f"search {safe(sweep.sweep_id)} ({safe(sweep.experiment)}, {sweep.search.method}, prune "
        f"{sweep.search.prune}): {counts['completed'] + counts['pruned']}/{sweep.search.trials} "
        f"trials finished ({counts['completed']} completed, {counts['pruned']} pruned{failed})"
        f"{best}"
    )


def search_view(root: Path, sweep: Sweep, results: Sequence[RunResult]) -> list[RenderableType]:
    """What `sweep show` prints for a search: the heading over the trials."""
    rows = search_trials(root, results)
    return [search_heading(sweep, rows), trials_table(rows, trial_columns(sweep))]


def leaderboard_lines(root: Path, sweep: Sweep, results: Sequence[RunResult]) -> list[str]:
    """The leaderboard (a grid) or the trials (a search) as plain lines, for the end of
    `sweep --no-ui`."""
    parts: list[RenderableType]
    if sweep.search is not None:
        parts = search_view(root, sweep, results)
    else:
        parts = [FittedLeaderboard(leaderboard(results), scrambles(sweep))]
    out = io.StringIO()
    width = shutil.get_terminal_size().columns  # COLUMNS, else the terminal's, else 80
    console = Console(file=out, width=width, color_system=None, highlight=False)
    for part in parts:
        console.print(part)
    return out.getvalue().rstrip("\n").splitlines()


def run_result(run: Path) -> tuple[str, str]:
    """How a run ended, from its summary.json, for the line `sweep --no-ui` prints: the
    verb (done, pruned) and its figures ("  test 91.20%, best val 90.10%")."""
    try:
        summary = json.loads(read_regular(Path(run) / "summary.json", 1 << 20))
    except (OSError, UnreadableText, ValueError):
        return "done", ""
    if not isinstance(summary, dict):
        return "done", ""
    figures = []
    test, best = summary.get("selected_test_acc"), summary.get("best_acc")
    split = str(summary.get("selection_metric", "test_acc")).removesuffix("_acc")
    if isinstance(best, float):
        figures.append(f"best {split} {percent(best)}")
    if isinstance(test, float):
        figures.append(f"test {percent(test)}")
    epochs = summary.get("epochs_completed")
    if summary.get("status") == "pruned":
        figures.append(f"after epoch {epochs}")
    verb = "pruned" if summary.get("status") == "pruned" else "done"
    return verb, (": " + ", ".join(figures)) if figures else ""
