"""Headless sweeps for `aml-tui sweep --no-ui`: each run an ordinary `train --no-ui` process.

A run of a sweep is the same command a user could type (`python -m aml_tui train ... --no-ui
--name RUN`, or `train --resume RUN --no-ui` for an interrupted one), so its folder is like
any other's. Up to `jobs` run at once: on CUDA each job slot has its own GPU (cuda:i), on
the CPU each job gets its share of the cores (torch threads, OMP and MKL alike), so the
thread pools of two jobs do not fight over the same cores.

The children run in sessions of their own, so a Ctrl+C at the terminal reaches this process
only; it forwards the signal once to each child (which saves last.pt and ends interrupted),
waits for them, and exits 128 + the signal. A second Ctrl+C is forwarded too: the children
quit at once, as `train` does. Each child's output goes to a log beside the sweep record.

One runner drives a sweep at a time (it holds the sweep's claim, core/claim.py), and each
run's folder is looked at again just before the run starts: the plan is as old as the runs
before it. A run killed by a signal (SIGKILL: the kernel's out-of-memory killer, say) is
a failed run, exit code 2, like a run that ran out of memory.

It imports torch (to count GPUs): the command line imports it inside the sweep command.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path
from types import FrameType
from typing import IO

import torch

from aml_tui.config import TrainConfig
from aml_tui.core.runstore.followed import Followed
from aml_tui.core.runstore.leaderboard import sweep_results
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.runstore.sweeps import (
    SWEEP_ENV,
    SWEEPS_FOLDER,
    THREADS_ENV,
    RunAction,
    Sweep,
    SweepRun,
    check_jobs,
    claim_driver,
    remove_unsaved,
    run_action,
)
from aml_tui.core.runstore.verdicts import PRUNING_ENV
from aml_tui.core.search.driver import SearchDriver
from aml_tui.errors import CheckpointError, ConfigError, first_line
from aml_tui.render.search import leaderboard_lines, run_result
from aml_tui.terminal import stop_signal_numbers, stopped_exit_code

POLL_S = 0.2
"""How often the runner looks for runs that ended."""

KILLED_EXIT = 2
"""The sweep's exit code when a run died of a signal it was not sent by the sweep (SIGKILL
from the out-of-memory killer, say): a failure to fix, as out of memory is for `train`."""


@dataclass
class Job:
    """A run being trained by a child process in one job slot."""

    run: SweepRun
    slot: int
    process: subprocess.Popen[bytes] | Followed
    log: IO[bytes]
    started: float


def train_arguments(config: TrainConfig) -> list[str]:
    """The `train` options that give `config` (options are named after the fields; a flag
    is written only where it differs from the field's default)."""
    args: list[str] = []
    for field in fields(TrainConfig):
        value = getattr(config, field.name)
        option = "--" + field.name.replace("_", "-")
        if field.name == "experiment" or value is None:
            continue
        if isinstance(value, bool):
            if value != field.default:
                args.append(option if value else "--no-" + option[2:])
        else:
            args += [option, str(value)]
    return args


def cpu_cores() -> int:
    """Cores this process may run on (its affinity, where the system says)."""
    with contextlib.suppress(AttributeError, OSError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class SweepRunner:
    """Runs a sweep's runs that are not done, `jobs` at once, in child processes."""

    def __init__(self, root: Path, sweep: Sweep, jobs: int) -> None:
        check_jobs(jobs)
        search = sweep.search
        if search is not None and search.prune != "none" and jobs < len(sweep.seeds):
            raise ConfigError(  # a trial's seeds are judged together: they train side by side
                f"search {sweep.sweep_id} prunes on the mean of {len(sweep.seeds)} seeds: carry "
                f"it on with --jobs {len(sweep.seeds)} or more"
            )
        self.root = Path(os.path.abspath(root))
        self.sweep = sweep
        self.jobs = jobs
        self.logs = self.root / SWEEPS_FOLDER / sweep.sweep_id
        device = str(sweep.options.get("device", "auto"))
        uses_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
        self.gpus = torch.cuda.device_count() if uses_cuda else 0
        self.threads = max(1, cpu_cores() // jobs)
        self.stop = threading.Event()
        self.received: list[int] = []
        self.active: list[Job] = []
        self.failure = 0
        self.driver: SearchDriver | None = None
        """A search's driver (core/search/driver.py), made once the sweep is claimed."""

    def plan(self) -> list[tuple[SweepRun, RunAction]]:
        """What to do with each run; another process training one of them is an error."""
        actions = [(run, run_action(RunFolder(self.root / run.run_id))) for run in self.sweep.runs]
        busy = [run.run_id for run, action in actions if action == "running"]
        if busy and self.sweep.search is None:  # a search follows it (a killed sweep's)
            raise ConfigError(
                f"run {busy[0]} of sweep {self.sweep.sweep_id} is being trained right now: "
                "stop it (or the sweep that runs it) before carrying the sweep on"
            )
        return actions

    def run(self) -> int:
        """Train every run not done, holding the sweep's claim (SweepBusyError when another
        process carries it on). Returns 0 when all completed, 128 + the signal when stopped,
        else the exit code of the first run that failed (KILLED_EXIT for one killed), or 2
        when runs that failed before are left as they are."""
        claim = claim_driver(self.root, self.sweep.sweep_id)
        try:
            if self.sweep.search is not None:
                self.driver = SearchDriver(self.root, self.sweep, self.logs)
            return self.drive()
        finally:
            claim.release()

    def drive(self) -> int:
        todo = [run for run, action in self.plan() if action != "done"]
        total = len(self.sweep.runs)
        where = (
            f"{min(self.jobs, self.gpus)} GPU(s)" if self.gpus else f"cpu, {self.threads} thread(s)"
        )
        if self.driver is None:
            say(
                f"sweep {self.sweep.sweep_id}: {total} runs, {total - len(todo)} done, "
                f"{len(todo)} to train, {self.jobs} at once ({where}) -> {self.root}"
            )
        else:
            todo = []  # the driver hands out the runs, trial by trial
            search = self.driver.search
            say(
                f"search {self.sweep.sweep_id}: {search.method}, {search.trials} trials "
                f"({self.driver.finished} finished), prune {search.prune}, seeds "
                f"{len(self.sweep.seeds)}, {self.jobs} at once ({where}) -> {self.root}"
            )
        self.logs.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with self.forward_signals():
            while (self.more(todo) and not self.stop.is_set()) or self.active:
                while len(self.active) < self.jobs and not self.stop.is_set():
                    runs = self.next_runs(todo)
                    if not runs:
                        break
                    for run in runs:
                        self.start(run)
                self.stop.wait(POLL_S)
                self.reap()
                self.look_at_search()
        return self.finish(time.monotonic() - started)

    def more(self, todo: list[SweepRun]) -> bool:
        """Whether runs are left to start."""
        return self.driver.has_more() if self.driver is not None else bool(todo)

    def next_runs(self, todo: list[SweepRun]) -> list[SweepRun]:
        """The runs to start next in the free slots: the grid's next, or the search's."""
        if self.driver is not None:
            return self.driver.next_runs(self.jobs - len(self.active))
        return [todo.pop(0)] if todo else []

    def look_at_search(self) -> None:
        """A search's verdicts on the epochs its runs reported, and its trials that ended."""
        if self.driver is None:
            return
        self.driver.tick()
        for line in self.driver.lines:
            say(line)
        self.driver.lines.clear()

    def start(self, run: SweepRun) -> None:
        """Start `run` in the free job slot with the lowest number, as its folder is now."""
        action = self.action_now(run)
        if action is None:
            return
        slot = self.free_slot()
        command = [sys.executable, "-m", "aml_tui", "train"]
        if action == "resume":
            command += ["--resume", run.run_id, "--no-ui", "--checkpoints", str(self.root)]
        else:  # its folder is the one this runner looks in, whatever the record says
            config = replace(self.sweep.run_config(run), checkpoints=str(self.root))
            device = f"cuda:{slot % self.gpus}" if self.gpus else config.device
            command += [config.experiment, "--no-ui", *train_arguments(config)]
            command += ["--device", device]
        env = {**os.environ, SWEEP_ENV: self.sweep.sweep_id}
        search = self.sweep.search
        if search is not None and search.prune != "none":
            env[PRUNING_ENV] = "1"  # the run waits for a verdict after each epoch
        for name in (THREADS_ENV, "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(self.threads)
        log = (self.logs / f"{run.run_id}.log").open("ab")
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        self.active.append(Job(run, slot, process, log, time.monotonic()))
        verb = {"resume": "resume", "restart": "restart"}.get(action, "start")
        say(f"{verb:<8}{run.run_id}" + (f"  (cuda:{slot % self.gpus})" if self.gpus else ""))

    def free_slot(self) -> int:
        return min(set(range(self.jobs)) - {job.slot for job in self.active})

    def follow(self, run: SweepRun) -> None:
        """Follow `run`, which another process trains (one a killed sweep process left), in
        a job slot until it ends, as if this runner had started it."""
        log = (self.logs / f"{run.run_id}.log").open("ab")
        process = Followed(RunFolder(self.root / run.run_id))
        self.active.append(Job(run, self.free_slot(), process, log, time.monotonic()))
        say(f"follow  {run.run_id}  (trained by another process: a stopped sweep's)")

    def action_now(self, run: SweepRun) -> RunAction | None:
        """What to do with `run` now (None: nothing): the plan was made before the runs
        ahead of it, and another process may have trained it since. A folder to restart is
        deleted here, under the run's claim and after a last look (core: remove_unsaved)."""
        folder = RunFolder(self.root / run.run_id)
        try:
            action = run_action(folder)
            if action == "restart":
                if remove_unsaved(folder):
                    return action
                action = run_action(folder)  # it saved something meanwhile
        except CheckpointError as error:
            self.failed(run, first_line(error))
            return None
        if action == "done":
            say(f"done    {run.run_id}  (already)")
        elif action == "running" and self.driver is not None:
            self.follow(run)
        elif action == "running":
            self.failed(run, "another process trains it right now: stop it, then --resume")
        elif action == "restart":  # kept by remove_unsaved, yet nothing to resume from
            self.failed(run, "its folder has a summary.json but no last.pt: look at it, then "
                        "delete it to train the run again")  # fmt: skip
        else:
            return action
        return None

    def failed(self, run: SweepRun, why: str) -> None:
        """`run` could not start: the sweep goes on, and ends with exit code 2."""
        self.failure = self.failure or 2
        say(f"failed  {run.run_id}: {why}")

    def reap(self) -> None:
        """Note the runs that ended."""
        for job in [job for job in self.active if job.process.poll() is not None]:
            self.active.remove(job)
            job.log.close()
            code = job.process.poll()
            assert code is not None  # picked above as ended
            seconds = time.monotonic() - job.started
            if code == 0:
                verb, result = run_result(self.root / job.run.run_id)
                say(f"{verb:<8}{job.run.run_id}  ({seconds:.1f} s){result}")
                continue
            if self.stop.is_set() and (code < 0 or code >= 128):  # stopped by our signal
                say(f"stopped {job.run.run_id}  (saved: carry on with --resume)")
                continue
            if code < 0:  # a signal the sweep did not send: SIGKILL, say
                self.failure = self.failure or KILLED_EXIT
                say(
                    f"failed  {job.run.run_id}  (killed by {signal_name(-code)}: out of "
                    "memory, or killed by hand?): carry the sweep on with --resume"
                )
                continue
            self.failure = self.failure or code
            say(f"failed  {job.run.run_id}  (exit {code}): {last_line(job.log.name)}")
            if not (self.root / job.run.run_id).is_dir():  # it failed before training: all would
                say("not starting more runs: fix the problem above, then carry on with --resume")
                self.stop.set()

    def finish(self, seconds: float) -> int:
        if self.driver is not None:
            self.sweep = self.driver.sweep  # with the trials it asked
        results = sweep_results(self.root, self.sweep)
        completed = sum(r.status == "completed" for r in results)
        for line in leaderboard_lines(self.root, self.sweep, results):
            say(line)
        if self.driver is not None:
            say(self.driver.tidy())
            finished, trials = self.driver.finished, self.driver.search.trials
            say(
                f"search {self.sweep.sweep_id}: {finished}/{trials} trials finished "
                f"({seconds:.1f} s); trials: aml-tui sweep show {self.sweep.sweep_id}"
            )
        else:
            say(
                f"sweep {self.sweep.sweep_id}: {completed}/{len(results)} runs completed "
                f"({seconds:.1f} s); leaderboard: aml-tui sweep show {self.sweep.sweep_id}"
            )
        if self.received:
            say(f"carry on with: aml-tui sweep --resume {self.sweep.sweep_id} --no-ui")
            return stopped_exit_code(self.received[0])
        # Runs that failed in an earlier session are not trained again: the sweep did not
        # complete, for a reason the user can fix (their logs say), so 2, as for a failure now.
        if self.driver is not None:
            done = self.driver.finished == self.driver.search.trials
            return self.failure if self.failure else (0 if done else 2)
        return self.failure if self.failure else (0 if completed == len(results) else 2)

    @contextlib.contextmanager
    def forward_signals(self) -> Iterator[None]:
        """Inside, the stop signals (terminal.STOP_SIGNALS) stop the sweep (no new runs start)
        and are passed on to the running runs. Only the main thread can take signals:
        elsewhere nothing is installed. The old handlers come back on the way out."""

        def on_signal(signum: int, frame: FrameType | None) -> None:
            if not self.received:
                self.received.append(signum)
                say(f"{signal.Signals(signum).name}: stopping the runs after their batch")
            self.stop.set()
            for job in self.active:
                with contextlib.suppress(ProcessLookupError):
                    job.process.send_signal(signum)

        previous = {}
        if threading.current_thread() is threading.main_thread():
            for number in stop_signal_numbers():
                previous[number] = signal.signal(number, on_signal)
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def last_line(path: str) -> str:
    """The last non-empty line a run wrote (its error, when it failed)."""
    try:
        lines = [line for line in Path(path).read_text(errors="replace").splitlines() if line]
    except OSError:
        return "(no log)"
    return lines[-1][:200] if lines else "(no output)"


def say(line: str) -> None:
    """One line of the sweep's own report."""
    with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
        print(line, flush=True)


def run_sweep(root: Path, sweep: Sweep, jobs: int) -> int:
    """Train the sweep's runs that are not done; returns the exit code (see SweepRunner.run)."""
    return SweepRunner(root, sweep, jobs).run()
