"""A run made ready to train: a new one (`create_trainer`) or one carried on (`resume_trainer`).

Everything that can fail on bad input (the recipe's checks, the device, the data, the
weights, the checkpoint) fails here, before the loop in engine.py starts; plain functions
over `Trainer`, so the loop's module never imports its own setup.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from aml_tui.config import RESUME_OVERRIDES, TrainConfig
from aml_tui.core.data.memory import hold_out
from aml_tui.core.data.photos import spec_of_data
from aml_tui.core.events import Listener
from aml_tui.core.experiments import Experiment, get_experiment, with_recipe_defaults
from aml_tui.core.pretrained import resolve_weights
from aml_tui.core.runstore.listing import run_status
from aml_tui.core.runstore.runs import RunFolder, printable_name
from aml_tui.core.training.checkpoint import check_fits, load_checkpoint, restore
from aml_tui.core.training.device import resolve_device
from aml_tui.core.training.distributed import Distributed, init_distributed
from aml_tui.core.training.engine import Trainer
from aml_tui.core.training.recipe import EXTENDABLE_SCHEDULES
from aml_tui.core.untrusted import UnreadableFile, printable, user_path
from aml_tui.core.user_recipes import load_recorded, source_facts
from aml_tui.errors import CheckpointError, ConfigError, WeightsError


def _recipe_and_device(config: TrainConfig) -> tuple[Experiment, Distributed | None, torch.device]:
    """The recipe, the torchrun job (if any) and this process's device, for a new or resumed run."""
    experiment = get_experiment(config.experiment)
    experiment.check(config)
    distributed, device_name = init_distributed(config.device)
    return experiment, distributed, resolve_device(device_name)


def _weights(experiment: Experiment, config: TrainConfig) -> Path | None:
    """ImageNet's ResNet-18 weights for fine-tuning (found or downloaded), the file --weights
    names for a model that takes one, else None."""
    if experiment.pretrained:
        return resolve_weights(config.weights, config.offline)
    if config.weights is None:
        return None
    try:
        return user_path(config.weights)
    except UnreadableFile as error:
        raise WeightsError(f"--weights {printable(config.weights)} {error.reason}") from None


def create_trainer(
    config: TrainConfig,
    listeners: Iterable[Listener] = (),
    stop: threading.Event | None = None,
    write_run: bool = True,
    run_info: Mapping[str, Any] | None = None,
) -> Trainer:
    """Resolve the device, load the data and weights, build the model and the run folder.

    Everything that can fail on bad input fails here, before a run folder exists. The
    new folder is claimed as it is made (see RunFolder.start); `run_info` adds to what its
    config.toml's [run] table records (a sweep's runs: the sweep id).
    """
    experiment, distributed, device = _recipe_and_device(config)
    weights = _weights(experiment, config)
    data = hold_out(experiment.load_data(config, True), config.val_split, config.seed)
    if distributed is not None and not distributed.is_main:
        listeners, write_run = (), False  # only rank 0 prints and writes the run folder
    trainer = Trainer(config, experiment, data, device, None, listeners, stop, weights, distributed)
    if write_run:
        facts = {**trainer.facts(weights), **source_facts(config.experiment), **(run_info or {})}
        run = RunFolder.create(Path(config.checkpoints), experiment.run_prefix, config.name)
        trainer.attach_run(run, run.start(config, facts))
        _record_input(trainer, run)
    return trainer


def _record_input(trainer: Trainer, run: RunFolder) -> None:
    """input.json: what the model takes, so `predict` needs no dataset (a warning if it
    cannot be written: the run trains on, and predict reads its data instead)."""
    spec = spec_of_data(trainer.data, trainer.transform, trainer.config.scrambled)
    try:
        run.write_input(spec.to_json())
    except CheckpointError as error:
        trainer.warn(f"{error}: aml-tui predict will need this run's data")


def resume_trainer(
    folder: RunFolder,
    listeners: Iterable[Listener] = (),
    stop: threading.Event | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Trainer:
    """Carry on a run from its last.pt with its saved configuration, in its own folder.

    `overrides` (fields of RESUME_OVERRIDES: the data moved, or this machine keeps it
    elsewhere or cannot compile; more epochs, see `check_extension`) replace the saved
    values; config.toml records them once the data has loaded. A completed run is carried
    on only to more epochs than it trained.

    The run is claimed first, before its checkpoint and data load (rank 0 claims for a
    torchrun job): of two processes resuming it at once exactly one goes on, the other
    gets RunBusyError naming the holder. A resume that fails gives the claim back.
    """
    config, info = folder.read_config()
    load_recorded(config.experiment, info)  # a user's file only if it is the one that trained
    overrides = overrides or {}
    assert set(overrides) <= set(RESUME_OVERRIDES), overrides
    moved = {key: value for key, value in overrides.items() if getattr(config, key) != value}
    saved, config = config, dataclasses.replace(config, **moved)
    experiment, distributed, device = _recipe_and_device(config)
    main = distributed is None or distributed.is_main
    claim = folder.claim() if main else None
    try:
        state = load_checkpoint(folder.last_path)
        check_fits(state, folder.last_path, "resume", experiment=config.experiment)
        if "epochs" in moved:
            done = int(state["epochs_completed"])
            check_extension(folder.run_id, saved, done, config.epochs, stopped_early(folder))
        elif claim is not None and run_status(folder) == "completed":  # just now, maybe
            raise CheckpointError(
                f"run {printable_name(folder.run_id)} has completed its epochs: nothing to resume"
            )
        split = with_recipe_defaults(config).val_split  # None in runs from before --val-split
        data = hold_out(experiment.load_data(config, True), split, config.seed)
        check_fits(state, folder.last_path, "resume", classes=data.classes)
        trainer = Trainer(
            config, experiment, data, device, None, listeners if main else (), stop,
            distributed=distributed,
        )  # fmt: skip
        restore(trainer, state, folder.last_path)
        if claim is not None:
            if moved:
                folder.write_config(config, {**info, "data_source": data.source})
            folder.clear_summary()  # running again; rewritten at the end
            trainer.attach_run(folder, claim)
            if folder.read_input() is None:  # a run from before input.json
                _record_input(trainer, folder)
    except BaseException:
        if claim is not None:
            claim.release()
        raise
    return trainer


def check_extension(
    run_id: str, config: TrainConfig, done: int, epochs: int, early: int | None = None
) -> None:
    """A ConfigError unless run `run_id` (saved `config`, `done` epochs trained) can carry
    on to `epochs` in all and end as a run trained that long from the start would have:
    more epochs than it trained, a schedule that does not depend on the count of epochs
    (EXTENDABLE_SCHEDULES; the count may stay as it is on any schedule), and not a run that
    --early-stop ended (`early`: the epoch it stopped after; longer, it had stopped there
    too)."""
    name = printable_name(run_id)
    if early is not None:
        raise ConfigError(
            f"run {name} stopped early after epoch {early} (--early-stop "
            f"{config.early_stop}): a longer run would have stopped there too; nothing to extend"
        )
    if epochs <= done:
        raise ConfigError(
            f"run {name} has trained {done} epoch{'s' if done != 1 else ''} already: "
            f"--epochs must be more than {done} to extend it"
        )
    schedule = with_recipe_defaults(config).schedule
    if epochs != config.epochs and schedule not in EXTENDABLE_SCHEDULES:
        raise ConfigError(
            f"run {name} cannot be extended to {epochs} epochs: its {schedule} schedule is "
            f"shaped by its {config.epochs} epochs; train a new run with --epochs {epochs} "
            f"(aml-tui train --from {name} --epochs {epochs})"
        )


def stopped_early(folder: RunFolder) -> int | None:
    """The epoch after which --early-stop ended the run, as its summary.json records it."""
    summary = folder.read_summary() or {}
    epoch = summary.get("stopped_early")
    return epoch if isinstance(epoch, int) else None
