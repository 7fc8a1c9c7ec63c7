"""`aml-tui runs` on narrow terminals (whole columns go, numbers are never cut) with each
run's size on disk; `aml-tui rm` deleting as Home deletes (refused while a process trains
the run); and the top-level --checkpoints reaching every subcommand."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from test_predict import shoe, train
from typer.testing import CliRunner, Result

from aml_tui.cli import app
from aml_tui.core.runstore.listing import RunInfo
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.render.runs import disk_size, runs_table

runner = CliRunner()


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


def listed(width: int, sizes: bool = True, sweep: bool = True) -> list[str]:
    runs = [
        RunInfo(
            run_id=f"fashion-cnn-20261207-0845{i:02d}",
            path=Path("x"),
            experiment="fashion-cnn",
            status="interrupted" if i else "completed",
            epochs_completed=15 - i,
            epochs=15,
            best_acc=0.99123 - i / 100,
            started=1_700_000_000.0 + i,
            seconds=3725.0 + i,
        )
        for i in range(3)
    ]
    table = runs_table(
        runs, width,
        {runs[0].run_id: "study-20261207-084500"} if sweep else None,
        {run.run_id: 1_234_567 * (i + 1) for i, run in enumerate(runs)} if sizes else None,
    )  # fmt: skip
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(table)
    return out.getvalue().splitlines()


@pytest.mark.parametrize("width", [40, 60, 80, 100, 140])
def test_narrow_terminals_drop_whole_columns_and_never_cut_a_number(width: int) -> None:
    lines = listed(width)
    text = "\n".join(lines)
    assert "…" not in text and all(len(line) <= max(width, 27) for line in lines), text
    header = lines[0].split()
    for i, line in enumerate(lines[1:]):
        assert line.startswith(f"fashion-cnn-20261207-0845{i:02d} ")  # the id whole
        cells = line.split()
        assert len(cells) >= len(header) - ("acc" in header) - ("size" in header)
    if width >= 60:
        assert "99.12%" in lines[1] and "15/15" in lines[1]
    if width >= 80:
        assert "1:02:05" in lines[1] and "1.2 MB" in lines[1] and "3.7 MB" in lines[3]
    if width >= 140:
        assert "study-20261207-084500" in lines[1] and "fashion-cnn " in lines[1][30:]


def test_the_experiment_goes_first_then_the_least_needed() -> None:
    kept = {width: listed(width)[0] for width in (60, 80, 100, 140)}
    assert "experiment" in kept[140] and "experiment" not in kept[100]
    assert "status" in kept[60] and "best acc" in kept[60] and "sweep" not in kept[60]


def test_sizes_read_as_du_does() -> None:
    assert [disk_size(n) for n in (0, 812, 999, 1000, 4_200_000, 123_456_789, 1_300_000_000)] == [
        "0 B", "812 B", "999 B", "1.0 kB", "4.2 MB", "123 MB", "1.3 GB",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    train(root, "one")
    return train(root, "two")


def test_runs_shows_each_runs_size_on_disk(checkpoints: Path) -> None:
    result = invoke("runs", "--json", "--checkpoints", str(checkpoints))
    found = {run["id"]: run for run in json.loads(result.stdout)}
    folder = RunFolder(checkpoints / "one")
    on_disk = sum(p.stat().st_blocks * 512 for p in folder.path.rglob("*") if p.is_file())
    assert found["one"]["bytes"] == on_disk > (checkpoints / "one" / "best.pt").stat().st_size
    table = invoke("runs", "--checkpoints", str(checkpoints)).stdout
    assert "size" in table.splitlines()[0] and disk_size(on_disk) in table


def test_rm_deletes_runs_and_says_which(tmp_path: Path) -> None:
    root = train(tmp_path, "a")
    train(tmp_path, "b")
    train(tmp_path, "c")
    result = invoke("rm", "a", str(root / "b"), "--checkpoints", str(root))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["deleted a", "deleted b"]
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == ["c"]


@pytest.mark.system
def test_rm_refuses_a_run_a_process_trains_and_goes_on(tmp_path: Path) -> None:
    """A process holding the run's claim (as a training process does): that run is one line
    and stays whole, the other is deleted, the exit code says one failed."""
    root = train(tmp_path, "busy")
    train(tmp_path, "idle")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom aml_tui.core.runstore.runs import "
         f"RunFolder\nclaim = RunFolder({str(root / 'busy')!r}).claim()\nprint('held', "
         "flush=True)\ntime.sleep(120)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        before = sorted(p.name for p in (root / "busy").iterdir())
        result = invoke("rm", "busy", "idle", "nothing", "--checkpoints", str(root))
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 2
    assert result.stdout.splitlines() == ["deleted idle"]
    errors = result.stderr.splitlines()
    assert len(errors) == 2 and all(e.startswith("aml-tui: error: not deleted: ") for e in errors)
    assert "busy" in errors[0] and str(holder.pid) in errors[0]
    assert "no run 'nothing'" in errors[1]
    assert sorted(p.name for p in (root / "busy").iterdir()) == before
    assert not (root / "idle").exists()


def test_the_top_level_checkpoints_reaches_every_subcommand(
    checkpoints: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./checkpoints here: only the option finds the runs
    shoe().save(tmp_path / "shoe.png")
    top = ("--checkpoints", str(checkpoints))
    runs = json.loads(invoke(*top, "runs", "--json").stdout)
    assert {run["id"] for run in runs} == {"one", "two"}
    assert invoke(*top, "eval", "one", "--json").exit_code == 0
    assert invoke(f"--checkpoints={checkpoints}", "predict", "one", "shoe.png").exit_code == 0
    exported = invoke(*top, "export", "one", "--format", "csv", "-o", "m.csv")
    assert exported.exit_code == 0 and (tmp_path / "m.csv").is_file()
    assert invoke(*top, "report", "one", "-o", "r.md").exit_code == 0
    assert invoke(*top, "sweep", "list").exit_code == 0
    assert "no sweep" in invoke(*top, "sweep", "show", "nope").output
    printed = invoke(*top, "train", "fashion-cnn", "--print-config").stdout
    assert f'checkpoints = "{checkpoints}"' in printed
    # The command's own --checkpoints wins; one that takes none ignores it.
    assert "no runs under elsewhere" in invoke(*top, "runs", "--checkpoints", "elsewhere").stdout
    assert invoke(*top, "experiments").exit_code == 0
    assert not (tmp_path / "checkpoints").exists()
