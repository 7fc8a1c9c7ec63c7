"""Searches: ranges and choices, the search record, Optuna's study in the sweep's folder,
pruning through verdict files, exact trial counts across a SIGKILL, `sweep confirm`, and
`sweep show`'s trials. The processes train fashion-cnn on a small generated FashionMNIST.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Label
from typer.testing import CliRunner

from aml_tui.cli import app
from aml_tui.core.events import EpochEnded, event_record
from aml_tui.core.runstore.listing import resume_refusal
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.runstore.search_space import Search, Span, parse_range
from aml_tui.core.runstore.search_trials import trial_status
from aml_tui.core.runstore.sweeps import create_sweep, read_sweep, sweep_path
from aml_tui.core.runstore.verdicts import Report, await_verdict, write_report, write_verdict
from aml_tui.core.search.driver import save_record
from aml_tui.core.search.plan import plan_search
from aml_tui.core.search.study import STUDY_FILE, Study, load_optuna
from aml_tui.errors import ConfigError
from aml_tui.tui.app import create_app
from aml_tui.tui.screens.sweep import SweepScreen
from aml_tui.tui.widgets.plots import MetricPlot

QUICK = ["--train-limit", "200", "--test-limit", "50", "--offline", "--device", "cpu"]
BAD_OR_GOOD = ["--lr", "0.003,1e-6"]
"""Two learning rates, one of which learns nothing in an epoch: what the pruner must see."""


def sweep_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "aml_tui", "sweep", *args]


def shown(*args: str) -> dict[str, object]:
    done = subprocess.run(sweep_command("show", *args, "--json"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


async def wait_for(pilot: Pilot, condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the app"
        await pilot.pause(0.05)
    await pilot.pause()


def epochs_recorded(run: Path) -> list[int]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r["epoch"] for r in map(json.loads, lines) if r.get("event") == "epoch_ended"]


# --- parsing and records ----------------------------------------------------------------------


def test_ranges_keep_their_field_types_and_bad_ones_say_why() -> None:
    assert parse_range("--lr", "float", "1e-4:1e-2:log") == Span(1e-4, 1e-2, True)
    assert parse_range("--epochs", "int", "1:8") == Span(1, 8, False)
    assert isinstance(parse_range("--epochs", "int", "1:8").low, int)  # type: ignore[union-attr]
    assert parse_range("--lr", "float", "0.001,0.003") is None  # a list
    assert parse_range("--dataset", "str", "imagefolder:/x") is None  # text, not a range
    for text, problem in (("5:1", "below"), ("0:1:log", "above 0"), ("1:x", "numbers"),
                          ("1:2:3:4", "LOW:HIGH")):  # fmt: skip
        with pytest.raises(ConfigError, match=problem):
            parse_range("--lr", "float", text)
    with pytest.raises(ConfigError, match="whole numbers"):
        parse_range("--epochs", "int", "1.5:3")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--lr", "1e-4:1e-2", "--search", "grid"], "is a range, which a grid cannot sweep"),
        (["--lr", "1e-4:1e-2"], "needs --trials N"),
        (["--lr", "0.1,0.2", "--search", "tpe", "--trials", "0"], "needs --trials N"),
        (["--lr", "1:2", "--trials", "3", "--prune", "fast"], "--prune 'fast'"),
        (["--trials", "3"], "--trials needs a search"),
        (["--search", "random", "--trials", "3"], "needs a setting to search"),
        (["--lr", "1e-4:1e-2", "--trials", "2", "--prune", "asha", "--seeds", "0-2"],
         "give --jobs 3 or more"),
    ],
)  # fmt: skip
def test_bad_search_options_are_one_line_and_write_nothing(
    args: list[str], says: str, in_tmp_cwd: Path
) -> None:
    result = CliRunner().invoke(app, ["sweep", "fashion-cnn", *args, "--no-ui", "--name", "s"])
    assert result.exit_code == 2, result.output
    assert says in result.output and len(result.output.strip().splitlines()) == 1
    assert not (in_tmp_cwd / "checkpoints" / ".sweeps" / "s.toml").exists()


def small_search(root: Path, prune: str = "median", trials: int = 3) -> None:
    space = {"lr": Span(1e-4, 1e-2, True), "batch_size": Span(choices=(16, 32))}
    search = Search("tpe", trials, prune, space)  # type: ignore[arg-type]
    create_sweep(root, plan_search("fashion-cnn", {"epochs": 2}, search, [0], name="tune"))


def test_a_search_record_reads_back_and_a_damaged_one_is_one_line(tmp_path: Path) -> None:
    small_search(tmp_path)
    sweep = read_sweep(tmp_path, "tune")
    assert sweep.search is not None and sweep.search.trials == 3 and sweep.runs == []
    assert sweep.options["val_split"] == 0.1  # a search validates on 10% unless told
    asked = replace(sweep.search, asked=({"lr": 0.001, "batch_size": 32},))
    save_record(tmp_path, replace(sweep, search=asked))
    (run,) = read_sweep(tmp_path, "tune").runs
    assert (run.run_id, run.params) == ("tune-c1-s0", {"lr": 0.001, "batch_size": 32})
    path = sweep_path(tmp_path, "tune")
    damaged = path.read_text().replace("trials = 3", "trials = -1")
    path.write_text(damaged)
    with pytest.raises(ConfigError) as error:
        read_sweep(tmp_path, "tune")
    assert "search.trials" in str(error.value) and "\n" not in str(error.value)
    assert path.read_text() == damaged  # nothing lost


def test_a_damaged_study_is_one_line_and_nothing_is_lost(tmp_path: Path) -> None:
    small_search(tmp_path)
    search = read_sweep(tmp_path, "tune").search
    assert search is not None
    study = Study(tmp_path, "tune", search, 0)
    study.ask()
    journal = tmp_path / STUDY_FILE
    journal.write_bytes(journal.read_bytes()[:-1] + b"\x00{not json\n")
    before = journal.read_bytes()
    with pytest.raises(ConfigError) as error:
        Study(tmp_path, "tune", search, 0)
    assert "cannot be read" in str(error.value) and "\n" not in str(error.value)
    assert journal.read_bytes() == before


def test_without_optuna_a_search_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # what Python does for a missing package
    with pytest.raises(ConfigError, match=r"pip install 'aml-tui\[search\]'"):
        load_optuna()


def test_a_run_waits_for_its_verdict_and_a_stop_ends_the_wait(tmp_path: Path) -> None:
    stop = threading.Event()
    write_report(tmp_path, Report(1, 0.5))
    answer: list[object] = []
    waiter = threading.Thread(target=lambda: answer.append(await_verdict(tmp_path, 1, stop)))
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive()  # no verdict yet: the next epoch does not start
    write_verdict(tmp_path, 1, "prune")
    waiter.join(5)
    assert answer == ["prune"]
    stop.set()
    assert await_verdict(tmp_path, 2, stop) is None


def test_a_trial_is_judged_over_its_seeds() -> None:
    assert trial_status(["completed", "completed"]) == "completed"
    assert trial_status(["pruned", "completed"]) == "pruned"
    assert trial_status(["running", "pruned"]) == "running"
    assert trial_status(["completed", "failed"]) == "failed"
    assert trial_status(["interrupted", "pending"]) == "interrupted"


def test_a_pruned_run_is_never_resumed(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "r")
    folder.path.mkdir()
    folder.last_path.write_bytes(b"saved")
    folder.write_summary({"status": "pruned", "epochs_completed": 1})
    assert resume_refusal(folder) == "pruned"


# --- searches that train ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.system
def test_a_random_search_prunes_by_the_median_and_confirm_trains_its_best(
    in_tmp_cwd: Path, fashion_dir: Path
) -> None:
    command = sweep_command("fashion-cnn", *BAD_OR_GOOD, "--search", "random", "--trials", "3",
                            "--prune", "median", "--epochs", "2", "--data-dir", str(fashion_dir),
                            *QUICK, "--name", "m", "--no-ui")  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    report = shown("m")
    trials = report["trials"]
    assert isinstance(trials, list) and len(trials) == 3  # exactly --trials
    assert {"runs", "configs", "trials"} <= set(report)
    assert all({"run_id", "params", "status"} <= set(run) for run in report["runs"])  # type: ignore[attr-defined]
    root = in_tmp_cwd / "checkpoints"
    first = {}  # each trial's validation accuracy after epoch 1, from its metrics
    for trial in trials:
        lines = (root / trial["runs"][0] / "metrics.jsonl").read_text().splitlines()
        first[trial["trial"]] = next(r["val_acc"] for r in map(json.loads, lines)
                                     if r.get("event") == "epoch_ended")  # fmt: skip
    # The median rule: after the first trial, one below the median of those before it
    # at epoch 1 is pruned there, and one above goes on.
    for trial in trials[1:]:
        before = sorted(first[t["trial"]] for t in trials if t["trial"] < trial["trial"])
        median = (before[(len(before) - 1) // 2] + before[len(before) // 2]) / 2
        expected = "pruned" if first[trial["trial"]] < median else "completed"
        assert trial["status"] == expected, (trial, first)
    pruned = [t for t in trials if t["status"] == "pruned"]
    assert pruned and all(t["params"] == {"lr": 1e-6} and t["epochs"] == 1 for t in pruned)
    run = root / pruned[0]["runs"][0]
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["status"], summary["epochs_completed"]) == ("pruned", 1)
    assert (run / "best.pt").exists() and not (run / "last.pt").exists()  # disk: best.pt kept
    assert "disk:" in done.stdout and f"pruned  {run.name}" in done.stdout
    listed = subprocess.run([sys.executable, "-m", "aml_tui", "runs", "--json"],
                            capture_output=True, text=True)  # fmt: skip
    statuses = {r["id"]: r["status"] for r in json.loads(listed.stdout)}
    assert statuses[run.name] == "pruned"
    resumed = subprocess.run(sweep_command("--resume", "m", "--no-ui"), capture_output=True,
                             text=True, timeout=120)  # fmt: skip
    assert resumed.returncode == 0 and "start" not in resumed.stdout  # all 3 finished
    confirm = sweep_command("confirm", "m", "--top", "1", "--seeds", "0-1", "--epochs", "1",
                            "--train-limit", "100", "--test-limit", "50", "--no-ui")  # fmt: skip
    confirmed = subprocess.run(confirm, capture_output=True, text=True, timeout=300)
    assert confirmed.returncode == 0, confirmed.stdout + confirmed.stderr
    best = max((t for t in trials if t["status"] == "completed"), key=lambda t: t["val_acc"])
    again = shown("m-confirm")
    assert again["confirms"] == "m" and [c["params"] for c in again["configs"]] == [best["params"]]
    config = tomllib.loads((root / "m-confirm-c1-s1" / "config.toml").read_text())
    assert config["val_split"] == 0 and config["train_limit"] == 100  # the experiment's way


@pytest.mark.slow
@pytest.mark.system
def test_a_tpe_search_with_asha_killed_by_sigkill_resumes_exactly(
    in_tmp_cwd: Path, fashion_dir: Path
) -> None:
    command = sweep_command("fashion-cnn", *BAD_OR_GOOD, "--search", "tpe", "--trials", "3",
                            "--prune", "asha", "--epochs", "3", "--data-dir", str(fashion_dir),
                            *QUICK, "--name", "k", "--no-ui")  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    root = in_tmp_cwd / "checkpoints"
    report = root / "k-c1-s0" / "search_report.json"
    deadline = time.monotonic() + 120
    while not report.exists():  # the first run has reported epoch 1 and waits
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0]
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdout.close()  # type: ignore[union-attr]
    owner = json.loads((root / "k-c1-s0" / "owner.json").read_text())
    resumed = subprocess.run(sweep_command("--resume", "k", "--no-ui"), capture_output=True,
                             text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "follow  k-c1-s0" in resumed.stdout  # the run the killed sweep left, not refused
    with pytest.raises(ProcessLookupError):
        os.kill(owner["pid"], 0)  # it ended while followed
    trials = shown("k")["trials"]
    assert isinstance(trials, list) and len(trials) == 3
    assert all(t["status"] in ("completed", "pruned") for t in trials)
    for trial in trials:
        run = root / trial["runs"][0]
        epochs = epochs_recorded(run)
        assert epochs == list(range(1, len(epochs) + 1)), epochs  # each epoch once
        starts = (run / "metrics.jsonl").read_text().count('"run_started"')
        assert starts == 1  # no trial trained again
    optuna = load_optuna()
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(root / ".sweeps" / "k" / STUDY_FILE))
    )
    study = optuna.load_study(study_name="k", storage=storage)
    assert [t.state.name in ("COMPLETE", "PRUNED") for t in study.trials] == [True] * 3
    first = study.trials[0].intermediate_values
    assert list(first) == sorted(set(first))  # epochs reported once


# --- the Sweep screen -------------------------------------------------------------------------


def val_epoch(n: int, val: float, test: float, epochs: int = 2) -> EpochEnded:
    return EpochEnded(
        epoch=n, epochs=epochs, train_loss=0.5, train_acc=val, test_loss=0.5, test_acc=test,
        scrambled_test_loss=None, scrambled_test_acc=None, lr=0.001, train_images_per_s=1000.0,
        epoch_seconds=1.0, elapsed=float(n), is_best=True, val_loss=0.5, val_acc=val,
    )  # fmt: skip


def test_a_scrambled_trial_is_tested_on_the_scrambled_test_images() -> None:
    """A run trained on scrambled images is about the scrambled test set: its trial shows
    that accuracy beside the validation one, not the plain test set's (near chance)."""
    from dataclasses import replace

    from aml_tui.core.runstore.search_trials import best_of

    history = [replace(val_epoch(1, 0.90, 0.30), scrambled_test_acc=0.89),
               replace(val_epoch(2, 0.95, 0.25), scrambled_test_acc=0.94)]  # fmt: skip
    assert best_of(history, scrambled=True) == (0.95, 0.94, 2)
    assert best_of(history) == (0.95, 0.25, 2)


def test_a_scrambled_searchs_trials_name_their_test_column_scrambled(tmp_path: Path) -> None:
    """sweep show, the Sweep screen and the report head the test column "scrambled acc"
    when every trial trains on scrambled images; a plain search, or one that chooses
    between scrambled and plain, keeps "test acc"."""
    from aml_tui.render.search import trial_columns

    space = {"lr": Span(1e-4, 1e-2, True)}
    for name, options, expected in (
        ("scr", {"epochs": 2, "scrambled": True}, "scrambled acc"),
        ("plain", {"epochs": 2}, "test acc"),
    ):
        search = Search("tpe", 3, "none", space)  # type: ignore[arg-type]
        create_sweep(tmp_path, plan_search("fashion-cnn", options, search, [0], name=name))
        sweep = read_sweep(tmp_path, name)
        assert trial_columns(sweep)[3] == expected
    sweep = read_sweep(tmp_path, "scr")
    assert sweep.search is not None
    mixed = replace(sweep.search, asked=({"lr": 0.001, "scrambled": False}, {"lr": 0.002}))
    assert trial_columns(replace(sweep, search=mixed))[3] == "test acc"


SCREEN_TRIALS = [  # (settings, status, (val, test) per epoch)
    ({"lr": 0.001, "batch_size": 16}, "completed", [(0.70, 0.69), (0.80, 0.79)]),
    ({"lr": 0.009, "batch_size": 32}, "pruned", [(0.40, 0.41)]),
    ({"lr": 0.003, "batch_size": 32}, "completed", [(0.75, 0.74), (0.90, 0.88)]),
]


def write_search(root: Path) -> None:
    """A search of three finished trials, its runs written through the core's API."""
    small_search(root)
    sweep = read_sweep(root, "tune")
    assert sweep.search is not None
    asked = tuple(params for params, _, _ in SCREEN_TRIALS)
    sweep = replace(sweep, search=replace(sweep.search, asked=asked))
    save_record(root, sweep)
    for run, (_, status, epochs) in zip(sweep.runs, SCREEN_TRIALS, strict=True):
        folder = RunFolder(root / run.run_id)
        folder.path.mkdir(parents=True)
        folder.write_config(sweep.run_config(run), {"sweep": "tune"})
        for n, (val, test) in enumerate(epochs, start=1):
            folder.append_metrics(event_record(val_epoch(n, val, test)))
        folder.write_summary({"status": status, "epochs_completed": len(epochs),
                              "best_acc": max(v for v, _ in epochs)})  # fmt: skip


async def test_the_sweep_screen_shows_a_searchs_trials_and_its_best_so_far(
    tmp_path: Path,
) -> None:
    root = tmp_path / "checkpoints"
    write_search(root)
    app = create_app(root)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.push_screen(SweepScreen("tune"))
        screen = app.screen
        table = screen.query_one("#trials", DataTable)
        await wait_for(pilot, lambda: table.row_count == 3)
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(3)]
        assert [row[:4] for row in rows] == [  # best validation accuracy first, pruned last
            ["t3", "completed", "90.00%", "88.00%"],
            ["t1", "completed", "80.00%", "79.00%"],
            ["t2", "pruned", "40.00%", "41.00%"],
        ]
        assert rows[0][5] == "lr=0.003 batch_size=32"
        assert table.display and not screen.query_one("#leaderboard", DataTable).display
        plot = screen.query_one("#search-best-plot", MetricPlot)
        assert plot.series["best"] == ([1.0, 2.0, 3.0], [80.0, 80.0, 90.0])
        info = str(screen.query_one("#sweep-info", Label).render())
        assert "3/3 trials finished, 1 pruned" in info
        title = str(screen.query_one("#sweep-title", Label).render())
        assert "search tune" in title and "tpe, 3 trials, prune median" in title


def test_a_searchs_report_ranks_its_trials_by_validation_and_plots_them(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    write_search(root)
    out = tmp_path / "tune.md"
    result = CliRunner().invoke(app, ["report", "tune", "--checkpoints", str(root), "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "## Trials" in text and "## Leaderboard" not in text
    trials = text.split("## Trials", 1)[1]
    assert trials.index("| t3 | completed | **90.00%** | 88.00%") < trials.index("| t1 |")
    assert "| t2 | pruned | **40.00%** |" in trials
    assert "3/3 trials finished (2 completed, 1 pruned), best val 90.00%" in text
    assert "<svg" in (tmp_path / "tune-figures" / "search.svg").read_text()


@pytest.mark.slow
@pytest.mark.system
def test_with_seeds_a_trial_is_judged_on_their_mean_and_pruned_together(
    in_tmp_cwd: Path, fashion_dir: Path
) -> None:
    command = sweep_command("fashion-cnn", *BAD_OR_GOOD, "--search", "random", "--trials", "3",
                            "--prune", "median", "--seeds", "0-1", "--jobs", "2", "--epochs",
                            "2", "--data-dir", str(fashion_dir), *QUICK, "--name", "two",
                            "--no-ui")  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    root = in_tmp_cwd / "checkpoints"
    trials = shown("two")["trials"]
    assert isinstance(trials, list) and len(trials) == 3
    for trial in trials:
        runs = [root / run for run in trial["runs"]]
        assert [run.name for run in runs] == [f"two-c{trial['trial']}-s{s}" for s in (0, 1)]
        statuses = {json.loads((run / "summary.json").read_text())["status"] for run in runs}
        assert statuses == {trial["status"]}  # the seeds share every verdict
        bests = []
        for run in runs:
            lines = (run / "metrics.jsonl").read_text().splitlines()
            bests.append(max(r["val_acc"] for r in map(json.loads, lines)
                             if r.get("event") == "epoch_ended"))  # fmt: skip
        assert trial["val_acc"] == pytest.approx(sum(bests) / 2)  # judged on the mean
    assert "pruned" in {trial["status"] for trial in trials}


def test_the_curves_of_a_scrambled_run_are_its_scrambled_test_sets(tmp_path: Path) -> None:
    """A run trained on scrambled images is plotted on the Sweep and Curves screens by its
    scrambled test accuracy and loss (its plain test images are near chance)."""
    from dataclasses import replace

    from aml_tui.core.experiments import build_config
    from aml_tui.core.runstore.run_curves import CurvesReader

    folders = {}
    for name, scrambled in (("plain", False), ("scr", True)):
        folder = RunFolder.create(tmp_path, "fashion-cnn", name)
        folder.write_config(build_config("fashion-cnn", name=name, scrambled=scrambled), {})
        epoch = replace(val_epoch(1, 0.9, 0.3), scrambled_test_acc=0.88, scrambled_test_loss=0.2)
        folder.append_metrics(event_record(epoch))
        folders[name] = folder.path
    plain, scr = CurvesReader().read([folders["plain"], folders["scr"]])
    assert (plain.points[0].test_acc, plain.points[0].test_loss) == (0.3, 0.5)
    assert (scr.points[0].test_acc, scr.points[0].test_loss) == (0.88, 0.2)
    from aml_tui.tui.widgets.curves import plot_title  # the plots say which test set they draw

    assert (plain.scrambled, scr.scrambled) == (False, True)
    assert plot_title("acc", [plain]) == "test accuracy % by epoch"
    assert plot_title("acc", [scr]) == "scrambled test accuracy % by epoch"
    assert plot_title("loss", [plain, scr]) == "test / scrambled test loss"
