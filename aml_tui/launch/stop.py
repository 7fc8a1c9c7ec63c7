"""`aml-tui sweep stop SWEEP`: stop a sweep from another terminal, its runs saved.

A sweep that a driver carries on (it holds the sweep's claim) is stopped by sending that
driver SIGINT, as Ctrl+C in its terminal or `s` on the app's Sweep screen would: it passes
the stop to its runs (local processes are signalled, Slurm jobs cancelled), each saves
last.pt after its batch and ends interrupted. A driver on another host is named, not
signalled. A Slurm sweep with no driver (it was killed, or the login node went down) has its
recorded jobs that are still queued or running cancelled here, under the sweep's claim so
no driver starts meanwhile. `sweep --resume` carries any of them on.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from aml_tui.core.runstore.claim import OWNER_NAME, read_owner
from aml_tui.core.runstore.sweep_jobs import read_launch
from aml_tui.core.runstore.sweeps import SWEEPS_FOLDER, Sweep, claim_driver
from aml_tui.errors import ConfigError, SweepBusyError
from aml_tui.launch.slurm import ENDED, scancel, squeue


def stop_sweep(root: Path, sweep: Sweep) -> list[str]:
    """Stop `sweep`; returns what was done, one line each (ConfigError: nothing could be)."""
    try:
        claim = claim_driver(root, sweep.sweep_id)
    except SweepBusyError:
        return [stop_driver(root, sweep.sweep_id)]
    try:
        return cancel_jobs(root, sweep)
    finally:
        claim.release()


def stop_driver(root: Path, sweep_id: str) -> str:
    owner = read_owner(Path(root) / SWEEPS_FOLDER / sweep_id / OWNER_NAME)
    if owner is None:
        raise ConfigError(f"sweep {sweep_id} is carried on by a process that has not named "
                          "itself yet: try again in a moment")  # fmt: skip
    if not owner.here:
        raise ConfigError(f"sweep {sweep_id} is carried on by {owner.describe()}: stop it "
                          f"there (aml-tui sweep stop {sweep_id} on {owner.host})")  # fmt: skip
    if not owner.alive():
        raise ConfigError(f"sweep {sweep_id}'s driver ({owner.describe()}) is gone but "
                          "holds its claim still: try again in a moment")  # fmt: skip
    os.kill(owner.pid, signal.SIGINT)
    return (f"stopping sweep {sweep_id}: its driver ({owner.describe()}) stops its runs; "
            "they save last.pt and end interrupted")  # fmt: skip


def cancel_jobs(root: Path, sweep: Sweep) -> list[str]:
    """No driver: cancel the Slurm jobs recorded for the sweep that still queue or run."""
    launch = read_launch(root, sweep.sweep_id)
    if launch.launcher != "slurm":
        return [f"sweep {sweep.sweep_id} is not being carried on: nothing to stop"]
    listed = squeue()
    if listed is None:
        raise ConfigError("squeue failed: is the cluster's controller up? try again")
    lines = []
    for run, jobs in launch.jobs.items():
        for job_id in jobs.ids:
            job = listed.get(job_id)
            if job is not None and job.state not in ENDED:
                scancel(job_id)
                lines.append(f"cancelled job {job_id} ({run}, {job.state.lower()})")
    if not lines:
        return [f"sweep {sweep.sweep_id} has no job queued or running: nothing to stop"]
    return [*lines, f"carry the sweep on with: aml-tui sweep --resume {sweep.sweep_id} --no-ui"]
