"""What a loaded checkpoint must hold before any of it is used.

A checkpoint is a pickle of plain values: a damaged or hand-made one can hold a string where
a count should be, or a dict where tensors should be, and would then fail deep inside torch
or the trainer. `check_structure` checks every field aml-tui reads (the ones
checkpoint.checkpoint_state writes) when it is loaded, for evaluating and resuming alike;
`check_resumable` checks what only resuming reads against the trainer's own optimiser and
scheduler. Either refuses with one CheckpointError that names the field.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from aml_tui.core.events import OLD_NAMES
from aml_tui.core.training.loop import EpochProgress
from aml_tui.errors import CheckpointError

REQUIRED = ("experiment", "classes", "model", "optimizer", "epochs_completed", "rng_cpu")
"""Fields every checkpoint since the first format has; the others have defaults."""

_POSITION_FIELDS = {field.name for field in fields(EpochProgress)}
_MAX_DEPTH = 4


def _count(value: object, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _number(value: object, low: float = 0.0, high: float = math.inf) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and low <= value <= high
    )


def _optional(check: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda value: value is None or check(value)


def _plain(value: object, depth: int = 0) -> bool:
    """Tensors, numbers, strings, None, and lists, tuples and str-keyed dicts of them."""
    if value is None or isinstance(value, bool | int | float | str | torch.Tensor):
        return True
    if depth >= _MAX_DEPTH:
        return False
    if isinstance(value, list | tuple):
        return all(_plain(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return False


def _tensors(value: object) -> bool:
    return (
        isinstance(value, dict)
        and len(value) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())
    )


def _names(value: object) -> bool:
    return isinstance(value, list) and len(value) > 0 and all(isinstance(n, str) for n in value)


def _numbers(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and _number(v) for k, v in value.items()
    )


def _bytes_tensor(value: object) -> bool:
    return isinstance(value, torch.Tensor) and value.dtype == torch.uint8 and value.dim() == 1


def _optimizer(value: object) -> bool:
    """torch's Optimizer.state_dict(): per-parameter state by index, and parameter groups."""
    if not isinstance(value, dict) or set(value) != {"state", "param_groups"}:
        return False
    state, groups = value["state"], value["param_groups"]
    return (
        isinstance(state, dict)
        and all(_count(k) and isinstance(v, dict) and _plain(v) for k, v in state.items())
        and isinstance(groups, list)
        and len(groups) > 0
        and all(_param_group(group) for group in groups)
    )


def _param_group(group: object) -> bool:
    return (
        isinstance(group, dict)
        and _plain(group)
        and isinstance(group.get("params"), list)
        and all(_count(index) for index in group["params"])
        and (_number(group.get("lr")) or isinstance(group.get("lr"), torch.Tensor))
    )


def _position(value: object) -> bool:
    """EpochProgress.to_state(): where an interrupted epoch stopped."""
    if not isinstance(value, dict) or not set(value) <= _POSITION_FIELDS or "epoch" not in value:
        return False
    checks: dict[str, Callable[[object], bool]] = {
        "epoch": lambda v: _count(v, 1),
        "batch": _count,
        "loss_sum": _optional(lambda v: isinstance(v, torch.Tensor)),
        "correct": _count,
        "seen": _count,
        "seconds": _number,
        "augment_state": _optional(lambda v: isinstance(v, torch.Tensor)),
    }
    return all(checks[key](item) for key, item in value.items())


FIELDS: dict[str, tuple[Callable[[object], bool], str]] = {
    "aml_tui_version": (lambda v: isinstance(v, str), "a version string"),
    "experiment": (lambda v: isinstance(v, str), "an experiment name"),
    "classes": (_names, "a list of class names"),
    "config": (lambda v: isinstance(v, dict) and _plain(v), "a dict of settings"),
    "model": (_tensors, "a dict of named tensors"),
    "optimizer": (_optimizer, "an optimiser state (state and param_groups)"),
    "scheduler": (_optional(lambda v: isinstance(v, dict) and _plain(v)), "a dict or None"),
    "grad_scaler": (_numbers, "a dict of numbers"),
    "epochs_completed": (_count, "a count"),
    "epoch": (_count, "a count"),
    "position": (_optional(_position), "a position inside an epoch or None"),
    "world_size": (lambda v: _count(v, 1), "a process count"),
    "best_acc": (_optional(lambda v: _number(v, 0.0, 1.0)), "an accuracy or None"),
    "best_epoch": (_optional(_count), "a count or None"),
    "selected_test_acc": (_optional(lambda v: _number(v, 0.0, 1.0)), "an accuracy or None"),
    "selection_metric": (lambda v: isinstance(v, str), "a metric name"),
    "train_images": (_count, "a count"),
    "train_seconds": (_number, "a number of seconds"),
    "elapsed": (_number, "a number of seconds"),
    "rng_cpu": (_bytes_tensor, "a random generator state (bytes)"),
    "rng_cuda": (
        lambda v: isinstance(v, list) and all(_bytes_tensor(s) for s in v),
        "a list of random generator states",
    ),
    "permutation": (
        _optional(lambda v: isinstance(v, torch.Tensor) and v.dim() == 1 and v.dtype == torch.long),
        "a pixel permutation or None",
    ),
}
FIELDS.update({old: FIELDS[new] for old, new in OLD_NAMES.items()})  # checkpoints before 0.2
"""Each field aml-tui reads: the test its value must pass, and what it should be."""


def _damaged(path: Path, detail: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} is damaged ({detail}): delete it or use best.pt/last.pt"
    )


def check_structure(state: dict[Any, Any], path: Path) -> None:
    """Refuse a checkpoint that lacks a required field or holds a field of the wrong type."""
    missing = [key for key in REQUIRED if key not in state]
    if missing:
        raise _damaged(path, f"no {', '.join(missing)}")
    for key, (check, expected) in FIELDS.items():
        if key in state and not check(state[key]):
            raise _damaged(path, f"{key} is not {expected}: {type(state[key]).__name__}")
    position = state.get("position")
    if position is not None and position["epoch"] != state["epochs_completed"] + 1:
        raise _damaged(
            path,
            f"stopped inside epoch {position['epoch']} after {state['epochs_completed']} "
            "completed epochs",
        )


def _kind(value: object) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list | tuple):
        return "sequence"
    return type(value).__name__


def _unlike(saved: object, fresh: object, where: str, skip: tuple[str, ...] = ()) -> str | None:
    """Where `saved` differs in kind from `fresh` (this process's own state), else None. Keys
    only one side has are allowed: another torch version may add or drop a setting."""
    if _kind(saved) != _kind(fresh):
        return f"{where} is {_kind(saved)} where {_kind(fresh)} was expected"
    if isinstance(saved, list | tuple) and isinstance(fresh, list | tuple):
        if len(saved) != len(fresh):
            return f"{where} has {len(saved)} items where {len(fresh)} were expected"
        pairs = [(f"{where}[{i}]", a, b) for i, (a, b) in enumerate(zip(saved, fresh, strict=True))]
    elif isinstance(saved, Mapping) and isinstance(fresh, Mapping):
        shared = [key for key in fresh if key in saved and key not in skip]
        pairs = [(f"{where}.{key}", saved[key], fresh[key]) for key in shared]
    else:
        return None
    return next((d for w, a, b in pairs if (d := _unlike(a, b, w)) is not None), None)


def check_resumable(
    state: dict[str, Any],
    path: Path,
    param_groups: list[dict[str, Any]],
    scheduler: dict[str, Any] | None,
    ignore: tuple[str, ...],
) -> None:
    """Refuse a checkpoint whose optimiser or scheduler settings are not of the kinds this
    process's own have (`param_groups`, `scheduler`; settings in `ignore` are this process's
    to choose), or that lacks the grad scaler's state."""
    if "grad_scaler" not in state:
        raise _damaged(path, "no grad_scaler")
    saved_groups = state["optimizer"]["param_groups"]
    detail: str | None
    if len(saved_groups) != len(param_groups):
        detail = f"{len(saved_groups)} parameter groups where {len(param_groups)} were expected"
    else:
        skip = ("params", *ignore)
        unlike = (
            _unlike(saved, fresh, f"optimizer.param_groups[{i}]", skip)
            for i, (saved, fresh) in enumerate(zip(saved_groups, param_groups, strict=True))
        )
        detail = next((d for d in unlike if d is not None), None)
    if detail is None and scheduler is not None and state.get("scheduler") is not None:
        detail = _unlike(state["scheduler"], scheduler, "scheduler")
    if detail is not None:
        raise _damaged(path, detail)
