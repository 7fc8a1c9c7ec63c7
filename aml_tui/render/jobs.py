"""The jobs of a Slurm sweep, one row per run: its job id, Slurm state and node (no torch).

Shown under the leaderboard by `aml-tui sweep show`; the states are those the sweep's driver
last saw (core: sweep_jobs), so a sweep whose driver is gone shows them as it left them.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from aml_tui.core.runstore.leaderboard import RunResult
from aml_tui.core.runstore.sweep_jobs import SweepLaunch
from aml_tui.render.text import safe

JOB_COLUMNS = ("run", "status", "job", "Slurm state", "node")


def job_cells(result: RunResult, launch: SweepLaunch) -> list[str]:
    """One run's cells under JOB_COLUMNS, plain text ("-" for a run never submitted)."""
    jobs = launch.jobs.get(result.run.run_id)
    if jobs is None:
        return [result.run.run_id, result.status, "-", "-", "-"]
    earlier = f" (+{len(jobs.ids) - 1})" if len(jobs.ids) > 1 else ""
    return [result.run.run_id, result.status, jobs.job_id + earlier, jobs.state, jobs.node or "-"]


def jobs_table(results: Sequence[RunResult], launch: SweepLaunch) -> Table:
    table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0), title_justify="left",
                  title="Slurm jobs")  # fmt: skip
    for column in JOB_COLUMNS:
        table.add_column(column)
    for result in results:
        table.add_row(*(safe(cell) for cell in job_cells(result, launch)))
    return table
