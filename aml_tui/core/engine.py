"""The trainer: epochs over in-memory data, evaluation after each, events to listeners.

It knows nothing of terminals. It checks a threading.Event between batches, so a stop request
takes effect within one batch: the run is saved and marked interrupted.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from aml_tui import __version__
from aml_tui.config import TrainConfig
from aml_tui.core.checkpoint import FORMAT_VERSION, save_atomic
from aml_tui.core.data import ImageData, Split
from aml_tui.core.device import resolve_device
from aml_tui.core.events import (
    BatchProgress,
    EpochEnded,
    Event,
    Listener,
    RunFailed,
    RunFinished,
    RunStarted,
)
from aml_tui.core.models import count_parameters
from aml_tui.core.pretrained import resolve_weights
from aml_tui.core.runs import RunFolder, RunRecorder
from aml_tui.core.transforms import random_crop_flip
from aml_tui.errors import AmlTuiError, NonFiniteLossError
from aml_tui.experiments import Experiment, get_experiment

PROGRESS_INTERVAL_S = 0.25
"""Least time between two BatchProgress events."""

EVAL_BATCH_SIZE = 1000


@dataclass(frozen=True)
class Evaluation:
    """Loss, accuracy and predicted labels of a model on one split."""

    loss: float
    acc: float
    predictions: torch.Tensor
    probabilities: torch.Tensor | None = None
    """Class probabilities (N × classes), when asked for."""


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


def loss_function(name: str) -> Callable[..., torch.Tensor]:
    return F.nll_loss if name == "nll" else F.cross_entropy


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    split: Split,
    transform: Callable[[torch.Tensor], torch.Tensor],
    loss_name: str,
    batch_size: int = EVAL_BATCH_SIZE,
    amp: torch.dtype | None = None,
    keep_probabilities: bool = False,
) -> Evaluation:
    """Mean loss, accuracy and predictions on a whole split, in eval mode."""
    was_training = model.training
    model.eval()
    loss_fn = loss_function(loss_name)
    total_loss = torch.zeros((), dtype=torch.float64)
    predictions: list[torch.Tensor] = []
    probabilities: list[torch.Tensor] = []
    for start in range(0, len(split), batch_size):
        images = transform(split.images[start : start + batch_size])
        with torch.autocast(images.device.type, dtype=amp, enabled=amp is not None):
            outputs = model(images)
        labels = split.labels[start : start + batch_size].to(outputs.device)
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


class Trainer:
    """Trains one run of an experiment and reports through events.

    Build it with `Trainer.create(config, ...)`, which loads the data and makes the run folder,
    then call `run()` in whatever thread should do the work.
    """

    def __init__(
        self,
        config: TrainConfig,
        experiment: Experiment,
        data: ImageData,
        device: torch.device,
        run: RunFolder | None = None,
        listeners: Iterable[Listener] = (),
        stop: threading.Event | None = None,
        weights: Path | None = None,
    ) -> None:
        self.config = config
        self.experiment = experiment
        self.device = device
        self.stop = stop or threading.Event()
        self.listeners: list[Listener] = list(listeners)
        self.data = place_data(data, device)
        torch.manual_seed(config.seed)
        model = experiment.build_model(len(data.classes), weights)
        self.model = model.to(device, memory_format=torch.channels_last)
        self.optimizer = experiment.make_optimizer(self.model, config.lr)
        self.scheduler = (
            experiment.make_scheduler(self.optimizer, config) if experiment.make_scheduler else None
        )
        self.loss_fn = loss_function(experiment.loss)
        self.transform = experiment.make_transform(config, data, device)
        self.augment = config.augment and data.augmentable
        self.amp_dtype = amp_dtype(device) if config.amp else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.selection = "scrambled_test" if config.scrambled else "test"
        self.best_acc: float | None = None
        self.epochs_completed = 0
        self.run_folder: RunFolder | None = None
        if run is not None:
            self.attach_run(run)

    def attach_run(self, run: RunFolder) -> None:
        """Record into `run`: events to metrics.jsonl and summary.json, checkpoints beside."""
        self.run_folder = run
        # First, so summary.json is on disk before any front end hears the run ended.
        self.listeners.insert(0, RunRecorder(run, self.experiment.name, self.selection + "_acc"))

    @classmethod
    def create(
        cls,
        config: TrainConfig,
        listeners: Iterable[Listener] = (),
        stop: threading.Event | None = None,
        write_run: bool = True,
    ) -> Trainer:
        """Resolve the device, load the data and weights, build the model and the run folder.

        Everything that can fail on bad input fails here, before a run folder exists.
        """
        experiment = get_experiment(config.experiment)
        device = resolve_device(config.device)
        weights = resolve_weights(config.weights, config.offline) if experiment.pretrained else None
        data = experiment.load_data(config)
        trainer = cls(config, experiment, data, device, None, listeners, stop, weights)
        if write_run:
            run = RunFolder.create(Path(config.checkpoints), config.experiment, config.name)
            trainable, total = count_parameters(trainer.model)
            run.write_config(
                config,
                {
                    "device_resolved": str(device),
                    "data_source": data.source,
                    "weights_source": str(weights.resolve()) if weights else None,
                    "classes": list(data.classes),
                    "train_size": len(data.train),
                    "test_size": len(data.evals["test"]),
                    "trainable_params": trainable,
                    "total_params": total,
                    "amp": str(trainer.amp_dtype).removeprefix("torch.")
                    if trainer.amp_dtype
                    else "off",
                    "torch_version": torch.__version__,
                },
            )
            trainer.attach_run(run)
        return trainer

    def emit(self, event: Event) -> None:
        for listener in self.listeners:
            listener(event)

    def run(self) -> RunFinished | RunFailed:
        """Train every epoch; returns (and emits) how the run ended.

        Errors a user can fix end the run with RunFailed. A bug, or a second Ctrl+C, is
        recorded as RunFailed too (so the run folder says what happened) and then re-raised.
        """
        started = time.perf_counter()
        self.train_images = 0
        self.train_seconds = 0.0
        try:
            return self._run(started)
        except NonFiniteLossError as error:
            return self._failed(str(error), "non_finite_loss", started)
        except torch.OutOfMemoryError:
            message = f"out of memory on {self.device}: lower --batch-size or --image-size"
            return self._failed(message, "out_of_memory", started)
        except AmlTuiError as error:
            return self._failed(str(error), "user_error", started)
        except KeyboardInterrupt:
            self._failed("stopped at once by a second Ctrl+C", "interrupted_hard", started)
            raise
        except Exception as error:
            self._failed(f"internal error: {type(error).__name__}: {error}", "bug", started)
            raise

    def _failed(self, message: str, reason: str, started: float) -> RunFailed:
        failed = RunFailed(
            message=message,
            reason=reason,
            epochs_completed=self.epochs_completed,
            best_test_acc=self.best_acc,
            train_images_per_s=self._images_per_s(),
            device=str(self.device),
            seconds=time.perf_counter() - started,
        )
        self.emit(failed)
        return failed

    def _images_per_s(self) -> float:
        return self.train_images / self.train_seconds if self.train_seconds > 0 else 0.0

    def _run(self, started: float) -> RunFinished | RunFailed:
        config = self.config
        trainable, total = count_parameters(self.model)
        batches = batch_count(len(self.data.train), config.batch_size)
        self.emit(
            RunStarted(
                run_id=self.run_folder.run_id if self.run_folder else "",
                run_dir=str(self.run_folder.path) if self.run_folder else "",
                experiment=config.experiment,
                device=str(self.device),
                classes=self.data.classes,
                epochs=config.epochs,
                start_epoch=self.epochs_completed + 1,
                train_size=len(self.data.train),
                test_size=len(self.data.evals["test"]),
                batches_per_epoch=batches,
                trainable_params=trainable,
                total_params=total,
            )
        )
        last: dict[str, Evaluation] = {}
        status = "completed"
        for epoch in range(self.epochs_completed + 1, config.epochs + 1):
            epoch_started = time.perf_counter()
            train_loss, train_acc, images, seconds, position = self._train_epoch(epoch, started)
            self.train_images += images
            self.train_seconds += seconds
            if position is not None:
                self._save(self.run_folder.last_path if self.run_folder else None, epoch, position)
                status = "interrupted"
                break
            last = {name: self._evaluate(split) for name, split in self.data.evals.items()}
            lr = self.optimizer.param_groups[0]["lr"]
            if self.scheduler is not None:
                self.scheduler.step()
            self.epochs_completed = epoch
            acc = last[self.selection].acc
            is_best = self.best_acc is None or acc > self.best_acc
            if is_best:
                self.best_acc = acc
            if self.run_folder is not None:
                self._save(self.run_folder.last_path, epoch, None)
                if is_best:
                    self._save(self.run_folder.best_path, epoch, None)
            scrambled = last.get("scrambled_test")
            self.emit(
                EpochEnded(
                    epoch=epoch,
                    epochs=config.epochs,
                    train_loss=train_loss,
                    train_acc=train_acc,
                    test_loss=last["test"].loss,
                    test_acc=last["test"].acc,
                    scrambled_test_loss=scrambled.loss if scrambled else None,
                    scrambled_test_acc=scrambled.acc if scrambled else None,
                    lr=lr,
                    train_images_per_s=images / seconds if seconds > 0 else 0.0,
                    epoch_seconds=time.perf_counter() - epoch_started,
                    elapsed=time.perf_counter() - started,
                    is_best=is_best,
                )
            )
            if self.stop.is_set():
                status = "interrupted" if epoch < config.epochs else "completed"
                break
        finished = RunFinished(
            status=status,
            epochs_completed=self.epochs_completed,
            test_acc=last["test"].acc if last else None,
            scrambled_test_acc=last["scrambled_test"].acc if "scrambled_test" in last else None,
            best_test_acc=self.best_acc,
            train_images_per_s=self._images_per_s(),
            device=str(self.device),
            seconds=time.perf_counter() - started,
        )
        self.emit(finished)
        return finished

    def _train_epoch(
        self, epoch: int, run_started: float
    ) -> tuple[float, float, int, float, int | None]:
        """One pass over the shuffled training set.

        Returns mean loss, accuracy, images seen, seconds, and the batch count where a stop
        request cut the epoch short (None when it ran to the end).
        """
        config, train = self.config, self.data.train
        model, optimizer, loss_fn = self.model, self.optimizer, self.loss_fn
        model.train()
        order = epoch_order(len(train), config.seed, epoch).to(train.images.device)
        augment = None
        if self.augment:
            augment = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch + 500_000)
        amp_on = self.amp_dtype is not None
        batches = batch_count(len(train), config.batch_size)
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        seen = 0
        started = last_report = time.perf_counter()
        for batch in range(batches):
            end = len(train) if batch + 1 == batches else (batch + 1) * config.batch_size
            index = order[batch * config.batch_size : end]
            batch_images = train.images[index]
            if augment is not None:
                batch_images = random_crop_flip(batch_images, 4, augment)
            images = self.transform(batch_images)
            labels = train.labels[index].to(self.device, non_blocking=True)
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=amp_on):
                outputs = model(images)
                loss = loss_fn(outputs.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
            self.scaler.update()
            loss_sum += loss.detach() * labels.shape[0]
            correct += (outputs.detach().argmax(1) == labels).sum()
            seen += labels.shape[0]
            now = time.perf_counter()
            last_batch = batch + 1 == batches
            stopping = self.stop.is_set()
            if last_batch or stopping or now - last_report >= PROGRESS_INTERVAL_S:
                last_report = now
                running_loss = float(loss_sum) / seen
                if not math.isfinite(running_loss):
                    raise NonFiniteLossError(
                        f"the training loss became {running_loss} in epoch {epoch}, batch "
                        f"{batch + 1}: lower --lr; checkpoints keep the last finite weights"
                    )
                self.emit(
                    BatchProgress(
                        epoch=epoch,
                        epochs=config.epochs,
                        batch=batch + 1,
                        batches=batches,
                        running_loss=running_loss,
                        running_acc=int(correct) / seen,
                        images_per_s=seen / max(now - started, 1e-9),
                        elapsed=now - run_started,
                        lr=optimizer.param_groups[0]["lr"],
                    )
                )
            if stopping and not last_batch:
                return float(loss_sum) / seen, int(correct) / seen, seen, now - started, batch + 1
        seconds = time.perf_counter() - started
        return float(loss_sum) / seen, int(correct) / seen, seen, seconds, None

    def _evaluate(self, split: Split) -> Evaluation:
        return evaluate(self.model, split, self.transform, self.experiment.loss, amp=self.amp_dtype)

    def _save(self, path: Path | None, epoch: int, position: int | None) -> None:
        """Write a checkpoint: after `epoch` completed epochs, or `position` batches into it."""
        if path is None:
            return
        state = {
            "format": FORMAT_VERSION,
            "aml_tui_version": __version__,
            "experiment": self.config.experiment,
            "classes": list(self.data.classes),
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "grad_scaler": self.scaler.state_dict(),
            "epochs_completed": self.epochs_completed,
            "epoch": epoch,
            "batch_in_epoch": position,
            "best_test_acc": self.best_acc,
            "selection_metric": self.selection + "_acc",
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "permutation": self.data.permutation,
        }
        save_atomic(state, path)
