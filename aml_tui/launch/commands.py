"""The `train` command line of one run of a sweep, whichever launcher starts it.

A run of a sweep is the command a user could type (`python -m aml_tui train EXPERIMENT ...
--no-ui --name RUN`, or `train --resume RUN --no-ui` for one that saved a last.pt), so its
folder is like any other's. Under torchrun the same arguments follow `-m aml_tui`.
"""

from __future__ import annotations

import os
from dataclasses import fields, replace
from pathlib import Path
from typing import Literal

from aml_tui.config import TrainConfig
from aml_tui.core.runstore.sweeps import SWEEP_ENV, THREADS_ENV, Sweep, SweepRun
from aml_tui.core.runstore.verdicts import PRUNING_ENV

Action = Literal["start", "resume", "restart"]
"""What a launcher is asked to do with a run (run_action's answers that train)."""


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


def train_command(
    root: Path, sweep: Sweep, run: SweepRun, action: Action, device: str | None = None
) -> list[str]:
    """`train ...` for `run` (what follows `python -m aml_tui`): a resume of its last.pt, or
    a new run in `root` (its folder is the one the launcher looks in, whatever the record
    says), on `device` when given, else on the sweep's device."""
    if action == "resume":
        return ["train", "--resume", run.run_id, "--no-ui", "--checkpoints", str(root)]
    config = replace(sweep.run_config(run), checkpoints=str(root))
    args = ["train", config.experiment, "--no-ui", *train_arguments(config)]
    return [*args, "--device", device or config.device]


def trainer_env(sweep: Sweep, threads: int) -> dict[str, str]:
    """The environment of a run's trainer: the sweep it belongs to, its share of the cores
    (torch, OMP and MKL alike), and for a pruning search the wait for a verdict after each
    epoch (core/runstore/verdicts.py)."""
    env = {**os.environ, SWEEP_ENV: sweep.sweep_id}
    for name in (THREADS_ENV, "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    if sweep.search is not None and sweep.search.prune != "none":
        env[PRUNING_ENV] = "1"
    return env
