"""Sweeps: lists and seeds parsed, the grid expanded, the leaderboard's statistics, the command
line's errors, and real sweeps in subprocesses (complete, stopped and resumed, two at once,
carried on from another folder, a second driver refused, a run killed); restarts re-checked
against a stale plan. Hostile records are in test_hostile_sweeps.py."""

from __future__ import annotations

import io
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import write_fashion_dir
from typer.testing import CliRunner

from aml_tui import sweep_runner
from aml_tui.cli import app
from aml_tui.cli_sweep import flag_values
from aml_tui.core.runstore.leaderboard import leaderboard, sweep_json, sweep_results
from aml_tui.core.runstore.listing import list_runs
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.runstore.sweeps import (
    claim_driver,
    create_sweep,
    list_sweeps,
    parse_seeds,
    parse_values,
    plan_sweep,
    read_sweep,
    remove_unsaved,
    run_action,
    sweep_membership,
    sweep_path,
)
from aml_tui.errors import AmlTuiError, ConfigError, RunBusyError, SweepBusyError
from aml_tui.render.sweeps import leaderboard_table
from aml_tui.sweep_runner import SweepRunner, train_arguments

runner = CliRunner()

QUICK = ["--train-limit", "200", "--test-limit", "50", "--offline"]


def test_lists_parse_into_the_field_types() -> None:
    assert parse_values("lr", "0.001, 3e-4") == [0.001, 0.0003]
    assert parse_values("batch_size", "64,128") == [64, 128]
    assert parse_values("scrambled", "false,TRUE") == [False, True]
    assert parse_values("dataset", "cifar10,cifar100") == ["cifar10", "cifar100"]
    for field, text in [("lr", "fast"), ("epochs", "1.5"), ("amp", "maybe"), ("lr", "1,,2"),
                        ("batch_size", "64,64"), ("lr", "nan")]:  # fmt: skip
        with pytest.raises(ConfigError, match="--" + field.replace("_", "-")):
            parse_values(field, text)


def test_seeds_take_lists_and_ranges() -> None:
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0-2,7") == [0, 1, 2, 7]
    for bad in ("", "a", "3-1", "0,0", "1-", "-1"):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)


def test_the_grid_expands_combination_by_combination_over_the_seeds() -> None:
    sweep = plan_sweep(
        "fashion-cnn", {"epochs": 2}, {"lr": [0.1, 0.2], "batch_size": [32, 64], "test_limit": [9]},
        [0, 5], name="grid",
    )  # fmt: skip
    assert list(sweep.grid) == ["batch_size", "lr"]  # TrainConfig's field order
    assert sweep.options == {"epochs": 2, "test_limit": 9}  # one value: shared, not swept
    runs = sweep.runs
    assert [r.run_id for r in runs[:3]] == ["grid-c1-s0", "grid-c1-s5", "grid-c2-s0"]
    assert len(runs) == 8 and runs[-1].params == {"batch_size": 64, "lr": 0.2}
    config = sweep.run_config(runs[-1])
    assert (config.batch_size, config.lr, config.seed, config.epochs, config.test_limit) == (
        64, 0.2, 5, 2, 9,
    )  # fmt: skip
    assert config.name == "grid-c4-s5"


def test_a_bad_combination_is_refused_before_any_run_and_names_it() -> None:
    with pytest.raises(ConfigError, match="batch_size=0"):
        plan_sweep("fashion-cnn", {}, {"batch_size": [8, 0]}, [0], name="bad")
    with pytest.raises(ConfigError, match="sweep name"):
        plan_sweep("fashion-cnn", {}, {}, [0], name=".hidden")
    with pytest.raises(ConfigError, match="too long"):
        plan_sweep("fashion-cnn", {}, {}, [0], name="x" * 99)


def test_the_record_reads_back_and_is_not_a_run(tmp_path: Path) -> None:
    planned = plan_sweep("fashion-cnn", {"epochs": 1}, {"lr": [0.1, 0.2]}, [0, 1], name="rec")
    sweep = create_sweep(tmp_path, planned)
    assert sweep.options == {"epochs": 1, "checkpoints": str(tmp_path)}  # recorded absolute
    assert read_sweep(tmp_path, "rec") == sweep == read_sweep(tmp_path, "last")
    assert [s.sweep_id for s in list_sweeps(tmp_path)] == ["rec"]
    assert list_runs(tmp_path) == []
    for run_id in ("rec-c2-s1", "rec-c3-s1", "rec-c1-s2", "rec-c01-s1", "other-c1-s0"):
        (tmp_path / run_id).mkdir()
    assert sweep_membership(tmp_path) == {"rec-c2-s1": "rec"}  # only the sweep's own runs
    with pytest.raises(AmlTuiError, match="already exists"):
        create_sweep(tmp_path, sweep)
    with pytest.raises(ConfigError, match="no sweep 'other'"):
        read_sweep(tmp_path, "other")


def _finished(root: Path, run_id: str, test_acc: float, status: str = "completed") -> None:
    folder = root / run_id
    folder.mkdir()
    summary = {"status": status, "epochs_completed": 1, "test_acc": test_acc,
               "scrambled_test_acc": test_acc / 2, "best_acc": test_acc + 0.01,
               "train_images_per_s": 100.0}  # fmt: skip
    folder.joinpath("summary.json").write_text(json.dumps(summary))


def test_leaderboard_statistics_over_completed_runs(tmp_path: Path) -> None:
    sweep = plan_sweep("fashion-cnn", {}, {"lr": [0.1, 0.2]}, [0, 1, 2], name="lb")
    for seed, acc in enumerate([0.90, 0.92, 0.97]):
        _finished(tmp_path, f"lb-c1-s{seed}", acc)
    _finished(tmp_path, "lb-c2-s0", 0.5)
    _finished(tmp_path, "lb-c2-s1", float("nan"), status="failed")
    results = sweep_results(tmp_path, sweep)
    assert [r.status for r in results][3:] == ["completed", "failed", "pending"]
    first, second = leaderboard(results)
    assert (first.n, first.finished) == (3, 3)
    assert first.test_acc is not None and first.test_acc.mean == pytest.approx(0.93)
    assert first.test_acc.std == pytest.approx(statistics.stdev([0.90, 0.92, 0.97]))
    assert (first.test_acc.low, first.test_acc.high) == (0.90, 0.97)
    assert first.best_acc_mean == pytest.approx(0.94)
    assert (second.finished, second.test_acc and second.test_acc.std) == (1, None)
    text = json.dumps(sweep_json(sweep, results), allow_nan=False)  # standard JSON: no NaN
    assert json.loads(text)["configs"][1]["test_acc_std"] is None
    assert leaderboard_table([first, second], scrambles=True).row_count == 2
    from rich.console import Console

    from aml_tui.render.sweeps import FittedLeaderboard

    for width, wide in ((80, False), (120, True)):  # at 80 columns nothing is cropped
        console = Console(width=width, record=True, color_system=None, file=io.StringIO())
        console.print(FittedLeaderboard([first, second], scrambles=True))
        shown = console.export_text()
        header = shown.splitlines()[0].split()
        assert ("min" in header, "img/s" in header) == (wide, wide)
        assert "93.00%" in shown and "scrambled" in header and "best" in header
        assert all(len(line.rstrip()) <= width for line in shown.splitlines())


def test_a_scrambled_sweep_is_ranked_by_its_scrambled_test_accuracy(tmp_path: Path) -> None:
    """Runs trained on scrambled images are about the scrambled test set (their plain test
    images are near chance, and noisy): the leaderboard, `sweep list`'s best and the
    report rank them by it; a plain combination of the same sweep by its test accuracy."""
    from aml_tui.core.runstore.leaderboard import ranked
    from aml_tui.core.runstore.sweep_state import sweep_progress
    from aml_tui.render.sweeps import best_cell

    sweep = plan_sweep("fashion-cnn", {"scrambled": True}, {"lr": [0.1, 0.2]}, [0], name="scr")
    create_sweep(tmp_path, sweep)
    for run_id, plain, scrambled in (("scr-c1-s0", 0.40, 0.990), ("scr-c2-s0", 0.20, 0.994)):
        _finished(tmp_path, run_id, plain)
        summary = json.loads((tmp_path / run_id / "summary.json").read_text())
        (tmp_path / run_id / "summary.json").write_text(
            json.dumps({**summary, "scrambled_test_acc": scrambled})
        )
    results = sweep_results(tmp_path, sweep)
    assert all(r.trained_scrambled for r in results)
    assert [r.own_acc for r in results] == [0.990, 0.994]
    top = ranked(leaderboard(results))[0]
    assert top.config == 2 and top.own_acc is not None and top.own_acc.mean == 0.994
    assert best_cell(sweep_progress(tmp_path, sweep)) == "best c2 scrambled 99.40%"
    mixed = plan_sweep("fashion-cnn", {}, {"scrambled": [False, True]}, [0], name="mixed")
    assert [r.trained_scrambled for r in sweep_results(tmp_path, mixed)] == [False, True]


def test_carrying_on_decides_per_run(tmp_path: Path) -> None:
    _finished(tmp_path, "done", 0.9)
    _finished(tmp_path, "broke", 0.1, status="failed")
    _finished(tmp_path, "stopped", 0.5, status="interrupted")
    (tmp_path / "stopped" / "last.pt").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    actions = {name: run_action(RunFolder(tmp_path / name))
               for name in ("done", "broke", "stopped", "empty", "absent")}  # fmt: skip
    assert actions == {"done": "done", "broke": "done", "stopped": "resume", "empty": "restart",
                       "absent": "start"}  # fmt: skip


def test_train_arguments_give_back_the_same_config() -> None:
    sweep = plan_sweep("fashion-cnn", {"offline": True, "data_dir": "d"}, {"amp": [False]}, [3])
    config = sweep.run_config(sweep.runs[0])
    args = train_arguments(config)
    assert "--no-amp" in args and "--offline" in args and "--augment" not in args
    assert args[args.index("--seed") + 1] == "3"


def test_flags_alone_mean_true_and_no_flags_false() -> None:
    assert flag_values(["fashion-cnn", "--scrambled", "--no-amp", "--lr", "1"]) == [
        "fashion-cnn", "--scrambled", "true", "--amp", "false", "--lr", "1",
    ]  # fmt: skip
    assert flag_values(["--scrambled", "false,true", "x"]) == ["--scrambled", "false,true", "x"]
    assert flag_values(["--scrambled"]) == ["--scrambled", "true"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fashion-cnn", "--lr", "fast", "--no-ui"], "--lr: 'fast' is not a number"),
        (["fashion-cnn", "--seeds", "4-2", "--no-ui"], "--seeds"),
        (["--resume", "x", "--lr", "1", "--no-ui"], "drop --lr"),
        (["--resume", "x", "--no-ui"], "no sweep 'x'"),
        (["--no-ui"], "name an experiment"),
        (["nope", "--no-ui"], "nope"),
        (["show", "x"], "no sweep 'x'"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(
    args: list[str], message: str, in_tmp_cwd: Path
) -> None:
    result = runner.invoke(app, ["sweep", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (in_tmp_cwd / "checkpoints" / ".sweeps").exists()


def test_help_of_the_sweep_commands() -> None:
    for args in (["sweep", "--help"], ["sweep", "fashion-cnn", "--help"], ["sweep", "show", "-h"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "Usage" in result.output
    assert "comma-separated" in runner.invoke(app, ["sweep", "start", "--help"]).output


def sweep_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "aml_tui", "sweep", *args]


def metrics_events(run: Path, event: str) -> int:
    lines = run.joinpath("metrics.jsonl").read_text().splitlines()
    return sum(json.loads(line).get("event") == event for line in lines)


@pytest.mark.system
def test_two_settings_by_two_seeds_complete_and_show_matches_the_summaries(
    in_tmp_cwd: Path, fashion_dir: Path
) -> None:
    command = sweep_command("fashion-cnn", "--lr", "0.001,0.003", "--seeds", "0,1",
                            "--epochs", "1", "--data-dir", str(fashion_dir), *QUICK,
                            "--name", "sw", "--jobs", "2", "--no-ui")  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    shown = subprocess.run(sweep_command("show", "sw", "--json"), capture_output=True, text=True)
    report = json.loads(shown.stdout)
    assert report["sweep"] == "sw" and len(report["runs"]) == 4
    assert [(c["params"], c["n"], c["finished"]) for c in report["configs"]] == [
        ({"lr": 0.001}, 2, 2), ({"lr": 0.003}, 2, 2),
    ]  # fmt: skip
    root = in_tmp_cwd / "checkpoints"
    for config in report["configs"]:
        k = config["config"]
        accs = [json.loads((root / f"sw-c{k}-s{s}" / "summary.json").read_text())["test_acc"]
                for s in (0, 1)]  # fmt: skip
        assert config["test_acc_mean"] == pytest.approx(statistics.fmean(accs))
        assert config["test_acc_std"] == pytest.approx(statistics.stdev(accs))
    run = tomllib.loads((root / "sw-c2-s1" / "config.toml").read_text())
    assert (run["lr"], run["seed"], run["run"]["sweep"]) == (0.003, 1, "sw")
    table = subprocess.run(sweep_command("show", "sw"), capture_output=True, text=True)
    assert "lr=0.003" in table.stdout and "2/2" in table.stdout
    listed = subprocess.run([sys.executable, "-m", "aml_tui", "runs", "--json"],
                            capture_output=True, text=True)  # fmt: skip
    assert {r["sweep"] for r in json.loads(listed.stdout)} == {"sw"}
    sweeps = subprocess.run(sweep_command("list", "--json"), capture_output=True, text=True)
    (row,) = [json.loads(line) for line in sweeps.stdout.splitlines()]
    best = max(report["configs"], key=lambda c: c["test_acc_mean"])["test_acc_mean"]
    assert row == {"sweep": "sw", "experiment": "fashion-cnn", "runs": "4/4 completed",
                   "best_test_acc": pytest.approx(best)}  # fmt: skip
    sweeps_shown = subprocess.run(sweep_command("list"), capture_output=True, text=True)
    assert "sw" in sweeps_shown.stdout and "4/4 completed" in sweeps_shown.stdout
    assert "best c" in sweeps_shown.stdout


@pytest.mark.slow
@pytest.mark.system
def test_a_stopped_sweep_carries_on_and_trains_no_run_twice(
    in_tmp_cwd: Path, fashion_dir: Path
) -> None:
    command = sweep_command("fashion-cnn", "--seeds", "0-2", "--epochs", "4", "--batch-size",
                            "16", "--data-dir", str(fashion_dir), *QUICK, "--name", "st",
                            "--no-ui")  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    root = in_tmp_cwd / "checkpoints"
    deadline = time.monotonic() + 240
    second = root / "st-c1-s1" / "metrics.jsonl"
    while not (second.exists() and '"run_started"' in second.read_text()):  # handlers are in
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0]
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 130, output
    assert json.loads((root / "st-c1-s0" / "summary.json").read_text())["status"] == "completed"
    assert json.loads((root / "st-c1-s1" / "summary.json").read_text())["status"] == "interrupted"
    assert not (root / "st-c1-s2").exists()
    resumed = subprocess.run(sweep_command("--resume", "st", "--no-ui"), capture_output=True,
                             text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resume  st-c1-s1" in resumed.stdout and "st-c1-s0" not in resumed.stdout
    sessions = {s: metrics_events(root / f"st-c1-s{s}", "run_started") for s in range(3)}
    assert sessions == {0: 1, 1: 2, 2: 1}
    for seed in range(3):
        summary = json.loads((root / f"st-c1-s{seed}" / "summary.json").read_text())
        assert (summary["status"], summary["epochs_completed"]) == ("completed", 4)


@pytest.mark.system
def test_two_jobs_on_the_cpu_train_at_once_and_both_complete(
    in_tmp_cwd: Path, fashion_dir: Path
) -> None:
    command = sweep_command("fashion-cnn", "--seeds", "0,1", "--epochs", "4", "--data-dir",
                            str(fashion_dir), *QUICK, "--name", "two", "--jobs", "2",
                            "--device", "cpu", "--no-ui")  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    owners = [in_tmp_cwd / "checkpoints" / f"two-c1-s{s}" / "owner.json" for s in (0, 1)]
    together = False
    while process.poll() is None:
        together = together or all(owner.exists() for owner in owners)
        time.sleep(0.05)
    output = process.communicate()[0]
    assert process.returncode == 0, output
    assert together, "the two runs never trained at the same time"
    assert "1 thread" in output if (os.cpu_count() or 1) < 4 else "thread" in output
    for owner in owners:
        summary = json.loads(owner.with_name("summary.json").read_text())
        assert summary["status"] == "completed"


def test_a_run_to_restart_that_another_process_claims_fails_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Restarting removes the folder under the run's claim (core: remove_unsaved): a folder
    that another process holds is never removed under it, and the sweep notes that run as
    failed instead of stopping with a traceback."""
    sweep = plan_sweep("fashion-cnn", {"offline": True}, {}, [0])
    folder = RunFolder(tmp_path / sweep.runs[0].run_id)
    folder.path.mkdir()
    (folder.path / "config.toml").write_text("kept")
    claim = folder.claim()
    try:
        runner_ = SweepRunner(tmp_path, sweep, jobs=1)
        runner_.start(sweep.runs[0])
    finally:
        claim.release()
    assert runner_.active == [] and runner_.failure == 2
    assert (folder.path / "config.toml").read_text() == "kept"
    assert f"failed  {sweep.runs[0].run_id}:" in capsys.readouterr().out


# --- where runs train, one driver per sweep, restarts and killed runs --------------------------


def quiet_env() -> dict[str, str]:
    """This environment without the data and offline variables a developer may have set."""
    env = dict(os.environ)
    for name in ("AML_TUI_DATA", "AML_TUI_OFFLINE"):
        env.pop(name, None)
    return env


@pytest.mark.system
def test_resume_from_another_folder_trains_where_the_sweep_was_recorded(tmp_path: Path) -> None:
    """A relative --checkpoints and --data-dir are recorded absolute: carried on from
    another working folder, the runs train (and read) where the sweep began, and carrying
    it on from there again trains nothing twice."""
    first_cwd, other_cwd = tmp_path / "a", tmp_path / "b"
    first_cwd.mkdir(), other_cwd.mkdir()
    command = sweep_command("fashion-cnn", "--seeds", "0,1", "--epochs", "1", "--data-dir",
                            "data", *QUICK, "--name", "mv", "--no-ui")  # fmt: skip
    first = subprocess.run(command, cwd=first_cwd, env=quiet_env(), capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    assert first.returncode == 2 and "data folder" in first.stdout, first.stdout + first.stderr
    write_fashion_dir(first_cwd / "data")  # the data arrives; the sweep is carried on elsewhere
    resumed = subprocess.run(
        sweep_command("--resume", "mv", "--no-ui", "--checkpoints", "../a/checkpoints"),
        cwd=other_cwd, env=quiet_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert list(other_cwd.iterdir()) == []  # no checkpoints, no data looked for here
    for seed in (0, 1):
        summary = first_cwd / "checkpoints" / f"mv-c1-s{seed}" / "summary.json"
        assert json.loads(summary.read_text())["status"] == "completed"
    again = subprocess.run(
        sweep_command("--resume", "mv", "--no-ui"), cwd=first_cwd, env=quiet_env(),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert again.returncode == 0 and "2 done, 0 to train" in again.stdout, again.stdout


@pytest.mark.system
def test_a_record_of_a_moved_folder_says_so_in_one_line(tmp_path: Path) -> None:
    old, new = tmp_path / "old" / "ck", tmp_path / "new" / "ck"
    create_sweep(old, plan_sweep("fashion-cnn", {"offline": True}, {}, [0], name="mv"))
    new.parent.mkdir()
    old.rename(new)
    carried = runner.invoke(app, ["sweep", "--resume", "mv", "--no-ui", "--checkpoints", str(new)])
    assert carried.exit_code == 2 and len(carried.output.strip().splitlines()) == 1
    assert f"records its runs in {old}, not in {new}" in carried.output
    assert f"--checkpoints {old}" in carried.output  # the fixes: there, or edit the record
    shown = subprocess.run(sweep_command("show", "mv", "--checkpoints", str(new)),
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert shown.returncode == 0 and "records its runs in" in shown.stderr
    assert len(shown.stderr.strip().splitlines()) == 1
    assert not old.exists()


def wait_until(condition: Callable[[], bool], process: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert process.poll() is None, f"the sweep ended before {what}: {process.communicate()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def started(metrics: Path) -> bool:
    return metrics.exists() and '"run_started"' in metrics.read_text()


def long_sweep(name: str, fashion_dir: Path) -> list[str]:
    """A one-run sweep whose run trains for far longer than a test waits."""
    return sweep_command("fashion-cnn", "--epochs", "5000", "--data-dir", str(fashion_dir),
                         *QUICK, "--name", name, "--no-ui")  # fmt: skip


@pytest.mark.system
def test_a_second_driver_of_a_sweep_is_refused_naming_the_first(
    in_tmp_cwd: Path, fashion_dir: Path
) -> None:
    first = subprocess.Popen(long_sweep("two", fashion_dir), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        wait_until(lambda: started(in_tmp_cwd / "checkpoints" / "two-c1-s0" / "metrics.jsonl"),
                   first, "its run started")  # fmt: skip
        second = subprocess.run(sweep_command("--resume", "two", "--no-ui"),
                                capture_output=True, text=True, timeout=120)  # fmt: skip
        assert second.returncode == 2, second.stdout + second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"carried on right now by process {first.pid}" in lines[0]
        assert second.stdout == ""  # it planned nothing, started nothing
    finally:
        first.send_signal(signal.SIGINT)
        output = first.communicate(timeout=120)[0]
    assert first.returncode == 130, output


@pytest.mark.system
def test_a_run_killed_by_sigkill_makes_the_sweep_exit_2(
    in_tmp_cwd: Path, fashion_dir: Path
) -> None:
    """247 (-9 as an exit code) is in no list of exit codes: a run that died of a signal the
    sweep did not send is a failure to fix, as out of memory is: exit 2."""
    sweep = subprocess.Popen(long_sweep("kill", fashion_dir), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)  # fmt: skip
    run = in_tmp_cwd / "checkpoints" / "kill-c1-s0"
    wait_until(lambda: started(run / "metrics.jsonl"), sweep, "its run started")
    os.kill(json.loads((run / "owner.json").read_text())["pid"], signal.SIGKILL)
    output = sweep.communicate(timeout=120)[0]
    assert sweep.returncode == 2, output
    assert "failed  kill-c1-s0  (killed by SIGKILL" in output


def test_a_restart_planned_before_the_run_completed_deletes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The stale plan of two drivers at once: planned as a restart (a folder with nothing
    saved), completed meanwhile by another process, then started. The run is looked at
    again before it starts, and once more under its claim before anything is deleted."""
    sweep = create_sweep(tmp_path, plan_sweep("fashion-cnn", {"offline": True}, {}, [0], name="st"))
    run = sweep.runs[0]
    folder = RunFolder(tmp_path / run.run_id)
    folder.path.mkdir()
    folder.write_config(sweep.run_config(run), {"sweep": "st"})
    runner_ = SweepRunner(tmp_path, sweep, jobs=1)
    assert runner_.plan() == [(run, "restart")]
    folder.write_summary({"status": "completed", "epochs_completed": 1})
    folder.last_path.write_bytes(b"kept")
    runner_.start(run)
    assert "done    st-c1-s0  (already)" in capsys.readouterr().out
    # Staler still: completed between the last look and the delete (the look says restart).
    looks = iter(["restart"])
    real = sweep_runner.run_action
    monkeypatch.setattr(sweep_runner, "run_action", lambda f: next(looks, None) or real(f))
    runner_.start(run)
    assert "done    st-c1-s0  (already)" in capsys.readouterr().out
    assert runner_.active == [] and runner_.failure == 0
    assert folder.last_path.read_bytes() == b"kept" and folder.summary_path.exists()


def test_only_a_folder_with_nothing_saved_is_removed_for_a_restart(tmp_path: Path) -> None:
    for saved in ("summary.json", "last.pt", "best.pt"):
        folder = RunFolder(tmp_path / saved)
        folder.path.mkdir()
        (folder.path / saved).write_text("{}")
        assert not remove_unsaved(folder) and (folder.path / saved).exists()
    empty = RunFolder(tmp_path / "empty")
    empty.path.mkdir()
    (empty.path / "config.toml").write_text("x")
    claim = empty.claim()
    try:
        with pytest.raises(RunBusyError):  # a run being trained is never deleted
            remove_unsaved(empty)
    finally:
        claim.release()
    assert empty.path.exists() and remove_unsaved(empty) and not empty.path.exists()


def test_a_held_sweep_cannot_be_driven_or_created(tmp_path: Path) -> None:
    sweep = create_sweep(tmp_path, plan_sweep("fashion-cnn", {"offline": True}, {}, [0], name="h"))
    held = [claim_driver(tmp_path, "h"), claim_driver(tmp_path, "g")]  # "g": being created
    try:
        with pytest.raises(SweepBusyError, match=f"carried on right now by process {os.getpid()}"):
            SweepRunner(tmp_path, sweep, jobs=1).run()
        with pytest.raises(SweepBusyError):
            create_sweep(tmp_path, plan_sweep("fashion-cnn", {}, {}, [0], name="g"))
    finally:
        for claim in held:
            claim.release()
    assert not (tmp_path / sweep.runs[0].run_id).exists()
    assert not sweep_path(tmp_path, "g").exists()
