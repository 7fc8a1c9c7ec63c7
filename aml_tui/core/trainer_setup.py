"""Building a Trainer: a new run (`create_trainer`) or a stopped one carried on from its
last.pt (`resume_trainer`). engine.Trainer.create and Trainer.resume call these.

Everything that can fail on bad input fails here, before the loop starts: the recipe's check
of the configuration, the device, the weights, the data, the checkpoint's fit. A new run's
folder is made (and claimed) only once all of that has loaded; a resumed run is claimed
before anything loads, so of two processes resuming it at once exactly one goes on.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from aml_tui.config import RESUME_OVERRIDES, TrainConfig
from aml_tui.core.checkpoint import check_fits, load_checkpoint, restore
from aml_tui.core.device import resolve_device
from aml_tui.core.distributed import Distributed, init_distributed
from aml_tui.core.events import Listener
from aml_tui.core.experiments import Experiment, get_experiment
from aml_tui.core.listing import run_status
from aml_tui.core.pretrained import resolve_weights
from aml_tui.core.runs import RunFolder, printable_name
from aml_tui.errors import CheckpointError

if TYPE_CHECKING:
    from aml_tui.core.engine import Trainer

T = TypeVar("T", bound="Trainer")


def _setup(config: TrainConfig) -> tuple[Experiment, Distributed | None, torch.device]:
    """The recipe, the torchrun job (if any) and this process's device, for a new or resumed run."""
    experiment = get_experiment(config.experiment)
    experiment.check(config)
    distributed, device_name = init_distributed(config.device)
    return experiment, distributed, resolve_device(device_name)


def create_trainer(
    cls: type[T],
    config: TrainConfig,
    listeners: Iterable[Listener] = (),
    stop: threading.Event | None = None,
    write_run: bool = True,
) -> T:
    """A `cls` for a new run of `config`: the device resolved, the data and weights loaded,
    the model built, then (with `write_run`, on rank 0) the run folder made and claimed."""
    experiment, distributed, device = _setup(config)
    weights = resolve_weights(config.weights, config.offline) if experiment.pretrained else None
    data = experiment.load_data(config, True)
    if distributed is not None and not distributed.is_main:
        listeners, write_run = (), False  # only rank 0 prints and writes the run folder
    trainer = cls(config, experiment, data, device, None, listeners, stop, weights, distributed)
    if write_run:
        facts = trainer.facts(weights)
        run = RunFolder.create(Path(config.checkpoints), config.experiment, config.name)
        trainer.attach_run(run, run.start(config, facts))
    return trainer


def resume_trainer(
    cls: type[T],
    folder: RunFolder,
    listeners: Iterable[Listener] = (),
    stop: threading.Event | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """A `cls` that carries on the run in `folder` from its last.pt, with its saved
    configuration but for `overrides` (see Trainer.resume). Claimed first (rank 0 claims for
    a torchrun job); a resume that fails gives the claim back."""
    config, info = folder.read_config()
    overrides = overrides or {}
    assert set(overrides) <= set(RESUME_OVERRIDES), overrides
    moved = {key: value for key, value in overrides.items() if getattr(config, key) != value}
    config = dataclasses.replace(config, **moved)
    experiment, distributed, device = _setup(config)
    main = distributed is None or distributed.is_main
    claim = folder.claim() if main else None
    try:
        state = load_checkpoint(folder.last_path)
        check_fits(state, folder.last_path, "resume", experiment=config.experiment)
        if claim is not None and run_status(folder) == "completed":  # just now, maybe
            raise CheckpointError(
                f"run {printable_name(folder.run_id)} has completed its epochs: nothing to resume"
            )
        data = experiment.load_data(config, True)
        check_fits(state, folder.last_path, "resume", classes=data.classes)
        trainer = cls(
            config, experiment, data, device, None, listeners if main else (), stop,
            distributed=distributed,
        )  # fmt: skip
        restore(trainer, state, folder.last_path)
        if claim is not None:
            if moved:
                folder.write_config(config, {**info, "data_source": data.source})
            folder.clear_summary()  # running again; rewritten at the end
            trainer.attach_run(folder, claim)
    except BaseException:
        if claim is not None:
            claim.release()
        raise
    return trainer
