"""Deleting from Home, asked first: a run with its checkpoints (`x` on a run), or a sweep
with its runs' folders (`x` on a sweep, in the sweeps list or on its group row).

The core refuses what trains or is carried on, in one line, at the moment it deletes
(RunFolder.delete, sweeps.delete_sweep: the claims are taken first): the question shown is
as old as the list, so a run that started since is refused then, and the list is read again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.screen import Screen

from aml_tui.core.runstore.listing import RunInfo
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.runstore.sweep_state import SweepProgress
from aml_tui.core.runstore.sweeps import delete_sweep
from aml_tui.errors import AmlTuiError
from aml_tui.render.text import safe
from aml_tui.tui.access import notify_plain
from aml_tui.tui.screens.confirm import ConfirmScreen

Deleted = Callable[[str | None], None]
"""Told the id of what went, None when the core refused: the screen reads the list again."""


def ask_to_delete_run(screen: Screen[None], info: RunInfo, deleted: Deleted) -> None:
    """Ask, then delete the run's folder; a run that trains is refused without asking."""
    if info.status == "running":
        notify_plain(screen, f"run {info.run_id} is running: stop it before deleting it")
        return
    question = (
        f"Delete run {info.run_id} ({info.status}, {info.epochs_completed}/{info.epochs} "
        "epochs) with its checkpoints? This cannot be undone."
    )
    _ask(screen, question, lambda: RunFolder(info.path).delete(), info.run_id, deleted)


def ask_to_delete_sweep(
    screen: Screen[None], root: Path, progress: SweepProgress, deleted: Deleted
) -> None:
    """Ask, then delete the sweep: its record, logs and every run's folder."""
    sweep = progress.sweep
    kind = "search" if sweep.search is not None else "sweep"
    folders = sum(r.status != "pending" for r in progress.results)
    if any(r.status == "running" for r in progress.results):
        notify_plain(
            screen, f"{kind} {sweep.sweep_id} is training: stop it (s on its screen) first"
        )
        return
    question = (
        f"Delete {kind} {sweep.sweep_id} ({sweep.experiment}) with the folders and checkpoints "
        f"of its {folders} run{'s' if folders != 1 else ''}? This cannot be undone."
    )
    _ask(screen, question, lambda: delete_sweep(root, sweep.sweep_id), sweep.sweep_id, deleted)


def _ask(
    screen: Screen[None], question: str, delete: Callable[[], object], what: str, deleted: Deleted
) -> None:
    def answered(yes: bool | None) -> None:
        if not yes:
            return
        try:
            delete()
        except AmlTuiError as error:  # trained meanwhile, or not ours to delete
            notify_plain(screen, str(error), title="Not deleted", severity="error")
            deleted(None)
        else:
            notify_plain(screen, f"deleted {what}")
            deleted(what)

    confirm = ConfirmScreen(safe(question, markup=False), yes="Delete", no="Keep")
    screen.app.push_screen(confirm, answered)
