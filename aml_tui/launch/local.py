"""`--launcher local`: each run of a sweep a child process on this machine.

Up to `jobs` run at once: on CUDA each job slot has its own GPU (cuda:i), on the CPU each job
gets its share of the cores (torch threads, OMP and MKL alike), so the thread pools of two
jobs do not fight over the same cores. The children run in sessions of their own, so a Ctrl+C
at the terminal reaches the sweep's process only, which passes it on (`send_signal`). Each
child's output goes to a log beside the sweep record.

It imports torch (to count GPUs): the sweep runner is imported inside the sweep command.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import torch

from aml_tui.core.runstore.sweeps import Sweep, SweepRun
from aml_tui.launch.commands import Action, train_command, trainer_env


def cpu_cores() -> int:
    """Cores this process may run on (its affinity, where the system says)."""
    with contextlib.suppress(AttributeError, OSError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass
class LocalJob:
    """A run being trained by a child process."""

    process: subprocess.Popen[bytes]
    log: IO[bytes]
    label: str
    """How the sweep's report names where it runs: "" on the CPU, "cuda:N" on a GPU."""

    @property
    def log_path(self) -> str:
        return self.log.name

    def poll(self) -> int | None:
        """The exit code once the process ended (negative: killed by that signal)."""
        return self.process.poll()

    def send_signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signum)

    def close(self) -> None:
        self.log.close()


class LocalLauncher:
    """Starts runs as child processes, one per job slot."""

    def __init__(self, root: Path, sweep: Sweep, jobs: int, logs: Path) -> None:
        self.root, self.sweep, self.logs = root, sweep, logs
        device = str(sweep.options.get("device", "auto"))
        uses_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
        self.gpus = torch.cuda.device_count() if uses_cuda else 0
        self.threads = max(1, cpu_cores() // jobs)
        self.jobs = jobs

    def describe(self) -> str:
        if self.gpus:
            return f"{min(self.jobs, self.gpus)} GPU(s)"
        return f"cpu, {self.threads} thread(s)"

    def adopt(self, runs: list[SweepRun]) -> dict[str, LocalJob]:
        """No process outlives the driver that started it: nothing to follow again."""
        return {}

    def refresh(self) -> None:
        """Processes are polled one by one: nothing to ask for all at once."""

    def start(self, run: SweepRun, action: Action, slot: int) -> LocalJob:
        device = f"cuda:{slot % self.gpus}" if self.gpus else None
        command = [sys.executable, "-m", "aml_tui"]
        command += train_command(self.root, self.sweep, run, action, device)
        env = trainer_env(self.sweep, self.threads)
        log = (self.logs / f"{run.run_id}.log").open("ab")
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        return LocalJob(process, log, device or "")
