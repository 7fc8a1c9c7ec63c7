"""Headless sweeps for `aml-tui sweep --no-ui`: each run an ordinary `train --no-ui` process.

A run of a sweep is the same command a user could type (launch/commands.py), so its folder is
like any other's. A launcher starts it: a child process on this machine (launch/local.py,
up to `jobs` at once, each with a GPU or a share of the cores) or a Slurm job (launch/
slurm.py, `jobs` queued or running at once); the sweep's launch record says which
(core: sweep_jobs). This module decides what to do with each run and follows them all.

A Ctrl+C reaches this process only (children have sessions of their own); it forwards it to
each run (a child is signalled, a Slurm job cancelled: each saves last.pt, ends interrupted),
waits, and exits 128 + the signal; a second one makes local children quit at once, as `train`
does. Each run's output goes to a log beside the sweep record.

One runner drives a sweep at a time (it holds the sweep's claim, core/claim.py), and each
run's folder is looked at again just before the run starts: the plan is as old as the runs
before it. A run killed by a signal (SIGKILL: the kernel's out-of-memory killer, say) is
a failed run, exit code 2, like a run that ran out of memory. A Slurm sweep whose driver was
killed is carried on with the jobs it left queued or running followed, none submitted twice.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Protocol

from aml_tui.core.files import last_line
from aml_tui.core.runstore.followed import Followed
from aml_tui.core.runstore.leaderboard import sweep_results
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.runstore.sweep_jobs import read_launch
from aml_tui.core.runstore.sweeps import (
    SWEEPS_FOLDER,
    RunAction,
    Sweep,
    SweepRun,
    check_jobs,
    claim_driver,
    remove_unsaved,
    run_action,
)
from aml_tui.core.search.driver import SearchDriver
from aml_tui.errors import CheckpointError, ConfigError, first_line
from aml_tui.launch.commands import Action
from aml_tui.launch.commands import train_arguments as train_arguments
from aml_tui.launch.filesystems import local_only
from aml_tui.launch.local import LocalLauncher
from aml_tui.launch.slurm import SlurmLauncher, SubmitError
from aml_tui.render.search import leaderboard_lines, run_result
from aml_tui.render.text import wrap_words
from aml_tui.terminal import stop_signal_numbers, stopped_exit_code

POLL_S = 0.2
"""How often the runner looks for runs that ended."""

KILLED_EXIT = 2
"""The exit code when a run died of a signal the sweep did not send (SIGKILL from the
out-of-memory killer, say): a failure to fix, as out of memory is for `train`."""


class Handle(Protocol):
    """A run a launcher started: a local child process, or a Slurm job."""

    @property
    def label(self) -> str:
        """Where it runs, for the report ("cuda:1", "job 12"; "" on this machine's CPU)."""

    @property
    def log_path(self) -> str: ...

    def poll(self) -> int | None:
        """None while it trains; then the exit code (negative: killed by that signal)."""

    def send_signal(self, signum: int) -> None: ...

    def close(self) -> None: ...


class Launcher(Protocol):
    """Starts runs and follows them (launch/local.py, launch/slurm.py)."""

    def describe(self) -> str: ...

    def adopt(self, runs: list[SweepRun]) -> Mapping[str, Handle]:
        """Runs a driver before this one left training (Slurm jobs): followed again."""

    def refresh(self) -> None:
        """Look at every run at once (squeue), before each run is polled."""

    def start(self, run: SweepRun, action: Action, slot: int) -> Handle: ...


@dataclass
class Job:
    """A run being trained in one job slot."""

    run: SweepRun
    slot: int
    handle: Handle
    started: float


def make_launcher(root: Path, sweep: Sweep, jobs: int, logs: Path) -> Launcher:
    """The launcher the sweep's launch record names (local processes when it has none)."""
    launch = read_launch(root, sweep.sweep_id)
    if launch.launcher == "slurm":
        problem = local_only(str(root))
        if problem is not None:
            say(f"warning: --checkpoints {root} is {problem}: every node of the cluster must "
                "see it (a single-node cluster does)")  # fmt: skip
        return SlurmLauncher(root, sweep, launch, logs, say)
    return LocalLauncher(root, sweep, jobs, logs)


class SweepRunner:
    """Runs a sweep's runs that are not done, `jobs` at once, through its launcher."""

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
        self.launcher = make_launcher(self.root, sweep, jobs, self.logs)
        self.stop = threading.Event()
        self.received: list[int] = []
        self.active: list[Job] = []
        self.failure = 0
        self.driver: SearchDriver | None = None
        """A search's driver (core/search/driver.py), made once the sweep is claimed."""

    def plan(self, followed: frozenset[str] = frozenset()) -> list[tuple[SweepRun, RunAction]]:
        """What to do with each run but the `followed` ones (their jobs are queued or
        running); another process training one of them is an error."""
        runs = [run for run in self.sweep.runs if run.run_id not in followed]
        actions = [(run, run_action(RunFolder(self.root / run.run_id))) for run in runs]
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
        self.logs.mkdir(parents=True, exist_ok=True)
        adopted = self.launcher.adopt(list(self.sweep.runs))
        todo = [run for run, action in self.plan(frozenset(adopted)) if action != "done"]
        total = len(self.sweep.runs)
        where, folder = f"{self.jobs} at once ({self.launcher.describe()})", f"-> {self.root}"
        if self.driver is None:
            done = total - len(todo) - len(adopted)
            say(f"sweep {self.sweep.sweep_id}: {total} runs, {done} done, {len(todo)} to train, "
                + where, folder)  # fmt: skip
        else:
            todo = []  # the driver hands out the runs, trial by trial
            search = self.driver.search
            say(
                f"search {self.sweep.sweep_id}: {search.method}, {search.trials} trials "
                f"({self.driver.finished} finished), prune {search.prune}, seeds "
                f"{len(self.sweep.seeds)}, {where}",
                folder,
            )
        started = time.monotonic()
        for run in self.sweep.runs:
            if run.run_id in adopted:
                handle = adopted[run.run_id]
                self.active.append(Job(run, len(self.active), handle, time.monotonic()))
                say(f"follow  {run.run_id}  ({handle.label}, submitted before)")
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
        if any(job.run.run_id == run.run_id for job in self.active):
            return  # a search hands out again a run whose job a stopped driver left queued
        action = self.action_now(run)
        if action is None:
            return
        slot = self.free_slot()
        try:
            handle = self.launcher.start(run, action, slot)
        except SubmitError as error:  # every job would be refused alike
            self.failed(run, first_line(error))
            say("not starting more runs: fix the problem above, then carry on with --resume")
            self.stop.set()
            return
        self.active.append(Job(run, slot, handle, time.monotonic()))
        verb = {"resume": "resume", "restart": "restart"}.get(action, "start")
        if isinstance(self.launcher, SlurmLauncher):
            verb = "submit"
        say(f"{verb:<8}{run.run_id}" + (f"  ({handle.label})" if handle.label else ""))

    def free_slot(self) -> int:
        return min(set(range(self.jobs + len(self.active))) - {job.slot for job in self.active})

    def follow(self, run: SweepRun) -> None:
        """Follow `run`, which another process trains (one a killed sweep process left), in
        a job slot until it ends, as if this runner had started it."""
        log = str(self.logs / f"{run.run_id}.log")
        handle = Followed(RunFolder(self.root / run.run_id), log)
        self.active.append(Job(run, self.free_slot(), handle, time.monotonic()))
        say(f"follow  {run.run_id}  (trained by another process: a stopped sweep's)")

    def action_now(self, run: SweepRun) -> Action | None:
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
        self.launcher.refresh()
        for job, code in [(job, job.handle.poll()) for job in self.active]:
            if code is None:
                continue
            self.active.remove(job)
            job.handle.close()
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
            error = last_line(Path(job.handle.log_path), 200) or "(no output)"
            say(f"failed  {job.run.run_id}  (exit {code}): {error}")
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
                job.handle.send_signal(signum)

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


def say(line: str, tail: str = "") -> None:
    """A line of the sweep's own report; with a `tail` (a path, never broken) it is wrapped
    between words to the terminal's width."""
    lines = wrap_words(line, shutil.get_terminal_size().columns, tail) if tail else [line]
    with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
        print("\n".join(lines), flush=True)


def run_sweep(root: Path, sweep: Sweep, jobs: int) -> int:
    """Train the sweep's runs that are not done; returns the exit code (see SweepRunner.run)."""
    return SweepRunner(root, sweep, jobs).run()
