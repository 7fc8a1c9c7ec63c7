"""The commands on run folders as they lie on disk: `runs` lists them, `rm` deletes them,
and `sweep rm` deletes sweeps with their runs (cli.py adds it to `sweep`).

`rm` deletes a run as Home's Delete does (RunFolder.delete, the one home of the rule: the
run's claim is taken first, so a run a process trains is refused and none can start while
it goes); `sweep rm` through sweeps.delete_sweep, which takes the sweep's claim and every
run's before anything goes. Nothing here imports torch, so they are quick.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from aml_tui.cli_common import CheckpointsOption, exit_with, print_error, user_errors
from aml_tui.core.runstore.listing import list_runs, resolve_run
from aml_tui.core.runstore.runs import RunFolder, printable_name
from aml_tui.core.runstore.sweeps import delete_sweep, sweep_membership
from aml_tui.errors import AmlTuiError


@user_errors
def runs(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the runs as a JSON list.")
    ] = False,
    checkpoints: CheckpointsOption = "checkpoints",
) -> None:
    """List the runs under --checkpoints, newest first, with their size on disk."""
    found = list_runs(Path(checkpoints))
    sweeps = sweep_membership(Path(checkpoints))
    sizes = {run.run_id: RunFolder(run.path).disk_usage() for run in found}
    if json_output:
        listed = [
            {**run.to_json(), "sweep": sweeps.get(run.run_id), "bytes": sizes[run.run_id]}
            for run in found
        ]
        # standard JSON: to_json has no NaN or Infinity
        typer.echo(json.dumps(listed, allow_nan=False))
        return
    if not found:
        missing = "" if Path(checkpoints).is_dir() else " (the folder does not exist)"
        typer.echo(f"no runs under {checkpoints}{missing}")
        return
    from rich.console import Console  # lazy: --json needs no rich

    from aml_tui.render.runs import runs_table  # lazy: --json needs no rich

    console = Console(highlight=False)
    if not console.is_terminal:  # a pipe or a file: whole lines, not the 80-column default
        console = Console(highlight=False, width=max(console.width, 200))
    console.print(runs_table(found, console.width, sweeps, sizes))


@user_errors
def rm(
    run_refs: Annotated[
        list[str],
        typer.Argument(metavar="RUN...", help="Run ids under --checkpoints, run folders, or last."),
    ],
    checkpoints: CheckpointsOption = "checkpoints",
) -> None:
    """Delete runs, as Home's Delete does: a run a process trains is refused. One line per
    run deleted or refused; exit 2 when any was refused."""

    def delete(ref: str) -> str:
        folder = resolve_run(Path(checkpoints), ref)
        folder.delete()
        return f"deleted {printable_name(folder.run_id)}"

    delete_each(run_refs, delete)


@user_errors
def sweep_rm(
    sweep_ids: Annotated[
        list[str],
        typer.Argument(metavar="SWEEP...", help="Sweep ids under --checkpoints, or last."),
    ],
    checkpoints: CheckpointsOption = "checkpoints",
) -> None:
    """Delete sweeps with their runs' folders (refused while a process drives or trains one).

    A sweep a process carries on, or one of whose runs a process trains, is refused whole.
    One line per sweep deleted or refused; exit 2 when any was refused."""

    def delete(ref: str) -> str:
        return f"deleted sweep {printable_name(delete_sweep(Path(checkpoints), ref))} and its runs"

    delete_each(sweep_ids, delete)


def delete_each(refs: list[str], delete: Callable[[str], str]) -> None:
    """`delete` each of `refs`, a line for each deleted (what `delete` says) or refused; exit 2
    when any was refused."""
    failed = 0
    for ref in refs:
        try:
            typer.echo(delete(ref))
        except AmlTuiError as error:
            print_error(f"not deleted: {error}")
            failed += 1
    exit_with(2 if failed else 0)
