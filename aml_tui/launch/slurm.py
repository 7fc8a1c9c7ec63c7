"""`--launcher slurm`: each run of a sweep a Slurm job, driven from the login node.

The driver only submits (`sbatch`), follows (`squeue`: state and node) and cancels
(`scancel`); each job trains an ordinary run folder under --checkpoints, which the nodes
must see, and the driver reads the runs' files as it reads local ones. Inside the job
`python -m aml_tui.launch.slurm_job` starts the run, or resumes it from last.pt after a
requeue (slurm_job.py).

Every job id is written to the sweep's launch record (core: sweep_jobs) as soon as sbatch
gives it, and each job is named after its run and runs in --checkpoints, so a driver that
was killed leaves nothing behind that a new one cannot find: `sweep --resume` follows the
jobs still queued or running (recorded, or found by name and folder in squeue) and submits
none twice.

A job asks for one task with --slurm-cpus cores, and only for the GPUs, memory, partition
and time limit given; Slurm warns it WARN_S seconds before its time limit (SIGUSR2 to the
job's shell), and it saves last.pt and requeues itself.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aml_tui.core.runstore.listing import run_status
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.runstore.sweep_jobs import RunJobs, SlurmSettings, SweepLaunch, write_launch
from aml_tui.core.runstore.sweeps import Sweep, SweepRun
from aml_tui.errors import ConfigError
from aml_tui.launch.commands import Action

POLL_S = 1.0
"""Least time between two squeue calls of one driver (a cluster's controller serves many)."""

WARN_S = 90
"""Seconds before its time limit that Slurm warns a job (--signal=B:USR2@WARN_S)."""

ENDED = frozenset({
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL",
    "OUT_OF_MEMORY", "PREEMPTED", "REVOKED", "SPECIAL_EXIT", "TIMEOUT", "GONE",
})  # fmt: skip
"""Job states after which a job runs no more (GONE: no longer listed by squeue). PENDING,
RUNNING, COMPLETING, REQUEUED and the others are alive: a requeued job is pending again."""

EXIT_OF_STATUS = {"completed": 0, "pruned": 0, "interrupted": 143, "failed": 2}
"""The exit code a job's run stands for, read from its folder (sacct may be off); a run a
search pruned ended as it should: 0, as a local `train` exits."""


class SubmitError(ConfigError):
    """sbatch refused a job (a partition that does not exist, a limit): every job would be."""


def slurm_command(name: str) -> str:
    """The path of a Slurm command, or a ConfigError that says where to run instead."""
    path = shutil.which(name)
    if path is None:
        raise ConfigError(
            f"--launcher slurm needs Slurm's {name}, which is not on PATH: run the sweep on "
            "the cluster's login node, or drop --launcher slurm to train here"
        )
    return path


def job_name(run_id: str) -> str:
    return f"aml-tui.{run_id}"


def job_script(root: Path, sweep_id: str, run_id: str) -> str:
    """The batch script: the job's shell becomes the command that trains the run."""
    command = [sys.executable, "-m", "aml_tui.launch.slurm_job", str(root), sweep_id, run_id]
    return (
        "#!/bin/sh\n"
        f"# aml-tui: run {run_id} of sweep {sweep_id} (started, or resumed after a requeue)\n"
        f"exec {shlex.join(command)}\n"
    )


def sbatch_command(settings: SlurmSettings, run_id: str, root: Path, log: Path) -> list[str]:
    """sbatch's options for the job of `run_id` (the script follows them): one task and its
    cores, and only the resources given; the user's --slurm-arg last, so they win."""
    command = [
        "sbatch", "--parsable", f"--job-name={job_name(run_id)}", f"--chdir={root}",
        f"--output={log}", "--open-mode=append", "--ntasks=1",
        f"--cpus-per-task={settings.cpus}", "--requeue", f"--signal=B:USR2@{WARN_S}",
    ]  # fmt: skip
    if settings.gpus:
        command.append(f"--gres=gpu:{settings.gpus}")
    if settings.mem is not None:
        command.append(f"--mem={settings.mem}")
    if settings.partition is not None:
        command.append(f"--partition={settings.partition}")
    if settings.time is not None:
        command.append(f"--time={settings.time}")
    return command + list(settings.args)


@dataclass(frozen=True)
class Listed:
    """A job as squeue lists it."""

    job_id: str
    name: str
    state: str
    node: str
    workdir: str


def squeue() -> dict[str, Listed] | None:
    """This user's jobs, ended ones too (for as long as Slurm keeps them); None when squeue
    fails (a controller that does not answer is no news of the jobs)."""
    command = [slurm_command("squeue"), "-h", f"--user={os.getuid()}", "--states=all",
               "-o", "%i|%j|%T|%N|%Z"]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    listed = {}
    for line in done.stdout.splitlines():
        parts = line.split("|", 4)
        if len(parts) == 5:
            job = Listed(*(part.strip() for part in parts))
            listed[job.job_id] = job
    return listed


def scancel(job_id: str, *options: str) -> None:
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run([slurm_command("scancel"), *options, job_id],
                       capture_output=True, timeout=60)  # fmt: skip


def ended_code(folder: RunFolder) -> int:
    """The exit code an ended job's run stands for: 0 completed, 143 interrupted (saved),
    2/3 failed, 1 no run folder (the job failed before training), -9 killed unsaved."""
    if not folder.path.is_dir():
        return 1
    status = run_status(folder)
    if status == "failed":
        summary = folder.read_summary() or {}
        return 3 if summary.get("reason") == "non_finite_loss" else 2
    return EXIT_OF_STATUS.get(status, -9)


@dataclass
class SlurmJob:
    """A run being trained by a Slurm job, as the driver last saw it."""

    run_id: str
    jobs: RunJobs
    folder: RunFolder
    log_path: str
    cancelled: bool = False

    @property
    def label(self) -> str:
        return f"job {self.jobs.job_id}"

    def poll(self) -> int | None:
        """None while the job is queued or running; then its run's exit code (ended_code)."""
        return ended_code(self.folder) if self.jobs.state in ENDED else None

    def send_signal(self, signum: int) -> None:
        """Stop the run: the job is cancelled once (Slurm sends SIGTERM, and the run saves
        last.pt after its batch); a pending job just leaves the queue."""
        if not self.cancelled:
            self.cancelled = True
            scancel(self.jobs.job_id)

    def close(self) -> None:
        """Nothing is held open for a job."""


@dataclass
class SlurmLauncher:
    """Submits runs as Slurm jobs and follows them with squeue."""

    root: Path
    sweep: Sweep
    record: SweepLaunch
    logs: Path
    say: Callable[[str], None] = print
    following: dict[str, SlurmJob] = field(default_factory=dict)
    polled: float = 0.0

    def __post_init__(self) -> None:
        slurm_command("sbatch")

    def describe(self) -> str:
        settings = self.record.slurm
        parts = [f"Slurm jobs of {settings.cpus} core(s)"]
        parts += [f"{settings.gpus} GPU(s)"] if settings.gpus else []
        parts += [f"partition {settings.partition}"] if settings.partition else []
        parts += [f"time {settings.time}"] if settings.time else []
        return ", ".join(parts)

    def job(self, run: SweepRun, jobs: RunJobs) -> SlurmJob:
        log = self.logs / f"{run.run_id}.log"
        handle = SlurmJob(run.run_id, jobs, RunFolder(self.root / run.run_id), str(log))
        self.following[jobs.job_id] = handle
        return handle

    def adopt(self, runs: list[SweepRun]) -> dict[str, SlurmJob]:
        """The runs whose job (recorded, or named after the run and running in this folder)
        is still queued or running: they are followed, not submitted again."""
        listed = squeue()
        if listed is None:
            raise ConfigError("squeue failed: is the cluster's controller up? try again")
        by_name = {job.name: job for job in listed.values()
                   if job.state not in ENDED and _same(job.workdir, self.root)}  # fmt: skip
        adopted = {}
        for run in runs:
            jobs = self.record.jobs.get(run.run_id)
            live = [i for i in (jobs.ids if jobs else []) if i in listed
                    and listed[i].state not in ENDED]  # fmt: skip
            found = by_name.get(job_name(run.run_id))
            if not live and found is not None:  # submitted, but killed before recording it
                jobs = self.record.jobs.setdefault(run.run_id, RunJobs([]))
                jobs.ids.append(found.job_id)
                live = [found.job_id]
            if live and jobs is not None:
                jobs.state, jobs.node = listed[live[-1]].state, listed[live[-1]].node
                adopted[run.run_id] = self.job(run, jobs)
        write_launch(self.root, self.sweep.sweep_id, self.record)
        return adopted

    def start(self, run: SweepRun, action: Action, slot: int) -> SlurmJob:
        """Submit the run's job (the job itself decides to start or resume it)."""
        log = self.logs / f"{run.run_id}.log"
        script = self.logs / f"{run.run_id}.sbatch"
        script.write_text(job_script(self.root, self.sweep.sweep_id, run.run_id))
        command = sbatch_command(self.record.slurm, run.run_id, self.root, log)
        command[0] = slurm_command("sbatch")
        try:
            done = subprocess.run([*command, str(script)], capture_output=True, text=True,
                                  timeout=120)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as error:
            raise SubmitError(f"sbatch did not answer ({error}): is Slurm up?") from None
        job_id = done.stdout.strip().split(";")[0]
        if done.returncode != 0 or not job_id.isdigit():
            why = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise SubmitError(f"sbatch refused the job: {why[:300]}")
        jobs = self.record.jobs.setdefault(run.run_id, RunJobs([]))
        jobs.ids.append(job_id)
        jobs.state, jobs.node = "SUBMITTED", ""
        write_launch(self.root, self.sweep.sweep_id, self.record)
        return self.job(run, jobs)

    def refresh(self) -> None:
        """Ask squeue (at most every POLL_S) for the followed jobs' states and nodes; a
        change is reported and recorded."""
        if time.monotonic() - self.polled < POLL_S or not self.following:
            return
        self.polled = time.monotonic()
        listed = squeue()
        if listed is None:
            return
        changed = False
        for job_id, handle in list(self.following.items()):
            now = listed.get(job_id)
            state, node = (now.state, now.node) if now is not None else ("GONE", "")
            if (state, node) != (handle.jobs.state, handle.jobs.node):
                handle.jobs.state, handle.jobs.node = state, node or handle.jobs.node
                changed = True
                where = f" on {node}" if node else ""
                self.report(f"{state.lower() + ' ':<8}{handle.run_id}  (job {job_id}{where})")
            if state in ENDED:
                del self.following[job_id]
        if changed:
            write_launch(self.root, self.sweep.sweep_id, self.record)

    def report(self, line: str) -> None:
        self.say(line)


def _same(workdir: str, root: Path) -> bool:
    with contextlib.suppress(OSError):
        return os.path.samefile(workdir, root)
    return False
