"""Sweep records are shared files: nothing in one can hang, blow up or misdirect aml-tui.

Special files at `.sweeps/<id>.toml` (a FIFO, a symlink to /dev/zero) never hang `runs`,
`runs --json`, `sweep show` or Home, and are listed as unreadable; sizes have bounds (seeds,
grids, --jobs), checked before anything is written, and a listing never expands a grid;
every field of a record is checked on every read (an id of `../../..` goes nowhere).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from aml_tui.core.runstore import sweep_grid
from aml_tui.core.runstore.sweep_state import list_sweep_progress
from aml_tui.core.runstore.sweeps import (
    MAX_JOBS,
    MAX_RECORD_BYTES,
    MAX_RUNS,
    Sweep,
    create_sweep,
    plan_sweep,
    read_sweep,
    scan_sweeps,
    sweep_membership,
    sweep_path,
)
from aml_tui.errors import ConfigError

SPECIAL = {"fifo": lambda path: os.mkfifo(path), "zero": lambda path: path.symlink_to("/dev/zero")}


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real command line in its own process, with a deadline: a hang fails the test."""
    return subprocess.run(
        [sys.executable, "-m", "aml_tui", *args], capture_output=True, text=True, timeout=60,
        cwd=cwd,
    )  # fmt: skip


def one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """An exit 2 with one line on stderr holding `words`, and no traceback."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def recorded(root: Path, name: str = "good", **grid: list[Any]) -> Sweep:
    return create_sweep(root, plan_sweep("fashion-cnn", {"epochs": 1}, grid, [0, 1], name=name))


def edit(root: Path, sweep_id: str, **changes: Any) -> None:
    """Hand-edit a record: set (or with None, drop) top-level fields."""
    path = sweep_path(root, sweep_id)
    data = tomllib.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(tomli_w.dumps(data))


# --- special files ----------------------------------------------------------------------------


@pytest.mark.system
def test_special_files_as_records_never_hang_and_are_unreadable(tmp_path: Path) -> None:
    root = tmp_path / "ck"
    good = recorded(root, lr=[0.1, 0.2])
    (root / "good-c1-s0").mkdir()
    (root / "good-c1-s0" / "config.toml").write_text(
        'experiment = "fashion-cnn"\nepochs = 1\nbatch_size = 64\nlr = 0.1\n'
    )
    for name, make in SPECIAL.items():
        make(sweep_path(root, name))
    listed = cli("runs", "--checkpoints", str(root))
    assert listed.returncode == 0 and "good-c1-s0" in listed.stdout, listed.stderr
    as_json = cli("runs", "--json", "--checkpoints", str(root))
    assert as_json.returncode == 0 and '"sweep": "good"' in as_json.stdout, as_json.stderr
    for name, kind in (("fifo", "a FIFO"), ("zero", "a character device")):
        shown = cli("sweep", "show", name, "--checkpoints", str(root))
        one_line_error(shown, f"{name}.toml is {kind}, not a file")
        one_line_error(cli("sweep", "--resume", name, "--no-ui", "--checkpoints", str(root)), kind)
    assert cli("sweep", "show", "good", "--checkpoints", str(root)).returncode == 0
    assert cli("sweep", "show", "last", "--checkpoints", str(root)).returncode == 0
    scanned = scan_sweeps(root)
    assert scanned[0] == good
    assert {s.sweep_id: "not a file" in getattr(s, "problem", "") for s in scanned[1:]} == {
        "fifo": True, "zero": True,
    }  # fmt: skip


def test_home_lists_a_special_record_as_unreadable(tmp_path: Path) -> None:
    """Home reads sweeps in a worker: a record that blocked it would leave Home blank and
    deaf to Ctrl+Q. The listing Home posts returns, with the record as unreadable."""
    root = tmp_path / "ck"
    recorded(root)
    os.mkfifo(sweep_path(root, "pipe"))
    result: list[Any] = []
    reader = threading.Thread(target=lambda: result.append(list_sweep_progress(root)), daemon=True)
    reader.start()
    reader.join(timeout=20)
    assert result, "listing the sweeps hung on a FIFO"
    summaries = {p.sweep.sweep_id: p.summary() for p in result[0]}
    assert summaries["good"] == "0/2 completed"
    assert summaries["pipe"].startswith("unreadable: sweep record") and "FIFO" in summaries["pipe"]


async def test_home_shows_the_unreadable_record(tmp_path: Path) -> None:
    from textual.widgets import DataTable

    from aml_tui.tui.app import create_app

    root = tmp_path / "ck"
    recorded(root)
    sweep_path(root, "zero").symlink_to("/dev/zero")
    app = create_app(root)
    async with app.run_test(size=(120, 30)) as pilot:
        home = app.screen
        deadline = time.monotonic() + 30
        while not getattr(home, "sweeps", None):
            assert time.monotonic() < deadline, "Home never listed the sweeps"
            await pilot.pause(0.05)
        table = home.query_one("#sweeps", DataTable)
        rows = {str(table.get_row_at(i)[0]): str(table.get_row_at(i)[2]) for i in range(2)}
        await pilot.press("ctrl+q")
    assert rows["good"] == "0/2 completed"
    assert rows["zero"].startswith("unreadable:") and "character device" in rows["zero"]


def test_a_record_larger_than_the_cap_is_not_read(tmp_path: Path) -> None:
    root = tmp_path / "ck"
    recorded(root)
    path = sweep_path(root, "good")
    with path.open("a") as handle:
        handle.write("#" * MAX_RECORD_BYTES + "\n")
    with pytest.raises(ConfigError, match="more than the"):
        read_sweep(root, "good")


# --- sizes with bounds ------------------------------------------------------------------------


@pytest.mark.system
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--seeds", "0-4294967295"], ["--seeds", f"more than {MAX_RUNS} seeds"]),
        (["--seeds", "0-1000000"], ["--seeds", f"more than {MAX_RUNS} seeds"]),
        (["--seeds", "0-9", "--lr", ",".join(str((i + 1) / 1000) for i in range(101))],
         ["1,010 runs", f"more than the {MAX_RUNS}"]),
        (["--jobs", "10000000000"], ["--jobs", f"1 to {MAX_JOBS}"]),
        (["--jobs", "0"], ["--jobs"]),
        (["--seeds", "²"], ["--seeds", "is not a seed"]),  # a digit int() cannot read
        (["--seeds", "０-３"], ["--seeds", "is not a seed"]),  # fullwidth digits
        (["--seeds", "0-" + "9" * 5000], ["--seeds", "is not a seed"]),  # past int()'s limit
    ],
)  # fmt: skip
def test_sizes_out_of_bounds_are_one_line_and_write_nothing(
    tmp_path: Path, args: list[str], words: list[str]
) -> None:
    result = cli("sweep", "fashion-cnn", *args, "--no-ui", cwd=tmp_path)
    one_line_error(result, *words)
    assert list(tmp_path.iterdir()) == []  # no checkpoints folder, no record


def test_a_record_whose_grid_is_over_the_cap_is_refused_without_expanding_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 27 KB hand edit that makes a billion runs: every reader counts and refuses it (or,
    listing runs, leaves it out); none makes a single combination."""
    root = tmp_path / "ck"
    recorded(root, lr=[0.1, 0.2])
    grid = {"lr": [(i + 1) / 1e4 for i in range(1000)], "batch_size": list(range(1, 1001)),
            "epochs": list(range(1, 1001))}  # fmt: skip
    edit(root, "good", grid=grid, runs=None, options={"checkpoints": str(root)})
    (root / "good-c1-s0").mkdir()

    def expanded(self: Sweep) -> list[dict[str, Any]]:
        raise AssertionError("a grid was expanded")

    monkeypatch.setattr(sweep_grid.Sweep, "combinations", property(expanded))
    assert sweep_membership(root) == {}
    assert "unreadable: " in list_sweep_progress(root)[0].summary()
    with pytest.raises(ConfigError, match=r"grid makes 2,000,000,000 runs .* more than the 1000"):
        read_sweep(root, "good")


def test_a_record_of_max_runs_holds_values_not_runs(tmp_path: Path) -> None:
    """Listing cost follows the record's size and the run folders, never the grid: a sweep
    of MAX_RUNS runs (10 × 10 × 10) writes a record of its values (not of its runs), and the
    `runs` sweep column comes from run ids (the test above fails if any reader expands a
    grid). No timing here: the machines are shared; the closing note gives the ratio."""
    grid = {"lr": [(i + 1) / 100 for i in range(10)], "batch_size": list(range(1, 11)),
            "epochs": list(range(1, 11))}  # fmt: skip
    root = tmp_path / "big"
    assert create_sweep(root, plan_sweep("fashion-cnn", {}, grid, [0], name="s")).count == MAX_RUNS
    assert (root / ".sweeps" / "s.toml").stat().st_size < 2048
    for run_id in ("s-c1-s0", "s-c999-s0"):
        (root / run_id).mkdir()
    assert sweep_membership(root) == {"s-c1-s0": "s", "s-c999-s0": "s"}


# --- every field checked on every read --------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": "../../.."}, "id must be the file's name"),
        ({"id": "../../..", "seeds": [], "runs": []}, "id must be the file's name"),
        ({"seeds": [], "runs": []}, "seeds must be a list of 1 to"),
        ({"seeds": [0, 0]}, "seeds repeats a seed"),
        ({"seeds": [-1, 1]}, "seeds must be whole numbers"),
        ({"seeds": [True, 1]}, "seeds must be whole numbers"),
        ({"experiment": "rm -rf"}, "experiment must be one of"),
        ({"created": 5}, "created must be a time"),
        ({"grid": {"lr": [0.1, "x"]}}, "grid.lr must hold only numbers"),
        ({"grid": {"device": ["cpu", "cuda"]}}, "grid.device cannot be swept"),
        ({"grid": {"lr": [0.1]}}, "grid.lr must be a list of 2 to"),
        ({"grid": {"batch_size": [8, 0]}}, "grid.batch_size must be at least 1, got 0"),
        ({"options": {"epochs": 1}}, "options.checkpoints is missing"),
        ({"options": {"checkpoints": 3}}, "options.checkpoints must be text"),
        ({"options": {"checkpoints": "/x", "name": "y"}}, "options.name is not a setting"),
        ({"options": {"checkpoints": "/x", "lr": 0.1}}, "options.lr is in grid too"),
        ({"runs": [{"id": "x"}]}, "runs must list the 4 runs"),
        ({"runs": [{"id": "x"}] * 4}, "runs is not the list its grid and seeds make"),
        ({"extra": 1}, "extra is not a field of a sweep record"),
        ({"options": {"checkpoints": "/x\0y"}}, "options.checkpoints holds a NUL byte"),
        ({"options": {"checkpoints": "/x", "data_dir": "/d\0x"}}, "options.data_dir holds a NUL"),
        ({"options": {"checkpoints": "rel/dir"}}, "options.checkpoints must be an absolute path"),
        ({"options": {"checkpoints": ""}}, "options.checkpoints must be an absolute path"),
    ],
)
def test_every_field_of_a_record_is_checked_on_every_read(
    tmp_path: Path, changes: dict[str, Any], field: str
) -> None:
    root = tmp_path / "ck"
    recorded(root, lr=[0.1, 0.2])
    edit(root, "good", **changes)
    with pytest.raises(ConfigError) as caught:
        read_sweep(root, "good")
    message = str(caught.value)
    assert message.startswith(f"sweep record {sweep_path(root, 'good')}: ") and field in message
    assert len(message.splitlines()) == 1
    assert [s.sweep_id for s in scan_sweeps(root)] == ["good"]  # listed, as unreadable


@pytest.mark.system
def test_a_record_with_a_hostile_id_creates_nothing_outside(tmp_path: Path) -> None:
    """A hand edit with no runs and an id of ../../.. used to skip the name check, and
    --resume then made folders outside --checkpoints."""
    work = tmp_path / "a" / "b" / "c"
    root = work / "ck"
    recorded(root)
    edit(root, "good", id="../../..", seeds=[], runs=[])
    before = sorted(tmp_path.rglob("*"))
    result = cli("sweep", "--resume", "good", "--no-ui", "--checkpoints", str(root))
    one_line_error(result, "id must be the file's name")
    one_line_error(cli("sweep", "--resume", "../../x", "--no-ui", "--checkpoints", str(root)))
    assert sorted(tmp_path.rglob("*")) == before
