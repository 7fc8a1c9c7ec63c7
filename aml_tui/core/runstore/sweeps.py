"""Sweeps: many ordinary runs over a grid of settings × seeds (sweep_grid.py plans them), the
record that keeps each, and carrying one on.

A sweep is recorded in `<checkpoints>/.sweeps/<sweep-id>.toml` (a dot name is never a run
id, so run listings are unaffected). Each combination × seed is an ordinary run folder named
`<sweep-id>-c<k>-s<seed>`, whose config.toml [run] table records `sweep`. Where a sweep
stands is read from its runs' summary.json files; nothing else is kept.

Records are shared files like run folders: they are read as run files are (regular files
only, size-capped), every field is checked on every read, and one that cannot be read is
listed as such. One process drives a sweep at a time: it holds the sweep's claim
(`.sweeps/<sweep-id>/owner.lock`, see claim.py) for as long as it carries the sweep on.

No torch here: planning, status and statistics are plain Python, so `sweep show` is quick.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, Literal

import tomli_w

from aml_tui.core.experiments import get_experiment, is_known
from aml_tui.core.files import write_atomic
from aml_tui.core.runstore.claim import LOCK_NAME, OWNER_NAME, RunClaim, claim_sweep
from aml_tui.core.runstore.listing import resume_refusal, run_status
from aml_tui.core.runstore.runs import RunFolder, printable_name

# Re-exported (`X as X`): the front ends import sweeps from here.
from aml_tui.core.runstore.sweep_grid import BOOL_WORDS as BOOL_WORDS
from aml_tui.core.runstore.sweep_grid import MAX_JOBS as MAX_JOBS
from aml_tui.core.runstore.sweep_grid import MAX_RUNS as MAX_RUNS
from aml_tui.core.runstore.sweep_grid import SWEEPABLE as SWEEPABLE
from aml_tui.core.runstore.sweep_grid import Sweep as Sweep
from aml_tui.core.runstore.sweep_grid import SweepRun as SweepRun
from aml_tui.core.runstore.sweep_grid import check_jobs as check_jobs
from aml_tui.core.runstore.sweep_grid import parse_seeds as parse_seeds
from aml_tui.core.runstore.sweep_grid import parse_values as parse_values
from aml_tui.core.runstore.sweep_grid import plan_sweep as plan_sweep
from aml_tui.core.runstore.sweep_record import MAX_RECORD_BYTES as MAX_RECORD_BYTES
from aml_tui.core.runstore.sweep_record import load_record
from aml_tui.errors import AmlTuiError, CheckpointError, ConfigError, RunBusyError, first_line

SWEEP_ENV = "AML_TUI_SWEEP"
"""Set in the environment of a run a sweep starts: the sweep id its config.toml records."""

THREADS_ENV = "AML_TUI_THREADS"
"""Set in the environment of a run a sweep starts on the CPU: its share of the cores."""

SWEEPS_FOLDER = ".sweeps"
"""Folder under --checkpoints that holds one `<sweep-id>.toml` per sweep."""

_RUN_ID = re.compile(r"(.+)-c([1-9][0-9]*)-s(0|[1-9][0-9]*)")
"""A sweep run's id: the sweep's id, its combination and its seed (see sweep_grid.run_id)."""

_ID = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]*")
"""What a sweep id may be (the letters of a run id, not starting with a dot)."""


def sweep_path(root: Path, sweep_id: str) -> Path:
    return Path(root) / SWEEPS_FOLDER / f"{sweep_id}.toml"


def create_sweep(root: Path, sweep: Sweep) -> Sweep:
    """Record a new sweep, its runs' folder being `root` (absolute); refused when it, or a
    folder one of its runs would use, exists. Returns the sweep as recorded. The sweep's
    claim is held while it is written, so of two processes that create it at once, one
    does and the other is refused."""
    recorded = replace(sweep, options={**sweep.options, "checkpoints": os.path.abspath(root)})
    path = sweep_path(root, sweep.sweep_id)
    if os.path.lexists(path):
        raise _exists(root, sweep.sweep_id)
    taken = [run.run_id for run in recorded.runs if os.path.lexists(Path(root) / run.run_id)]
    if taken:
        raise CheckpointError(f"run {taken[0]} already exists in {root}: choose another --name")
    text = tomli_w.dumps(recorded.to_dict()).encode()
    if len(text) > MAX_RECORD_BYTES:
        raise ConfigError(
            f"sweep {sweep.sweep_id}'s record would be {len(text):,} bytes, more than the "
            f"{MAX_RECORD_BYTES:,} a record may have: shorten its values, or make fewer runs"
        )

    def write(handle: BinaryIO) -> None:
        handle.write(text)

    claim = claim_driver(root, sweep.sweep_id)
    try:
        if os.path.lexists(path):  # made meanwhile by a process that has given its claim back
            raise _exists(root, sweep.sweep_id)
        write_atomic(path, write)
    finally:
        claim.release()
    return recorded


def _exists(root: Path, sweep_id: str) -> CheckpointError:
    return CheckpointError(
        f"sweep {sweep_id} already exists in {root}: choose another --name, or "
        f"carry it on with 'aml-tui sweep --resume {sweep_id} --no-ui'"
    )


def claim_driver(root: Path, sweep_id: str) -> RunClaim:
    """Claim the driving of sweep `sweep_id` for this process: SweepBusyError, naming the
    holder, when another process carries it on (or is creating it)."""
    folder = Path(root) / SWEEPS_FOLDER / sweep_id
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CheckpointError(
            f"cannot create {printable_name(str(folder))} ({error.strerror}): pass "
            "--checkpoints DIR with a writable folder"
        ) from None
    return claim_sweep(folder, sweep_id)


def is_sweep_id(text: str) -> bool:
    """Whether `text` could name a sweep record (never a path out of .sweeps)."""
    return _ID.fullmatch(text) is not None


def read_sweep(root: Path, sweep_id: str) -> Sweep:
    """The sweep recorded under `root` (`last`: the newest), every field and every run's
    configuration checked; a missing or broken record is a one-line error."""
    if not is_sweep_id(sweep_id):
        raise ConfigError(
            f"no sweep {sweep_id[:60]!r} under {root}: a sweep id is letters, digits, '-', "
            "'_' and '.' (aml-tui runs shows them in its sweep column)"
        )
    path = sweep_path(root, sweep_id)
    if sweep_id == "last" and not os.path.lexists(path):
        listed = scan_sweeps(root)
        first = listed[0] if listed else None
        if isinstance(first, Sweep):
            return first
        if first is not None:  # only records that cannot be read
            raise ConfigError(f"no readable sweep under {root}: {first.problem}")
        raise ConfigError(f"no sweeps under {root}: start one with aml-tui sweep EXPERIMENT")
    try:
        return load_record(path)
    except FileNotFoundError:
        known = ", ".join(s.sweep_id for s in list_sweeps(root)[:5]) or "none"
        raise ConfigError(
            f"no sweep {sweep_id!r} under {root} (sweeps there: {known}): check --checkpoints"
        ) from None


@dataclass(frozen=True)
class UnreadableSweep:
    """A sweep record that cannot be read: its id (the file's name) and why, in one line."""

    sweep_id: str
    problem: str


def _record_paths(root: Path) -> list[Path]:
    folder = Path(root) / SWEEPS_FOLDER
    try:
        return sorted(folder.glob("*.toml")) if folder.is_dir() else []
    except OSError:  # a folder that cannot be searched: no records to list
        return []


def scan_sweeps(root: Path) -> list[Sweep | UnreadableSweep]:
    """Every sweep record under `root`, read in full: the readable ones newest first, then
    the ones that cannot be read, with why. None of them can make the listing fail or hang."""
    sweeps: list[Sweep] = []
    unreadable: list[UnreadableSweep] = []
    for path in _record_paths(root):
        try:
            sweeps.append(load_record(path))
        except FileNotFoundError:  # deleted meanwhile
            continue
        except AmlTuiError as error:
            unreadable.append(UnreadableSweep(path.name.removesuffix(".toml"), first_line(error)))
    newest = sorted(sweeps, key=lambda s: (s.created, s.sweep_id), reverse=True)
    return [*newest, *unreadable]


def list_sweeps(root: Path) -> list[Sweep]:
    """Every readable sweep under `root`, newest first."""
    return [sweep for sweep in scan_sweeps(root) if isinstance(sweep, Sweep)]


def sweep_membership(root: Path) -> dict[str, str]:
    """Run id -> the id of the sweep it belongs to, for the run folders under `root`. Each
    record is read and its fields checked, but no grid is expanded: a run's id names its
    combination and seed, so the cost follows the folders and the records' sizes, never how
    many runs a grid makes. A record that cannot be read claims no run."""
    sweeps: dict[str, tuple[int, set[int]]] = {}
    for path in _record_paths(root):
        try:
            sweep = load_record(path, every_run=False)
        except (FileNotFoundError, AmlTuiError):
            continue
        sweeps[sweep.sweep_id] = (sweep.combination_count, set(sweep.seeds))
    try:
        names = [entry.name for entry in os.scandir(root)] if sweeps else []
    except OSError:
        return {}
    membership = {}
    for name in names:
        match = _RUN_ID.fullmatch(name)
        if match is None or match[1] not in sweeps:
            continue
        combinations, seeds = sweeps[match[1]]
        if int(match[2]) <= combinations and int(match[3]) in seeds:
            membership[name] = match[1]
    return membership


def location_problem(sweep: Sweep, root: Path) -> str | None:
    """None when the sweep's record names `root` (where it was found) as its runs' folder;
    else that it names another folder (a checkpoints folder moved or copied), in one line."""
    recorded = sweep.checkpoints
    if os.path.realpath(recorded) == os.path.realpath(root):
        return None
    try:
        if os.path.samefile(recorded, root):
            return None
    except OSError:
        pass
    return (
        f"sweep {sweep.sweep_id} records its runs in {printable_name(recorded)}, not in "
        f"{printable_name(os.path.abspath(root))} where its record is (was the folder moved?)"
    )


RunAction = Literal["start", "resume", "restart", "done", "running"]
"""What carrying a sweep on does with a run: start it (no folder yet), resume it from last.pt,
restart it (a folder with nothing saved: removed, then started), leave it (completed, or
failed: it would fail again; `aml-tui train --resume` retries it), or refuse (another
process trains it)."""


def run_action(folder: RunFolder) -> RunAction:
    if not folder.path.exists():
        return "start"
    if run_status(folder) == "failed":
        return "done"
    refusal = resume_refusal(folder)
    if refusal is None:
        return "resume"
    actions = {"running": "running", "completed": "done", "pruned": "done"}
    return actions.get(refusal, "restart")  # type: ignore[return-value]


def remove_unsaved(folder: RunFolder) -> bool:
    """Delete a run folder that has nothing saved (killed before its first checkpoint), so
    its run can start over. The run's claim is taken first (a run being trained is never
    deleted: RunBusyError), then, under the claim, the folder is checked once more: one that
    has a summary.json or a checkpoint now is kept, and False returned. A plan made before
    another process finished the run can so never delete it."""
    claim = folder.claim()
    try:
        kept = (folder.summary_path, folder.last_path, folder.best_path)
        if any(os.path.lexists(path) for path in kept):
            return False
        shutil.rmtree(folder.path)
    except OSError as error:
        where = printable_name(str(error.filename or folder.path))
        raise CheckpointError(
            f"could not delete run {printable_name(folder.run_id)} to start it over: {where} "
            f"({error.strerror}): fix the permissions, or delete the folder"
        ) from None
    finally:
        claim.release()
    return True


def scrambles(sweep: Sweep) -> bool:
    """Whether the sweep's runs measure scrambled accuracy too (its experiment does)."""
    known = is_known(sweep.experiment)  # one of the user's: never scrambled, and not loaded
    return known and get_experiment(sweep.experiment).scrambles


def delete_sweep(root: Path, sweep_id: str) -> str:
    """Delete sweep `sweep_id` (`last`: the newest) under `root`: its runs' folders, its
    record and its `.sweeps/<sweep-id>/` folder (logs, launch record); returns its id.

    Refused before anything goes while a process carries the sweep on (SweepBusyError) or
    trains one of its runs (RunBusyError naming the run): the sweep's claim and each run's
    are taken first and held while they go, so nothing can start one of them meanwhile. A
    folder that cannot be deleted is a CheckpointError naming it; the record goes last, so
    a sweep left half deleted is still listed and can be deleted again."""
    sweep = read_sweep(root, sweep_id)
    sweep_id = sweep.sweep_id
    driver = claim_driver(root, sweep_id)
    claims: list[tuple[RunFolder, RunClaim]] = []
    try:
        for run in sweep.runs:
            folder = RunFolder(Path(root) / run.run_id)
            if os.path.isdir(folder.path):
                try:
                    claims.append((folder, folder.claim()))
                except RunBusyError as error:
                    raise RunBusyError(f"sweep {sweep_id}'s {error}") from None
        while claims:
            folder, claim = claims.pop(0)
            folder.delete(claim)
        _remove_record(root, sweep_id)
    finally:
        for _, claim in claims:
            claim.release()
        driver.release()
    with contextlib.suppress(OSError):  # only the claim's files were left: gone with it
        os.rmdir(Path(root) / SWEEPS_FOLDER / sweep_id)
    return sweep_id


def _remove_record(root: Path, sweep_id: str) -> None:
    """The record, then what its `.sweeps/<sweep-id>/` folder holds but the claim's files."""
    folder = Path(root) / SWEEPS_FOLDER / sweep_id
    try:
        sweep_path(root, sweep_id).unlink(missing_ok=True)
        for entry in os.scandir(folder):
            if entry.name in (OWNER_NAME, LOCK_NAME):
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
    except OSError as error:
        where = printable_name(str(error.filename or folder))
        raise CheckpointError(
            f"could not delete sweep {sweep_id}'s record: {where} ({error.strerror}): fix "
            "the permissions, then delete it again"
        ) from None
