"""Headless running for `aml-tui train --no-ui`: the engine with the console reporter.

The command line parses options into a TrainConfig and hands it here. This module owns what
a process that trains without the app must decide: which signals stop a run (after the
current batch, last.pt saved), which exit code each ending gives, how a torchrun rank leaves
its process group, and whether a run folder can be resumed at all.

It imports torch: the command line imports it inside the commands that train, so
`aml-tui --help` stays fast.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import torch
import torch.distributed as dist

from aml_tui.config import TrainConfig
from aml_tui.console import ConsoleReporter
from aml_tui.core.events import EpochEnded, Event, Listener, RunFailed, RunFinished
from aml_tui.core.runstore.claim import busy_message
from aml_tui.core.runstore.listing import resolve_run, resume_refusal, run_info
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.runstore.sweeps import SWEEP_ENV, THREADS_ENV
from aml_tui.core.runstore.verdicts import PRUNING_ENV, Report, await_verdict, write_report
from aml_tui.core.training.distributed import world_size_from_env
from aml_tui.core.training.engine import Trainer
from aml_tui.core.training.setup import (
    check_extension,
    create_trainer,
    resume_trainer,
    stopped_early,
)
from aml_tui.errors import ConfigError, RunBusyError
from aml_tui.terminal import stop_signal_numbers, stopped_exit_code

EXIT_FAILED = {"non_finite_loss": 3, "out_of_memory": 2, "user_error": 2}
"""Exit codes of failed runs by reason; anything else (a bug, a lost torchrun peer) exits 1."""

MakeTrainer = Callable[[list[Listener], threading.Event], Trainer]
"""Builds the trainer from its listeners and its stop flag."""


def train_headless(config: TrainConfig) -> int:
    """Train a new run headless; returns the exit code (see `run_headless`). A run that a
    sweep starts (SWEEP_ENV set) records its sweep in config.toml's [run] table."""

    sweep = os.environ.get(SWEEP_ENV)
    info = {"sweep": sweep} if sweep else {}
    return run_headless(lambda listeners, stop: create_trainer(config, listeners, stop, True, info))


def resume_headless(folder: RunFolder, overrides: Mapping[str, Any]) -> int:
    """Carry on a run headless from its last.pt; `overrides` (fields of RESUME_OVERRIDES)
    replace its saved values. Returns the exit code (see `run_headless`)."""
    return run_headless(lambda listeners, stop: resume_trainer(folder, listeners, stop, overrides))


def resumable_run(root: Path, ref: str, epochs: int | None = None) -> tuple[RunFolder, TrainConfig]:
    """The run `ref` names under `root` and its saved configuration, or a ConfigError that
    says why it cannot be resumed (to `epochs` in all, when given: a completed run too, see
    setup.check_extension) and what to do instead. The trainer checks again, from last.pt."""
    folder = resolve_run(root, ref)
    config, _ = folder.read_config()
    refusal = resume_refusal(folder)
    if refusal == "running":
        raise RunBusyError(busy_message(folder.path))
    extending = epochs is not None and (epochs != config.epochs or refusal == "completed")
    if epochs is not None and extending and refusal in (None, "completed"):
        info = run_info(folder)
        done = info.epochs_completed if info is not None else 0
        check_extension(folder.run_id, config, done, epochs, stopped_early(folder))
        if refusal == "completed" and not os.path.isfile(folder.last_path):
            raise ConfigError(f"run {folder.run_id} has no last.pt to extend: start a new run")
        return folder, config
    if refusal == "completed":
        raise ConfigError(
            f"run {folder.run_id} already completed its {config.epochs} "
            f"epoch{'s' if config.epochs != 1 else ''}: nothing to resume"
        )
    if refusal == "pruned":
        raise ConfigError(
            f"run {folder.run_id} was pruned by its search after {config.epochs} epochs at most: "
            "a pruned run is never resumed; start a new run with its settings instead"
        )
    if refusal == "no_checkpoint":
        raise ConfigError(f"run {folder.run_id} has no last.pt to resume from: start a new run")
    return folder, config


def refuse_app_under_torchrun() -> None:
    """The app needs one process and a terminal; a torchrun job has neither."""
    world = world_size_from_env()
    if world > 1:
        raise ConfigError(
            f"the app cannot run in a torchrun job (WORLD_SIZE={world}): add --no-ui to train, "
            "and follow the run from another terminal with 'aml-tui watch last'"
        )


def run_headless(make_trainer: MakeTrainer) -> int:
    """Train with the console reporter. SIGINT (Ctrl+C), SIGTERM and SIGHUP stop it after the
    current batch with last.pt saved; a second Ctrl+C quits at once.

    Returns the exit code: 0 completed, 130/143/129 stopped by SIGINT/SIGTERM/SIGHUP, 2 a
    failure the user can fix (out of memory, disk full), 3 non-finite loss.
    """
    stop = threading.Event()
    use_thread_share()
    try:
        reporter = ConsoleReporter()
        trainer = make_trainer([reporter], stop)
        reporter.batch_size = trainer.config.batch_size  # for its ETAs, as the app's
        if os.environ.get(PRUNING_ENV) and trainer.run_folder is not None:
            trainer.listeners.append(VerdictWaiter(trainer, stop))
        with stop_on_signals(stop) as received:
            result = trainer.run()
    except BaseException:  # a bad setup, a bug or a second Ctrl+C: on its way out
        leave_process_group(clean=False)
        raise
    code = exit_code_of(result, received)
    leave_process_group(clean=not isinstance(result, RunFailed), exit_code=code)
    return code


class VerdictWaiter:
    """A run of a pruning search (PRUNING_ENV set by the sweep): after every epoch but the
    last, its validation accuracy goes to the run folder and the run waits, before the next
    epoch starts, for the sweep's verdict (core/runstore/verdicts.py). `prune` ends it as a
    stop does, between epochs with last.pt saved, but as `pruned`: never resumed. A stop
    signal while it waits ends it interrupted, to be resumed. Here, not in the trainer: the
    trainer only emits EpochEnded, and this listener is called in its thread."""

    def __init__(self, trainer: Trainer, stop: threading.Event) -> None:
        self.trainer = trainer
        self.stop = stop

    def __call__(self, event: Event) -> None:
        folder = self.trainer.run_folder
        if not isinstance(event, EpochEnded) or event.epoch >= event.epochs or folder is None:
            return
        write_report(folder.path, Report(event.epoch, event.val_acc))
        if await_verdict(folder.path, event.epoch, self.stop) == "prune":
            self.trainer.stop_status = "pruned"
            self.stop.set()
            with contextlib.suppress(OSError):
                print(f"aml-tui: pruned by the search after epoch {event.epoch}", file=sys.stderr)


def use_thread_share() -> None:
    """Train on the threads THREADS_ENV grants: a sweep running several jobs on the CPU
    splits the cores between them, so their thread pools do not fight over the same cores."""
    threads = os.environ.get(THREADS_ENV)
    if threads is None:
        return
    if not threads.isdigit() or int(threads) < 1:
        raise ConfigError(f"{THREADS_ENV}={threads!r} must be a whole number of threads, 1 or more")
    torch.set_num_threads(int(threads))


def exit_code_of(result: RunFinished | RunFailed, received: list[int]) -> int:
    """The process's exit code for how the run ended; `received`: the stop signals seen."""
    if isinstance(result, RunFailed):
        return EXIT_FAILED.get(result.reason, 1)
    if result.status == "interrupted":
        return stopped_exit_code(received[0] if received else signal.SIGINT)
    return 0


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[list[int]]:
    """Inside, the stop signals (terminal.STOP_SIGNALS) set `stop` (the trainer ends after the
    current batch) and are recorded in the list yielded; a second Ctrl+C raises
    KeyboardInterrupt, a second SIGHUP or SIGTERM changes nothing. Only the main thread can
    take signals: elsewhere nothing is installed. The old handlers come back on the way out.

    A hang-up leaves the terminal gone: what the reporter writes then fails and it goes
    quiet, and the command line flushes what is left into /dev/null before it exits
    (terminal.flush_before_exit), so the exit code stays 129."""
    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if not stop.is_set():
            received.append(signum)
            stop.set()
            _say_stopping(signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for number in [*stop_signal_numbers(), *slurm_warning()]:
            previous[number] = signal.signal(number, on_signal)
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def slurm_warning() -> list[int]:
    """In a Slurm job, SIGUSR2 too: the warning a sweep's job asks for before its time limit
    (launch/slurm.py), which may reach every process of the job (`scancel --signal=USR2
    --batch`), stops the run as SIGTERM does; elsewhere it keeps its default."""
    return [signal.SIGUSR2] if "SLURM_JOB_ID" in os.environ else []


def _say_stopping(signum: int) -> None:
    if os.environ.get("RANK", "0") != "0":
        return  # in a torchrun job rank 0 speaks for all
    again = " (Ctrl+C again to quit at once)" if signum == signal.SIGINT else ""
    with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
        print(
            f"aml-tui: {signal.Signals(signum).name}: stopping after this batch, saving last.pt"
            + again,
            file=sys.stderr,
        )


def leave_process_group(clean: bool, exit_code: int | None = None) -> None:
    """End a torchrun job's process group (nothing to do in a single process).

    After a clean finish every rank meets at a barrier first, so none tears down while another
    still communicates. After a failure there is no barrier (the other ranks may be inside a
    different collective): this rank leaves, and torchrun ends the job.

    With `exit_code`, a rank of a job ends its process right there with that code: DDP keeps
    the gloo/NCCL process group alive past destroy_process_group, and tearing its C++ threads
    down during interpreter shutdown can abort the process ("terminate called without an
    active exception", SIGABRT) after a run that succeeded. Everything the run writes is on
    disk by then; only the standard streams need flushing.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if clean:
            dist.barrier()
    finally:
        if exit_code is not None:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
            os._exit(exit_code)
        dist.destroy_process_group()
