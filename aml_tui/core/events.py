"""What the trainer reports, as small frozen dataclasses; every front end listens to these.

Names are past-tense facts. Listeners are plain callables taking one event; the Textual app
wraps them in messages, the headless reporter prints them, the run folder records them.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

FinishStatus = Literal["completed", "interrupted", "pruned"]
"""How a run that did not fail ended: every epoch trained, or stopped on request."""

FailureReason = Literal[
    "non_finite_loss", "out_of_memory", "user_error", "interrupted_hard", "peer_lost", "bug"
]
"""Why a run failed (RunFailed.reason); core/failures.py decides which."""


@dataclass(frozen=True)
class RunStarted:
    """Training is about to begin: what is trained, where, and how much."""

    run_id: str
    run_dir: str
    experiment: str
    device: str
    classes: tuple[str, ...]
    epochs: int
    start_epoch: int
    train_size: int
    test_size: int
    batches_per_epoch: int
    trainable_params: int
    total_params: int


@dataclass(frozen=True)
class BatchProgress:
    """Progress within an epoch; emitted a few times a second at most, and after the last batch."""

    epoch: int
    epochs: int
    batch: int
    batches: int
    running_loss: float
    running_acc: float
    images_per_s: float
    elapsed: float
    lr: float
    """The learning rate in use now."""
    data_share: float | None = None
    """Of the epoch's time so far, the share spent making batches (indexing, augmenting,
    normalising, copying to the device) rather than training on them, 0 to 1 (see
    loop.StepTimer for how it is measured); None where not measured (older records)."""


@dataclass(frozen=True)
class EpochEnded:
    """An epoch was trained and evaluated (and its checkpoints saved)."""

    epoch: int
    epochs: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    scrambled_test_loss: float | None
    scrambled_test_acc: float | None
    lr: float
    train_images_per_s: float
    epoch_seconds: float
    elapsed: float
    is_best: bool
    data_share: float | None = None
    """As BatchProgress.data_share, over the whole epoch."""
    after_training_seconds: float | None = None
    """Of epoch_seconds, the time after the training: evaluation, scheduler and checkpoints
    (None in run folders written before aml-tui recorded it)."""
    val_loss: float | None = None
    val_acc: float | None = None
    """On the validation images held out of the training set (None: no --val-split)."""


@dataclass(frozen=True)
class RunFinished:
    """The run ended: completed, or interrupted by a stop request (checkpoint saved), or
    pruned (a search's pruner stopped it after an epoch: saved as interrupted, never resumed)."""

    status: FinishStatus
    epochs_completed: int
    test_acc: float | None
    scrambled_test_acc: float | None
    best_acc: float | None
    """Best accuracy on the split that selects best.pt: the scrambled test set in scrambled
    runs, the test set otherwise (summary.json's selection_metric names it)."""
    train_images_per_s: float
    device: str
    seconds: float
    world_size: int = 1
    """Processes that trained the run (torchrun)."""
    replicas_identical: bool | None = None
    """Distributed runs: whether every rank ended with the same weights."""
    selected_on: str = "test"
    """The split whose accuracy picked best.pt: val, test or scrambled_test."""
    selected_epoch: int | None = None
    """The epoch best.pt holds (None: no epoch ended)."""
    selected_test_acc: float | None = None
    """Test accuracy of that epoch's model (test_acc is the last epoch's)."""
    stopped_early: int | None = None
    """The epoch after which --early-stop ended the run (None: it was not stopped early)."""


@dataclass(frozen=True)
class RunFailed:
    """The run stopped on an error; `message` says what and how to fix it."""

    message: str
    reason: FailureReason
    """"non_finite_loss", "out_of_memory", "user_error" (an AmlTuiError: bad input, disk
    full, ...), "interrupted_hard" (a second Ctrl+C), "peer_lost" (another torchrun rank
    went away) or "bug"."""
    epochs_completed: int
    best_acc: float | None
    """As in RunFinished."""
    train_images_per_s: float
    device: str
    seconds: float


@dataclass(frozen=True)
class Warned:
    """Something went wrong that training survived (e.g. a checkpoint could not be saved)."""

    message: str


Event = RunStarted | BatchProgress | EpochEnded | RunFinished | RunFailed | Warned
Listener = Callable[[Event], None]

EVENT_NAMES: dict[type, str] = {
    RunStarted: "run_started",
    BatchProgress: "batch_progress",
    EpochEnded: "epoch_ended",
    RunFinished: "run_finished",
    RunFailed: "run_failed",
    Warned: "warned",
}


def event_record(event: Event) -> dict[str, Any]:
    """A JSON-ready dict of the event with its name under "event"."""
    record: dict[str, Any] = {"event": EVENT_NAMES[type(event)]}
    record.update(asdict(event))
    return record


_EVENT_TYPES = {name: cls for cls, name in EVENT_NAMES.items()}


OLD_NAMES = {"best_test_acc": "best_acc"}
"""Keys that aml-tui before 0.2 wrote into metrics.jsonl, summary.json and checkpoints, and
their names now: best_test_acc was the best accuracy on the selection split, even when that
was the scrambled one."""


def with_current_names(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record, summary or checkpoint with its keys from before 0.2 under their names now
    (a key under both names keeps the new one's value)."""
    renamed = dict(record)
    for old, new in OLD_NAMES.items():
        if old in renamed:
            value = renamed.pop(old)
            renamed.setdefault(new, value)
    return renamed


def event_from_record(record: dict[str, Any]) -> Event | None:
    """The event a metrics.jsonl record was made from (None for records of other kinds)."""
    cls = _EVENT_TYPES.get(str(record.get("event")))
    if cls is None:
        return None
    names = {f.name for f in fields(cls)}
    values = {key: value for key, value in with_current_names(record).items() if key in names}
    if isinstance(values.get("classes"), list):
        values["classes"] = tuple(values["classes"])
    hints = _field_types(cls)
    if not all(_has_type(value, hints[key]) for key, value in values.items()):
        return None  # written by hand or by another program: a record of no known event
    try:
        event: Event = cls(**values)
    except TypeError:
        return None
    return event


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _has_type(value: object, hint: Any) -> bool:
    """Whether a value read back from metrics.jsonl has its field's type: the front ends
    compute with the numbers and show the strings, and a file may hold anything."""
    origin = get_origin(hint)
    if origin is Literal:
        return value in get_args(hint)
    if origin is Union or origin is types.UnionType:
        return any(_has_type(value, arg) for arg in get_args(hint))
    if origin is tuple:
        return isinstance(value, tuple) and all(isinstance(item, str) for item in value)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)
