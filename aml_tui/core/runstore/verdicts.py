"""A search's pruning, through two small files in each run folder: the run's report after an
epoch, and the sweep's verdict on it.

A run that a pruning search starts (PRUNING_ENV set) writes `search_report.json` (the epoch
and its validation accuracy) after every epoch but its last, then waits, polling, until
`search_verdict.json` names that epoch: `continue` trains the next one, `prune` ends the run
like a graceful stop (last.pt saved) as `pruned`. The sweep process is the only writer of
verdicts and reads nothing but the run folder, so it does not matter how, or on which
machine, the run's process was started: a shared filesystem is all the two need. Both files
are written atomically, so a reader never sees half of one.

No torch and no Optuna here: the waiting run imports this, and so does the sweep's driver.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from aml_tui.core.files import UnreadableText, read_regular, write_atomic

PRUNING_ENV = "AML_TUI_PRUNING"
"""Set in the environment of a run a pruning search starts: it waits for a verdict after
each epoch."""

REPORT_FILE = "search_report.json"
VERDICT_FILE = "search_verdict.json"

Verdict = Literal["continue", "prune"]

POLL_S = 0.1
"""How often a waiting run looks for its verdict."""

_MAX_BYTES = 4096


@dataclass(frozen=True)
class Report:
    """A run's report on one epoch: its validation accuracy (None: no validation split)."""

    epoch: int
    value: float | None


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so a reader sees the old file or the whole new one."""
    data = text.encode()

    def write(handle: BinaryIO) -> None:
        handle.write(data)

    write_atomic(path, write)


def _read(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(read_regular(path, _MAX_BYTES))
    except (OSError, UnreadableText, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_report(run: Path, report: Report) -> None:
    text = json.dumps({"epoch": report.epoch, "value": report.value})
    write_text_atomic(Path(run) / REPORT_FILE, text)


def read_report(run: Path) -> Report | None:
    """The run's latest report, or None (none yet, or a file that is not one)."""
    data = _read(Path(run) / REPORT_FILE)
    if data is None:
        return None
    epoch, value = data.get("epoch"), data.get("value")
    if type(epoch) is not int or not (value is None or isinstance(value, int | float)):
        return None
    return Report(epoch, None if value is None else float(value))


def write_verdict(run: Path, epoch: int, verdict: Verdict) -> None:
    write_text_atomic(Path(run) / VERDICT_FILE, json.dumps({"epoch": epoch, "verdict": verdict}))


def read_verdict(run: Path) -> tuple[int, Verdict] | None:
    """The latest verdict (its epoch and what it says), or None."""
    data = _read(Path(run) / VERDICT_FILE)
    if data is None:
        return None
    epoch, verdict = data.get("epoch"), data.get("verdict")
    if type(epoch) is not int or verdict not in ("continue", "prune"):
        return None
    return epoch, verdict


def pruned(run: Path) -> bool:
    """Whether the sweep has pruned the run."""
    verdict = read_verdict(run)
    return verdict is not None and verdict[1] == "prune"


def await_verdict(run: Path, epoch: int, stop: threading.Event) -> Verdict | None:
    """Wait until the sweep gives its verdict on `epoch`; None when `stop` was set first (a
    stop signal: the run ends interrupted, and is resumed later)."""
    while not stop.is_set():
        verdict = read_verdict(run)
        if verdict is not None and verdict[0] >= epoch:
            return verdict[1]
        stop.wait(POLL_S)
    return None
