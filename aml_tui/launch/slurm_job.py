"""Inside each Slurm job of a sweep: `python -m aml_tui.launch.slurm_job ROOT SWEEP RUN`.

The job's shell execs this, so Slurm's signals reach it. It looks at the run's folder as the
sweep runner does (core: run_action): a new run is started (`train ... --name RUN`), one
with a last.pt resumed (`train --resume RUN`), a completed one left; `--slurm-gpus` above one
runs the same command under torchrun, one rank per GPU (the DDP path). The trainer is its
child:

- SIGUSR2, Slurm's warning before the time limit (`--signal=B:USR2@90`): the trainer is sent
  SIGTERM, saves last.pt after its batch and ends interrupted; then this job requeues itself
  (`scontrol requeue`), and the requeued job resumes the run from there, no epoch twice.
- SIGTERM, from `scancel` (the sweep stopped) or from Slurm preempting or requeueing the
  job: Slurm sends it to every process of the job, the trainer too; the run saves and ends
  interrupted, and a requeued job resumes it. It is passed on to a plain trainer as well (a
  second SIGTERM changes nothing there), not to torchrun, whose shutdown a second one would
  cut short.

Its exit code is the trainer's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

from aml_tui.core.runstore.listing import run_status
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.runstore.sweep_jobs import read_launch
from aml_tui.core.runstore.sweeps import (
    Sweep,
    SweepRun,
    read_sweep,
    remove_unsaved,
    run_action,
)
from aml_tui.core.user_recipes import load_named
from aml_tui.errors import AmlTuiError, first_line
from aml_tui.launch.commands import Action, train_command, trainer_env


def job_command(root: Path, sweep: Sweep, run: SweepRun, action: Action, gpus: int) -> list[str]:
    """The command that trains `run` in a job with `gpus` GPUs: torchrun with one rank per
    GPU when there are several, else one process."""
    args = train_command(root, sweep, run, action)
    if gpus > 1:
        torchrun = Path(sys.executable).with_name("torchrun")
        launcher = (
            [str(torchrun)]
            if torchrun.exists()
            else [sys.executable, "-m", "torch.distributed.run"]
        )
        return [*launcher, "--standalone", f"--nproc_per_node={gpus}", "-m", "aml_tui", *args]
    return [sys.executable, "-m", "aml_tui", *args]


def job_env(sweep: Sweep, cpus: int, gpus: int) -> dict[str, str]:
    """The trainer's environment (launch/commands.py), with its share of the job's cores
    (each rank's, under torchrun)."""
    return trainer_env(sweep, max(1, cpus // max(1, gpus)))


def decide(root: Path, sweep: Sweep, run: SweepRun) -> Action | None:
    """What this job does with the run: None when it is done (completed, or failed: the
    sweep reports it). A folder with nothing saved is started over."""
    folder = RunFolder(root / run.run_id)
    action = run_action(folder)
    if action == "restart" and not remove_unsaved(folder):
        action = run_action(folder)
    if action == "running":
        raise AmlTuiError(f"run {run.run_id} is being trained by another process: stop it first")
    if action == "restart":
        raise AmlTuiError(f"run {run.run_id} has a summary.json but no last.pt: look at it")
    return None if action == "done" else action


def main(argv: list[str]) -> int:
    root, sweep_id, run_id = Path(argv[0]), argv[1], argv[2]
    try:
        sweep = read_sweep(root, sweep_id)
        load_named(sweep.experiment, trusted_only=True)  # a file only as it was trusted
        run = next(r for r in sweep.runs if r.run_id == run_id)
        settings = read_launch(root, sweep_id).slurm
        action = decide(root, sweep, run)
    except (AmlTuiError, StopIteration) as error:
        print(f"aml-tui: job of {run_id}: {first_line(error) or 'not a run of the sweep'}")
        return 2
    job = os.environ.get("SLURM_JOB_ID", "?")
    if action is None:
        print(f"aml-tui: job {job}: run {run_id} is done already")
        return 0
    print(f"aml-tui: job {job} on {os.environ.get('SLURMD_NODENAME', '?')}: {action} {run_id}",
          flush=True)  # fmt: skip
    child = subprocess.Popen(
        job_command(root, sweep, run, action, settings.gpus),
        env=job_env(sweep, settings.cpus, settings.gpus),
    )
    warned: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGUSR2:
            warned.append(signum)
        elif settings.gpus > 1:
            return  # Slurm signals every process of the job: torchrun has it already
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGTERM if signum == signal.SIGUSR2 else signum)

    for number in (signal.SIGUSR2, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, on_signal)
    code = child.wait()
    if warned and run_status(RunFolder(root / run_id)) == "interrupted":
        requeue(job)
    return code


def requeue(job: str) -> None:
    """Put this job back in the queue: its next start resumes the run from last.pt."""
    scontrol = shutil.which("scontrol")
    if scontrol is None or not job.isdigit():
        print(f"aml-tui: job {job} cannot requeue itself (no scontrol): carry the sweep on with "
              "--resume")  # fmt: skip
        return
    print(f"aml-tui: job {job}: saved after Slurm's warning; requeued to resume", flush=True)
    subprocess.run([scontrol, "requeue", job], check=False)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
