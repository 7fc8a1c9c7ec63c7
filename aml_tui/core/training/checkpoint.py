"""Checkpoints: what last.pt and best.pt hold, how they are written, read and restored.

Written atomically, read with weights_only so loading never runs code. `checkpoint_state`
is the one place that lists a checkpoint's contents: a TrainingState (core/trainer_state.py)
at a position, which `restore` reads back. `check_fits` is the one check that a checkpoint
belongs to a run and its data, for resuming and evaluating alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from aml_tui import __version__
from aml_tui.core.events import with_current_names
from aml_tui.core.files import write_atomic
from aml_tui.core.training.checkpoint_checks import check_resumable, check_structure
from aml_tui.core.training.loop import EpochProgress
from aml_tui.core.training.trainer_state import TrainingState
from aml_tui.core.untrusted import (
    UnreadableFile,
    first_non_finite,
    load_untrusted,
    one_line,
    printable,
)
from aml_tui.errors import CheckpointError

FORMAT_VERSION = 1

MAX_SAVE_FAILURES = 3
"""Training stops when saving fails after this many epochs in a row."""

IMPLEMENTATION_KEYS = ("fused", "foreach", "capturable", "differentiable")
"""Optimiser settings that choose a kernel, not the maths: this process decides them."""


def save_atomic(state: dict[str, Any], path: Path) -> None:
    """Save a checkpoint atomically (see write_atomic)."""
    write_atomic(path, lambda handle: torch.save(state, handle))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint holding tensors and plain values only, on the CPU, and check that
    every field aml-tui reads has the type it must have: anything else is one CheckpointError.
    """
    path = Path(path)
    try:
        state = load_untrusted(path)
    except UnreadableFile as error:
        raise CheckpointError(_unreadable_message(path, error)) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is not an aml-tui checkpoint: use one written by aml-tui")
    check_structure(state, path)
    return with_current_names(state)  # a checkpoint from before 0.2 reads as one of now


def _unreadable_message(path: Path, error: UnreadableFile) -> str:
    name = printable(str(path))
    if error.problem == "missing":
        return f"checkpoint {name} does not exist: train the run first"
    if error.problem in ("unusable", "not-a-file"):
        return f"checkpoint {name} {error.reason}: use a checkpoint file written by aml-tui"
    if error.problem == "unsafe":
        return (
            f"checkpoint {name} holds objects other than tensors and plain values, so it was "
            f"not loaded ({error.reason}): use a checkpoint written by aml-tui"
        )
    return (
        f"checkpoint {name} is truncated or corrupt ({error.reason}): delete it or use "
        "best.pt/last.pt"
    )


def check_fits(
    state: dict[str, Any],
    path: Path,
    use: Literal["resume", "evaluate"],
    experiment: str | None = None,
    classes: Sequence[str] | None = None,
) -> None:
    """Refuse a checkpoint of another experiment, or trained on other classes than the data's.

    Each check runs when its value is given: the experiment before the data loads, the
    classes after."""
    if experiment is not None and state.get("experiment") != experiment:
        fix = (
            "it cannot be resumed; start a new run"
            if use == "resume"
            else "the run folder was mixed up; retrain it"
        )
        raise CheckpointError(
            f"{path} is a {state.get('experiment')!r} checkpoint but the run is "
            f"{experiment!r}: {fix}"
        )
    saved = list(state.get("classes", []))
    if classes is not None and saved != list(classes):
        differ = (
            f"{len(saved)} classes but the data has {len(classes)}"
            if len(saved) != len(classes)
            else f"classes {saved} but the data has {list(classes)}"
        )
        raise CheckpointError(f"{path} has {differ}: {use} with the data the run was trained on")


def check_finite(state: dict[str, Any], path: Path) -> None:
    """Refuse a checkpoint whose weights hold a NaN or an infinity: evaluating them would
    report a meaningless accuracy with "nan%" confidences."""
    bad = first_non_finite(state["model"])
    if bad is not None:
        raise CheckpointError(
            f"checkpoint {printable(str(path))} has NaN or infinite weights (in {printable(bad)}),"
            " so it was not evaluated: the run diverged; try its other checkpoint, or retrain "
            "with a lower learning rate"
        )


def load_optimizer_state(optimizer: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
    """Load a saved optimiser state, keeping this process's kernel choices.

    load_state_dict takes the saved param groups whole, so a checkpoint from an unfused
    Adam (an older aml-tui, or an MPS run resumed on CUDA) would turn this fused one unfused
    while it still told GradScaler it was fused, and fp16 steps would fail.
    """
    groups = [  # a count that differs is refused by load_state_dict
        {**group, **{key: ours[key] for key in IMPLEMENTATION_KEYS if key in ours}}
        for group, ours in zip(saved["param_groups"], optimizer.param_groups, strict=False)
    ]
    optimizer.load_state_dict({**saved, "param_groups": groups})


def checkpoint_state(trainer: TrainingState, position: EpochProgress) -> dict[str, Any]:
    """Everything needed to carry on from `position`: the start of an epoch (after an epoch
    ended) or a batch inside one (after a stop request)."""
    return {
        "format": FORMAT_VERSION,
        "aml_tui_version": __version__,
        "experiment": trainer.config.experiment,
        "classes": list(trainer.data.classes),
        "config": trainer.config.to_dict(),
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict() if trainer.scheduler else None,
        "grad_scaler": trainer.scaler.state_dict(),
        "epochs_completed": trainer.epochs_completed,
        "position": position.to_state() if position.batch else None,
        "world_size": trainer.world_size,
        "best_acc": trainer.best_acc,
        "best_epoch": trainer.best_epoch,
        "selected_test_acc": trainer.selected_test_acc,
        "selection_metric": trainer.selection + "_acc",
        "train_images": trainer.train_images,
        "train_seconds": trainer.train_seconds,
        "elapsed": time.perf_counter() - (trainer.run_started or time.perf_counter()),
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if trainer.device.type == "cuda" else [],
        "permutation": trainer.data.permutation,
    }


def save_checkpoint(trainer: TrainingState, path: Path, position: EpochProgress) -> None:
    """Write the trainer's state at `position` to `path`, atomically."""
    save_atomic(checkpoint_state(trainer, position), path)


@dataclass
class EpochSaver:
    """Saves last.pt (and best.pt) after each epoch. A failure (disk full, folder gone) is
    reported through `warn` and training goes on, the previous checkpoints intact, until
    saving fails in MAX_SAVE_FAILURES epochs in a row."""

    warn: Callable[[str], None]
    failures: int = 0

    def save(self, trainer: TrainingState, paths: list[Path], position: EpochProgress) -> None:
        errors = []
        for path in paths:
            try:
                save_checkpoint(trainer, path, position)
            except CheckpointError as error:
                errors.append(str(error))
        if not errors:
            self.failures = 0
            return
        self.failures += 1
        if self.failures >= MAX_SAVE_FAILURES:
            raise CheckpointError(
                f"{errors[0]} — saving failed after {self.failures} epochs in a row, so "
                "training stopped; free some space, then resume"
            )
        self.warn(f"{errors[0]}; training goes on and saves again after the next epoch")


def restore(trainer: TrainingState, state: dict[str, Any], path: Path) -> None:
    """Continue from a checkpoint's state (see `checkpoint_state`), as `load_checkpoint`
    checked it: weights, optimiser, scheduler, RNG, counters and the position inside an
    interrupted epoch. A checkpoint that does not fit the trainer's model or optimiser is a
    CheckpointError, raised before the trainer's state is touched where it can be."""
    check_resumable(
        state,
        path,
        trainer.optimizer.state_dict()["param_groups"],
        trainer.scheduler.state_dict() if trainer.scheduler else None,
        IMPLEMENTATION_KEYS,
    )
    try:
        _restore(trainer, state)
    except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as error:
        raise CheckpointError(
            f"{path} does not fit {trainer.config.experiment} ({one_line(str(error))}): start "
            "a new run"
        ) from None


def _restore(trainer: TrainingState, state: dict[str, Any]) -> None:
    trainer.model.load_state_dict(state["model"])
    load_optimizer_state(trainer.optimizer, state["optimizer"])
    if trainer.scheduler is not None and state.get("scheduler") is not None:
        trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.scaler.load_state_dict(state["grad_scaler"])
    trainer.epochs_completed = int(state["epochs_completed"])
    trainer.best_acc = state.get("best_acc")
    trainer.best_epoch = state.get("best_epoch")  # None in checkpoints before --early-stop
    trainer.selected_test_acc = state.get("selected_test_acc")
    trainer.train_images = int(state.get("train_images", 0))
    trainer.train_seconds = float(state.get("train_seconds", 0.0))
    trainer.seconds_before = float(state.get("elapsed", 0.0))
    position = state.get("position")
    trainer.resume_from = EpochProgress.from_state(position) if position else None
    saved_world = state.get("world_size", 1)
    if trainer.resume_from is not None and saved_world != trainer.world_size:
        # Shards differ with the number of processes: an exact mid-epoch continuation is
        # impossible, so the interrupted epoch starts again from its first batch.
        trainer.resume_from = None
        trainer.restart_note = (
            f"stopped mid-epoch with {saved_world} process(es), resumed with "
            f"{trainer.world_size}: epoch {trainer.epochs_completed + 1} starts again from its "
            "first batch"
        )
    torch.set_rng_state(state["rng_cpu"])
    if trainer.device.type == "cuda" and state.get("rng_cuda"):
        torch.cuda.set_rng_state_all(state["rng_cuda"])
