"""Building blocks of the training loop (engine.py): data placement, batch order and
augmentation seeds, AMP, evaluation, and the position inside an epoch that an interrupted run
saves and a resumed one restores (checkpoint.py)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from aml_tui.core.data.memory import AnySplit, ImageData
from aml_tui.core.data.stream import batches


def eval_batch_size(device: torch.device) -> int:
    """Evaluation batch: 256 on a CPU (measured fastest there: the activations stay in cache;
    1,000 was 1.9× slower), 1,024 on an accelerator."""
    return 256 if device.type == "cpu" else 1024


@dataclass(frozen=True)
class Evaluation:
    """Loss, accuracy and predicted labels of a model on one split."""

    loss: float
    acc: float
    predictions: torch.Tensor
    probabilities: torch.Tensor | None = None
    """Class probabilities (N × classes), when asked for."""


@dataclass
class EpochProgress:
    """Where training stands inside an epoch: enough to carry on exactly where it stopped."""

    epoch: int
    batch: int = 0
    """Batches of the epoch already trained."""
    loss_sum: torch.Tensor | None = None
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0
    augment_state: torch.Tensor | None = None
    """State of the epoch's augmentation generator after `batch` batches."""

    def to_state(self) -> dict[str, object]:
        return {
            "epoch": self.epoch,
            "batch": self.batch,
            "loss_sum": None if self.loss_sum is None else self.loss_sum.detach().cpu(),
            "correct": self.correct,
            "seen": self.seen,
            "seconds": self.seconds,
            "augment_state": self.augment_state,
        }

    @classmethod
    def from_state(cls, state: dict[str, object]) -> EpochProgress:
        return cls(**state)  # type: ignore[arg-type]


class StepTimer:
    """Splits an epoch's time between making batches and training on them (the data share
    of BatchProgress and EpochEnded), at a cost training does not notice.

    On the CPU (and MPS, where it then counts the time to queue the work) every batch is
    timed by two clock reads: an operation has finished when it returns, so the split is
    exact. On CUDA the host only queues kernels, and waiting for them after every batch
    would slow training; there CUDA events are recorded around the one batch after each
    progress report (a few a second at most) and read at the next report, by which time
    reading the loss has already waited for the GPU: a sample of where the GPU's time goes
    that adds no wait (an event not yet done is left for a later report).
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.data = 0.0
        """Seconds (milliseconds on CUDA) spent making batches, summed."""
        self.step = 0.0
        """Seconds (milliseconds on CUDA) spent in training steps, summed."""
        self.started = self.ready = 0.0
        self.sampling = True
        """CUDA: whether the current batch is timed by events."""
        self.events: list[torch.cuda.Event] = []
        self.pending: list[list[torch.cuda.Event]] = []
        """CUDA: the (start, data ready, step done) events of sampled batches not read yet."""

    def start(self) -> None:
        """A batch begins: its data is made next."""
        if not self.cuda:
            self.started = time.perf_counter()
        elif self.sampling:
            self.events = [timing_event()]
            self.events[0].record()

    def data_ready(self) -> None:
        """The batch is on the device; its training step comes next."""
        if not self.cuda:
            self.ready = time.perf_counter()
            self.data += self.ready - self.started
        elif self.sampling:
            self.events.append(timing_event())
            self.events[1].record()

    def step_done(self, now: float) -> None:
        """The training step has returned (`now`: perf_counter read just after it)."""
        if not self.cuda:
            self.step += now - self.ready
        elif self.sampling:
            self.events.append(timing_event())
            self.events[2].record()
            self.pending.append(self.events)
            self.sampling = False

    def share(self) -> float | None:
        """The data share so far (None before anything was timed). On CUDA, called after
        the loss was read, it adds the sampled batches that have finished and samples the
        next batch."""
        if self.cuda:
            waiting = []
            for start, ready, end in self.pending:
                if end.query():  # type: ignore[no-untyped-call]
                    self.data += start.elapsed_time(ready)
                    self.step += ready.elapsed_time(end)
                else:
                    waiting.append([start, ready, end])
            self.pending = waiting
            self.sampling = True
        total = self.data + self.step
        return self.data / total if total > 0 else None


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def timing_event() -> torch.cuda.Event:
    """A CUDA event that records the time (torch leaves its constructor untyped)."""
    return torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]


def place_data(data: ImageData, device: torch.device) -> ImageData:
    """On CUDA the whole dataset moves to the GPU once and batches are indexed there; if it
    does not fit, it stays in pinned host memory for fast non-blocking copies."""
    if device.type != "cuda":
        return data
    try:
        return data.to(device)
    except torch.OutOfMemoryError:
        torch.cuda.empty_cache()
        return data.pin_memory()


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 autocast on CUDA where supported, else fp16; none on other devices."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def batch_count(size: int, batch_size: int) -> int:
    """Batches in an epoch. A last batch of a single image joins the one before it: BatchNorm
    cannot train on one image once the feature map is 1×1 (ResNet-18 at 32 pixels)."""
    count = math.ceil(size / batch_size)
    return count - 1 if count > 1 and size % batch_size == 1 else count


def epoch_order(size: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled sample order of an epoch: a function of the seed and the epoch only."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(size, generator=generator)


def augment_generator(seed: int, epoch: int, resumed: EpochProgress | None) -> torch.Generator:
    """The random source of an epoch's augmentation: seeded by the seed and the epoch, or
    where an interrupted epoch left it."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch + 500_000)
    if resumed is not None and resumed.augment_state is not None:
        generator.set_state(resumed.augment_state)
    return generator


def batch_indices(order: torch.Tensor, batch: int, batches: int, batch_size: int) -> torch.Tensor:
    """The samples of batch `batch` (from 0) of an epoch's `order`; the last batch takes
    everything left (see batch_count)."""
    end = len(order) if batch + 1 == batches else (batch + 1) * batch_size
    return order[batch * batch_size : end]


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    split: AnySplit,
    transform: Callable[[torch.Tensor], torch.Tensor],
    loss_name: str,
    batch_size: int | None = None,
    amp: torch.dtype | None = None,
    keep_probabilities: bool = False,
) -> Evaluation:
    """Mean loss, accuracy and predictions on a whole split, in eval mode."""
    batch_size = batch_size or eval_batch_size(device_of(model))
    was_training = model.training
    model.eval()
    loss_fn = F.nll_loss if loss_name == "nll" else F.cross_entropy  # unsmoothed, always
    total_loss = torch.zeros((), dtype=torch.float64)
    predictions: list[torch.Tensor] = []
    probabilities: list[torch.Tensor] = []
    spans = [slice(start, start + batch_size) for start in range(0, len(split), batch_size)]
    for stored, stored_labels in batches(split, spans, pin=device_of(model).type == "cuda"):
        images = transform(stored)
        with torch.autocast(images.device.type, dtype=amp, enabled=amp is not None):
            outputs = model(images)
        labels = stored_labels.to(outputs.device)
        total_loss += loss_fn(outputs.float(), labels, reduction="sum").double().cpu()
        predictions.append(outputs.argmax(1).cpu())
        if keep_probabilities:
            probabilities.append(torch.softmax(outputs.float(), dim=1).cpu())
    model.train(was_training)
    predicted = torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.long)
    count = max(len(split), 1)
    correct = int((predicted == split.labels.cpu()).sum())
    probs = torch.cat(probabilities) if probabilities else None
    return Evaluation(float(total_loss) / count, correct / count, predicted, probs)
