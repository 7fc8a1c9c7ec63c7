"""A sweep's launcher and its jobs: `.sweeps/<sweep-id>/launch.json`, written by the driver.

A sweep whose runs are Slurm jobs (`--launcher slurm`) records here how its jobs are asked
for (SlurmSettings, so `sweep --resume` and the app's runner submit the same jobs) and, for
each run, the ids of the jobs submitted for it, with the last state and node the driver saw.
`sweep show` and the Sweep screen read it; a sweep of local processes has no such file.

The file is written atomically by the one process that drives the sweep (it holds the
sweep's claim) and read as any shared file is: a regular file, size-capped, every field
checked, one that lies is a one-line error naming it.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

from aml_tui.core.files import UnreadableText, read_regular, write_atomic
from aml_tui.core.runstore.runs import printable_name
from aml_tui.errors import ConfigError

LAUNCH_NAME = "launch.json"
MAX_LAUNCH_BYTES = 4 << 20
"""Largest launch record read: a few job ids per run at MAX_RUNS runs is well under this."""

Launcher = Literal["local", "slurm"]
LAUNCHERS: tuple[Launcher, ...] = ("local", "slurm")

_TIME = re.compile(r"([0-9]+-)?[0-9]+(:[0-9]{1,2}){0,2}")
"""Slurm's --time: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS."""
_MEM = re.compile(r"[0-9]+[KMGT]?")
"""Slurm's --mem: a number of megabytes, or one with a K, M, G or T suffix."""
_WORD = re.compile(r"[A-Za-z0-9_.,\-]+")
"""A partition name (or a list of them)."""


@dataclass(frozen=True)
class SlurmSettings:
    """What each job of a sweep asks Slurm for (the `--slurm-*` options)."""

    partition: str | None = None
    """--partition; None: the cluster's default partition."""
    time: str | None = None
    """--time, the job's time limit; None: the partition's default."""
    gpus: int = 0
    """GPUs per job (--gres=gpu:N); more than one runs torchrun with one rank per GPU."""
    cpus: int = 1
    """--cpus-per-task: cores of the job's one task (shared by its ranks under torchrun)."""
    mem: str | None = None
    """--mem, e.g. 16G; None: no memory figure (the partition's default)."""
    args: tuple[str, ...] = ()
    """More sbatch arguments, passed as given after aml-tui's own (--slurm-arg)."""

    def __post_init__(self) -> None:
        if self.partition is not None and not _WORD.fullmatch(self.partition):
            raise _bad("--slurm-partition", self.partition, "a partition name, e.g. gpu")
        if self.time is not None and not _TIME.fullmatch(self.time):
            raise _bad("--slurm-time", self.time, "a time limit such as 90, 2:00:00 or 1-12")
        if not 0 <= self.gpus <= 64:
            raise _bad("--slurm-gpus", str(self.gpus), "from 0 to 64 GPUs per job")
        if not 1 <= self.cpus <= 1024:
            raise _bad("--slurm-cpus", str(self.cpus), "from 1 to 1024 cores per job")
        if self.mem is not None and not _MEM.fullmatch(self.mem):
            raise _bad("--slurm-mem", self.mem, "an amount such as 16G or 8000 (megabytes)")
        for arg in self.args:
            if not (arg.startswith("-") and arg.isprintable() and len(arg) <= 1000):
                raise _bad("--slurm-arg", arg, "an sbatch option such as --account=X")


def _bad(option: str, value: str, want: str) -> ConfigError:
    return ConfigError(f"{option} {value[:60]!r} is not {want}", field=option)


@dataclass
class RunJobs:
    """The jobs of one run: every id submitted for it (oldest first), and the newest job's
    state and node as last seen."""

    ids: list[str]
    state: str = "SUBMITTED"
    node: str = ""

    @property
    def job_id(self) -> str:
        return self.ids[-1]


@dataclass
class SweepLaunch:
    """How a sweep's runs are launched, and the jobs submitted for them."""

    launcher: Launcher = "local"
    slurm: SlurmSettings = field(default_factory=SlurmSettings)
    jobs: dict[str, RunJobs] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        settings = asdict(self.slurm)
        settings["args"] = list(self.slurm.args)
        return {"launcher": self.launcher, "slurm": settings,
                "jobs": {run: asdict(jobs) for run, jobs in self.jobs.items()}}  # fmt: skip


def launch_path(root: Path, sweep_id: str) -> Path:
    return Path(root) / ".sweeps" / sweep_id / LAUNCH_NAME


def write_launch(root: Path, sweep_id: str, launch: SweepLaunch) -> None:
    """Write the record atomically (CheckpointError when it cannot be written)."""
    text = json.dumps(launch.to_dict(), indent=1).encode()
    path = launch_path(root, sweep_id)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(handle: BinaryIO) -> None:
        handle.write(text)

    write_atomic(path, write)


def read_launch(root: Path, sweep_id: str) -> SweepLaunch:
    """The sweep's launch record; a sweep without one runs local processes."""
    path = launch_path(root, sweep_id)
    source = printable_name(str(path))
    try:
        data = json.loads(read_regular(path, MAX_LAUNCH_BYTES))
    except FileNotFoundError:
        return SweepLaunch()
    except UnreadableText as error:
        raise ConfigError(f"launch record {source} {error.problem}: delete it") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ConfigError(f"launch record {source} is not JSON: fix or delete it") from None
    try:
        return _checked(data)
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise ConfigError(
            f"launch record {source} does not hold a launcher and its jobs ({error}): "
            "fix or delete it"
        ) from None


def _checked(data: dict[str, Any]) -> SweepLaunch:
    launcher = data["launcher"]
    if launcher not in LAUNCHERS:
        raise ValueError(f"launcher {str(launcher)[:20]!r}")
    given = data.get("slurm", {})
    slurm = SlurmSettings(
        partition=_text_or_none(given.get("partition")),
        time=_text_or_none(given.get("time")),
        gpus=_whole(given.get("gpus", 0)),
        cpus=_whole(given.get("cpus", 1)),
        mem=_text_or_none(given.get("mem")),
        args=tuple(_text(arg) for arg in given.get("args", [])),
    )
    jobs = {}
    for run, entry in data.get("jobs", {}).items():
        ids = [_text(job) for job in entry["ids"]]
        if not ids or not all(job.isdigit() or "_" in job for job in ids):
            raise ValueError(f"job ids of {str(run)[:40]}")
        jobs[_text(run)] = RunJobs(ids, _text(entry.get("state", "")), _text(entry.get("node", "")))
    return SweepLaunch(launcher, slurm, jobs)


def _text(value: object) -> str:
    if not (isinstance(value, str) and len(value) <= 1000):
        raise TypeError("a text field is not text")
    return value


def _text_or_none(value: object) -> str | None:
    return None if value is None else _text(value)


def _whole(value: object) -> int:
    if type(value) is not int:
        raise TypeError("a count is not a whole number")
    return value
