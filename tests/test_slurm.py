"""`aml-tui sweep --launcher slurm`: the jobs' sbatch options and script, the command inside
a job (torchrun for several GPUs), the launch record, the options' errors, and real sweeps on
a real single-node Slurm (tests/slurm_cluster.py): --jobs respected, a warned or requeued
job saving and resuming with no epoch twice, a driver killed and carried on without
submitting any job twice, a stopped sweep cancelling its jobs, `watch` following a job's run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from slurm_cluster import Cluster, start_cluster
from test_tui_sweeps import wait_for as wait_for_app
from textual.widgets import DataTable
from typer.testing import CliRunner

from aml_tui.cli import app
from aml_tui.core.runstore.sweep_jobs import (
    RunJobs,
    SlurmSettings,
    SweepLaunch,
    launch_path,
    read_launch,
    write_launch,
)
from aml_tui.core.runstore.sweeps import create_sweep, plan_sweep
from aml_tui.errors import ConfigError
from aml_tui.launch.filesystems import local_only
from aml_tui.launch.slurm import job_script, sbatch_command
from aml_tui.launch.slurm_job import job_command, job_env
from aml_tui.tui.app import create_app
from aml_tui.tui.screens.sweep import SweepScreen
from aml_tui.tui.screens.watch import WatchScreen

runner = CliRunner()
QUICK = ["--train-limit", "200", "--test-limit", "50", "--offline", "--device", "cpu"]


# --- what is submitted, without a cluster -------------------------------------------------------


def test_a_job_asks_for_one_task_and_its_cores_and_only_the_resources_given(
    tmp_path: Path,
) -> None:
    log = tmp_path / "r.log"
    bare = sbatch_command(SlurmSettings(), "s-c1-s0", tmp_path, log)
    assert bare == [
        "sbatch", "--parsable", "--job-name=aml-tui.s-c1-s0", f"--chdir={tmp_path}",
        f"--output={log}", "--open-mode=append", "--ntasks=1", "--cpus-per-task=1",
        "--requeue", "--signal=B:USR2@90",
    ]  # fmt: skip
    full = SlurmSettings("gpu", "2:00:00", 4, 8, "16G", ("--account=X", "--qos=low"))
    extra = sbatch_command(full, "s-c1-s0", tmp_path, log)[len(bare) - 3 :]
    assert extra == ["--cpus-per-task=8", "--requeue", "--signal=B:USR2@90", "--gres=gpu:4",
                     "--mem=16G", "--partition=gpu", "--time=2:00:00", "--account=X",
                     "--qos=low"]  # fmt: skip
    script = job_script(tmp_path / "my runs", "s", "s-c1-s0")
    assert script.startswith("#!/bin/sh\n")
    runs = f"'{tmp_path}/my runs'"
    assert f"exec {sys.executable} -m aml_tui.launch.slurm_job {runs} s s-c1-s0\n" in script


def test_several_gpus_run_torchrun_one_rank_per_gpu_and_one_gpu_a_plain_process(
    tmp_path: Path,
) -> None:
    sweep = plan_sweep("fashion-cnn", {"epochs": 2, "offline": True}, {}, [0], name="g")
    run = sweep.runs[0]
    four = job_command(tmp_path, sweep, run, "start", gpus=4)
    torchrun = Path(sys.executable).with_name("torchrun")
    head = [str(torchrun)] if torchrun.exists() else [sys.executable, "-m", "torch.distributed.run"]
    assert four[: len(head) + 2] == [*head, "--standalone", "--nproc_per_node=4"]
    rest = four[len(head) + 2 :]
    assert rest[:5] == ["-m", "aml_tui", "train", "fashion-cnn", "--no-ui"]
    assert "--name" in rest and rest[rest.index("--name") + 1] == "g-c1-s0"
    assert rest[rest.index("--checkpoints") + 1] == str(tmp_path)
    resumed = job_command(tmp_path, sweep, run, "resume", gpus=4)
    assert resumed[len(head) + 2 :] == ["-m", "aml_tui", "train", "--resume", "g-c1-s0",
                                        "--no-ui", "--checkpoints", str(tmp_path)]  # fmt: skip
    one = job_command(tmp_path, sweep, run, "resume", gpus=1)
    assert one == [sys.executable, "-m", "aml_tui", "train", "--resume", "g-c1-s0", "--no-ui",
                   "--checkpoints", str(tmp_path)]  # fmt: skip
    env = job_env(sweep, cpus=8, gpus=4)
    assert (env["AML_TUI_SWEEP"], env["OMP_NUM_THREADS"], env["AML_TUI_THREADS"]) == ("g", "2", "2")
    assert "AML_TUI_PRUNING" not in env  # a grid's runs wait for no verdict


def test_the_launch_record_round_trips_and_a_lying_one_is_one_line(tmp_path: Path) -> None:
    assert read_launch(tmp_path, "none") == SweepLaunch()  # no record: local processes
    launch = SweepLaunch("slurm", SlurmSettings("gpu", "90", 1, 2, "8G", ("--account=X",)))
    launch.jobs["s-c1-s0"] = RunJobs(["12", "15"], "RUNNING", "node3")
    write_launch(tmp_path, "s", launch)
    assert read_launch(tmp_path, "s") == launch
    for text in ("[]", '{"launcher": "pbs"}', '{"launcher": "slurm", "slurm": {"gpus": "x"}}',
                 '{"launcher": "slurm", "jobs": {"r": {"ids": ["1; rm"]}}}', "{"):  # fmt: skip
        launch_path(tmp_path, "s").write_text(text)
        with pytest.raises(ConfigError, match=r"launch record .*launch\.json"):
            read_launch(tmp_path, "s")


def test_slurm_options_are_checked_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "runs"
    base = ["sweep", "fashion-cnn", "--no-ui", "--checkpoints", str(root), "--name", "x"]
    cases = {
        ("--slurm-gpus", "2"): "--slurm-gpus needs --launcher slurm",
        ("--launcher", "pbs"): "--launcher must be local or slurm",
        ("--launcher", "slurm", "--slurm-time", "soon"): "--slurm-time 'soon' is not a time",
        ("--launcher", "slurm", "--slurm-mem", "lots"): "--slurm-mem 'lots' is not an amount",
        ("--launcher", "slurm", "--slurm-cpus", "0"): "--slurm-cpus '0' is not from 1",
        ("--launcher", "slurm", "--slurm-arg", "account=X"): "--slurm-arg 'account=X'",
    }
    for args, message in cases.items():
        result = runner.invoke(app, [*base, *args])
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no sbatch here
    result = runner.invoke(app, [*base, "--launcher", "slurm"])
    assert result.exit_code == 2 and "needs Slurm's sbatch, which is not on PATH" in result.output
    assert not root.exists()


def test_a_folder_in_memory_or_under_tmp_is_local_to_this_machine(tmp_path: Path) -> None:
    assert local_only("/dev/shm") is not None
    assert "/tmp" in (local_only("/tmp/x/y") or "") or "tmpfs" in (local_only("/tmp/x/y") or "")
    assert local_only("/") is None or Path("/").resolve() == Path("/tmp")


async def test_the_sweep_screen_gives_each_runs_job_state_and_node(tmp_path: Path) -> None:
    sweep = create_sweep(tmp_path, plan_sweep("fashion-cnn", {"offline": True}, {}, [0, 1, 2],
                                              name="sl"))  # fmt: skip
    launch = SweepLaunch("slurm", SlurmSettings(cpus=2))
    launch.jobs["sl-c1-s0"] = RunJobs(["41", "57"], "RUNNING", "node7")  # requeued once
    launch.jobs["sl-c1-s1"] = RunJobs(["42"], "PENDING", "")
    write_launch(tmp_path, "sl", launch)
    local = create_sweep(tmp_path, plan_sweep("fashion-cnn", {}, {}, [0], name="here"))
    app = create_app(tmp_path)
    async with app.run_test(size=(80, 30)) as pilot:
        screen = SweepScreen(sweep.sweep_id)
        await app.push_screen(screen)
        table = screen.query_one("#sweep-jobs", DataTable)
        await wait_for_app(pilot, lambda: table.row_count == 3)
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(3)]
        assert rows == [["sl-c1-s0", "pending", "57 (+1)", "RUNNING", "node7"],
                        ["sl-c1-s1", "pending", "42", "PENDING", "-"],
                        ["sl-c1-s2", "pending", "-", "-", "-"]]  # fmt: skip
        assert table.display and table.size.height >= 3
        other = SweepScreen(local.sweep_id)  # processes here: no jobs to show
        await app.push_screen(other)
        await wait_for_app(pilot, lambda: other.progress is not None)
        assert not other.query_one("#sweep-jobs", DataTable).display


# --- real sweeps on a real Slurm ----------------------------------------------------------------


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    yield from start_cluster(tmp_path_factory.mktemp("slurm"))


def sweep_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "aml_tui", "sweep", *args]


def events(run: Path, event: str) -> list[dict[str, object]]:
    lines = run.joinpath("metrics.jsonl").read_text().splitlines()
    return [row for line in lines if (row := json.loads(line)).get("event") == event]


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def sweep_env(cluster: Cluster) -> dict[str, str]:
    env = dict(cluster.env)
    for name in ("AML_TUI_DATA", "AML_TUI_OFFLINE"):
        env.pop(name, None)
    return env


def ours(cluster: Cluster, sweep_id: str) -> list[tuple[str, str, str]]:
    return [job for job in cluster.jobs() if job[1].startswith(f"aml-tui.{sweep_id}-")]


@pytest.mark.slow
@pytest.mark.system
def test_a_grid_on_slurm_completes_with_never_more_than_jobs_at_once(
    cluster: Cluster, tmp_path: Path, fashion_dir: Path
) -> None:
    root = tmp_path / "runs"
    command = sweep_command("fashion-cnn", "--lr", "0.001,0.003,0.01", "--epochs", "1",
                            "--data-dir", str(fashion_dir), *QUICK, "--name", "grid",
                            "--launcher", "slurm", "--jobs", "2", "--checkpoints", str(root),
                            "--no-ui")  # fmt: skip
    process = subprocess.Popen(command, env=sweep_env(cluster), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)  # fmt: skip
    most = 0
    while process.poll() is None:
        alive = [job for job in ours(cluster, "grid") if job[2] in ("PENDING", "RUNNING")]
        most = max(most, len(alive))
        time.sleep(0.3)
    output = process.communicate()[0]
    assert process.returncode == 0, output + cluster.logs()
    assert most == 2, f"at most {most} jobs at once:\n{output}"
    assert "warning: --checkpoints" in output  # under /tmp: the nodes may not see it
    jobs = ours(cluster, "grid")
    assert sorted(name for _, name, _ in jobs) == [f"aml-tui.grid-c{k}-s0" for k in (1, 2, 3)]
    assert {state for *_, state in jobs} == {"COMPLETED"}
    launch = read_launch(root, "grid")
    for job_id, name, _ in jobs:
        recorded = launch.jobs[name.removeprefix("aml-tui.")]
        assert (recorded.ids, recorded.state, recorded.node) == ([job_id], "COMPLETED", "localhost")
        summary = json.loads((root / name.removeprefix("aml-tui.") / "summary.json").read_text())
        assert summary["status"] == "completed"
    shown = subprocess.run(sweep_command("show", "grid", "--checkpoints", str(root)),
                           env=sweep_env(cluster), capture_output=True, text=True)  # fmt: skip
    assert "COMPLETED" in shown.stdout and "localhost" in shown.stdout, shown.stdout
    as_json = json.loads(subprocess.run(
        sweep_command("show", "grid", "--json", "--checkpoints", str(root)),
        env=sweep_env(cluster), capture_output=True, text=True).stdout)  # fmt: skip
    assert {run["run_id"]: run["job"]["id"] for run in as_json["runs"]} == {
        name.removeprefix("aml-tui."): job_id for job_id, name, _ in jobs
    }


def start_now(cluster: Cluster, job_id: str) -> None:
    """Slurm holds a requeued job back a while (its begin time): let it start soon. Not in
    the same second: a start then finds the job's credential of its last start revoked
    ("Killing non-startable batch job: Job credential revoked"), which is why Slurm waits."""
    wait_for(lambda: cluster.run("squeue", "-h", "-j", job_id, "-o", "%T").stdout.strip()
             == "PENDING", "the requeued job to be pending")  # fmt: skip
    update = cluster.run("scontrol", "update", f"JobId={job_id}", "StartTime=now+3")
    assert update.returncode == 0, update.stdout + update.stderr


@pytest.mark.slow
@pytest.mark.system
def test_a_warned_or_requeued_job_saves_and_resumes_with_no_epoch_twice(
    cluster: Cluster, tmp_path: Path, fashion_dir: Path
) -> None:
    root = tmp_path / "runs"
    command = sweep_command("fashion-cnn", "--epochs", "40", "--batch-size", "16",
                            "--data-dir", str(fashion_dir), *QUICK, "--name", "pre",
                            "--launcher", "slurm", "--checkpoints", str(root),
                            "--no-ui")  # fmt: skip
    process = subprocess.Popen(command, env=sweep_env(cluster), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)  # fmt: skip
    run = root / "pre-c1-s0"
    try:
        wait_for(lambda: (run / "metrics.jsonl").exists() and len(events(run, "epoch_ended")) >= 1,
                 "the first epoch")  # fmt: skip
        ((job_id, _, _),) = ours(cluster, "pre")
        # Slurm's warning before the time limit, to the job's shell and its children.
        assert cluster.run("scancel", "--batch", "--signal=USR2", job_id).returncode == 0
        start_now(cluster, job_id)
        wait_for(lambda: len(events(run, "run_started")) == 2
                 and len(events(run, "epoch_ended")) > len(events(run, "run_finished")) + 2,
                 "the resumed run's epochs")  # fmt: skip
        # A requeue (preemption does the same): SIGTERM to the job, which Slurm queues again.
        assert cluster.run("scontrol", "requeue", job_id).returncode == 0
        start_now(cluster, job_id)
        output = process.communicate(timeout=300)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output + cluster.logs()
    epochs = [row["epoch"] for row in events(run, "epoch_ended")]
    assert epochs == list(range(1, 41)), epochs  # every epoch once, in order
    assert len(events(run, "run_started")) == 3
    assert [name for _, name, _ in ours(cluster, "pre")] == ["aml-tui.pre-c1-s0"]  # one job
    log = (root / ".sweeps" / "pre" / "pre-c1-s0.log").read_text()
    assert "requeued to resume" in log and log.count(": resume pre-c1-s0") == 2
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["status"], summary["epochs_completed"]) == ("completed", 40)


@pytest.mark.slow
@pytest.mark.system
def test_a_killed_driver_carried_on_submits_no_job_twice_and_a_stop_cancels_the_jobs(
    cluster: Cluster, tmp_path: Path, fashion_dir: Path
) -> None:
    root = tmp_path / "runs"
    env = sweep_env(cluster)
    command = sweep_command("fashion-cnn", "--seeds", "0-2", "--epochs", "30", "--batch-size",
                            "16", "--data-dir", str(fashion_dir), *QUICK, "--name", "k",
                            "--launcher", "slurm", "--jobs", "2", "--checkpoints", str(root),
                            "--no-ui")  # fmt: skip
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)  # fmt: skip
    wait_for(lambda: len(ours(cluster, "k")) == 2, "two jobs submitted")
    first.send_signal(signal.SIGKILL)
    first.communicate()
    again = subprocess.Popen(sweep_command("--resume", "k", "--no-ui", "--checkpoints", str(root)),
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)  # fmt: skip
    wait_for(lambda: len(ours(cluster, "k")) == 3, "the third job")
    third = root / "k-c1-s2"
    wait_for(lambda: (third / "metrics.jsonl").exists() and bool(events(third, "epoch_ended")),
             "the third run's first epoch")  # fmt: skip
    stop = subprocess.run(sweep_command("stop", "k", "--checkpoints", str(root)), env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert stop.returncode == 0 and "stopping sweep k: its driver" in stop.stdout, stop.stderr
    output = again.communicate(timeout=120)[0]  # its jobs cancelled, its runs saved
    assert again.returncode == 130, output
    assert output.count("follow  k-c1-s") >= 1 and "submit  k-c1-s2" in output, output
    jobs = ours(cluster, "k")
    assert sorted(name for _, name, _ in jobs) == [f"aml-tui.k-c1-s{s}" for s in range(3)]
    launch = read_launch(root, "k")
    assert sorted(len(launch.jobs[f"k-c1-s{s}"].ids) for s in range(3)) == [1, 1, 1]
    for seed in range(3):
        summary = json.loads((root / f"k-c1-s{seed}" / "summary.json").read_text())
        assert summary["status"] in ("completed", "interrupted"), summary
    assert "CANCELLED" in {state for *_, state in jobs}
    # A driver killed again, and then a stop: no driver, so the jobs are cancelled directly.
    resume = sweep_command("--resume", "k", "--no-ui", "--checkpoints", str(root))
    third_driver = subprocess.Popen(resume, env=env, stdout=subprocess.DEVNULL)
    wait_for(lambda: len(ours(cluster, "k")) > 3, "jobs submitted again")
    third_driver.send_signal(signal.SIGKILL)
    third_driver.wait()
    stop = subprocess.run(sweep_command("stop", "k", "--checkpoints", str(root)), env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert stop.returncode == 0 and "cancelled job" in stop.stdout, stop.stdout + stop.stderr
    alive = ("PENDING", "RUNNING", "COMPLETING")
    wait_for(lambda: all(job[2] not in alive for job in ours(cluster, "k")), "the jobs to end")
    last = subprocess.run(resume, env=env, capture_output=True, text=True, timeout=300)
    assert last.returncode == 0, last.stdout + last.stderr + cluster.logs()
    for seed in range(3):
        run = root / f"k-c1-s{seed}"
        assert [row["epoch"] for row in events(run, "epoch_ended")] == list(range(1, 31))
        assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    assert os.path.exists(launch_path(root, "k"))


@pytest.mark.system
async def test_watch_follows_a_run_that_a_slurm_job_trains(
    cluster: Cluster, tmp_path: Path, fashion_dir: Path
) -> None:
    root = tmp_path / "runs"
    command = sweep_command("fashion-cnn", "--epochs", "3", "--batch-size", "16",
                            "--data-dir", str(fashion_dir), *QUICK, "--name", "w",
                            "--launcher", "slurm", "--checkpoints", str(root),
                            "--no-ui")  # fmt: skip
    process = subprocess.Popen(command, env=sweep_env(cluster), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)  # fmt: skip
    run = root / "w-c1-s0"
    try:
        wait_for(lambda: (run / "config.toml").exists(), "the job to start the run")
        app = create_app(root, watch=run)
        async with app.run_test(size=(80, 24)) as pilot:
            deadline = time.monotonic() + 120
            while not (isinstance(app.screen, WatchScreen) and app.screen.status == "completed"):
                assert time.monotonic() < deadline, "the watch view never saw the run end"
                await pilot.pause(0.1)
            log = "\n".join(app.screen.query_one("#train-log").lines)  # type: ignore[attr-defined]
            assert log.count("epoch ") >= 3 and "run completed" in log
        output = process.communicate(timeout=120)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output


@pytest.mark.slow
@pytest.mark.system
def test_a_pruning_search_on_slurm_judges_each_job_through_its_run_folder(
    cluster: Cluster, tmp_path: Path, fashion_dir: Path
) -> None:
    """A search's runs are Slurm jobs too: each waits for its verdict after an epoch (the
    login node's sweep process writes it into the run folder), a pruned one ends pruned, and
    the count of trials is exact."""
    root = tmp_path / "runs"
    command = sweep_command("fashion-cnn", "--lr", "0.003,1e-6", "--search", "random",
                            "--trials", "3", "--prune", "median", "--epochs", "2",
                            "--data-dir", str(fashion_dir), *QUICK, "--name", "srch",
                            "--launcher", "slurm", "--jobs", "2", "--checkpoints", str(root),
                            "--no-ui")  # fmt: skip
    done = subprocess.run(command, env=sweep_env(cluster), capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr + cluster.logs()
    assert "search srch: random, 3 trials" in done.stdout and "submit" in done.stdout
    shown = json.loads(subprocess.run(
        sweep_command("show", "srch", "--json", "--checkpoints", str(root)),
        env=sweep_env(cluster), capture_output=True, text=True).stdout)  # fmt: skip
    trials = shown["trials"]
    assert len(trials) == 3 and {t["status"] for t in trials} <= {"completed", "pruned"}
    jobs = ours(cluster, "srch")
    runs = [run["run_id"] for run in shown["runs"]]
    assert sorted(name.removeprefix("aml-tui.") for _, name, _ in jobs) == sorted(runs)
    assert all(run["job"]["state"] == "COMPLETED" for run in shown["runs"])
    for trial in trials:  # every epoch but the last was reported and judged
        run = root / trial["runs"][0]
        assert json.loads((run / "search_verdict.json").read_text())["epoch"] == 1
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == trial["status"]
        assert len(events(run, "epoch_ended")) == (1 if trial["status"] == "pruned" else 2)
