"""The trainer: epochs over in-memory data, evaluation after each, events to listeners.

It knows nothing of terminals. It checks a threading.Event between batches, so a stop request
takes effect within one batch: the run is saved and marked interrupted.
"""

from __future__ import annotations

import dataclasses
import math
import re
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aml_tui import __version__
from aml_tui.config import RESUME_OVERRIDES, TrainConfig
from aml_tui.core.checkpoint import FORMAT_VERSION, load_checkpoint, save_atomic
from aml_tui.core.data import ImageData, Split
from aml_tui.core.device import resolve_device
from aml_tui.core.distributed import Distributed, init_distributed
from aml_tui.core.events import (
    BatchProgress,
    EpochEnded,
    Event,
    Listener,
    RunFailed,
    RunFinished,
    RunStarted,
    Warned,
)
from aml_tui.core.experiments import Experiment, get_experiment
from aml_tui.core.loop import (
    EpochProgress,
    Evaluation,
    amp_dtype,
    batch_count,
    epoch_order,
    evaluate,
    loss_function,
    place_data,
)
from aml_tui.core.models import count_parameters
from aml_tui.core.pretrained import resolve_weights
from aml_tui.core.runs import RunFolder, RunRecorder
from aml_tui.core.transforms import random_crop_flip
from aml_tui.errors import AmlTuiError, CheckpointError, NonFiniteLossError

MAX_SAVE_FAILURES = 3
"""Training stops when saving fails after this many epochs in a row."""

PROGRESS_INTERVAL_S = 0.25
"""Least time between two BatchProgress events."""


def _setup(config: TrainConfig) -> tuple[Experiment, Distributed | None, torch.device]:
    """The recipe, the torchrun job (if any) and this process's device, for a new or resumed run."""
    experiment = get_experiment(config.experiment)
    experiment.check(config)
    distributed, device_name = init_distributed(config.device)
    return experiment, distributed, resolve_device(device_name)


IMPLEMENTATION_KEYS = ("fused", "foreach", "capturable", "differentiable")
"""Optimiser settings that choose a kernel, not the maths: this process decides them."""


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


def _is_lost_peer(error: BaseException) -> bool:
    """A collective failed because another rank went away (killed, crashed, out of memory)."""
    import torch.distributed as dist

    if isinstance(error, dist.DistError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and any(
        mark in text for mark in ("gloo", "NCCL", "Connection reset", "Connection closed")
    )


def _is_compile_error(error: BaseException) -> bool:
    """An error raised by torch.compile's machinery (no C++ compiler, unsupported op, ...),
    not one the model raised while being traced (that is a bug either way)."""
    kind = type(error)
    return kind.__module__.startswith(("torch._dynamo", "torch._inductor")) and (
        kind.__name__ != "TorchRuntimeError"
    )


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
        distributed: Distributed | None = None,
    ) -> None:
        self.config = config
        self.dist = distributed
        self.experiment = experiment
        self.device = device
        self.stop = stop or threading.Event()
        self.listeners: list[Listener] = list(listeners)
        self.data = place_data(data, device)
        torch.manual_seed(config.seed)
        model = experiment.build_model(len(data.classes), weights)
        self.model = model.to(device, memory_format=torch.channels_last)
        self.train_model: nn.Module = self.model
        if distributed is not None:
            from torch.nn.parallel import DistributedDataParallel

            ids = [device.index] if device.type == "cuda" else None
            self.train_model = DistributedDataParallel(self.model, device_ids=ids)
        if device.type == "cuda":
            # Fixed image sizes: cuDNN's autotuned kernels pay off from the second batch.
            torch.backends.cudnn.benchmark = True
        if config.compile:
            # Training steps only; evaluation runs the plain module (no recompile for its
            # batch size and eval mode). Checkpoints hold self.model's state either way.
            self.train_model = torch.compile(self.train_model)  # type: ignore[assignment]
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
        self.resume_from: EpochProgress | None = None
        self.restart_note = ""
        self.save_failures = 0
        self.train_images = 0
        self.train_seconds = 0.0
        self.seconds_before = 0.0
        """Wall time of the run's earlier sessions (a resumed run's clock carries on)."""
        self.run_started: float | None = None
        self.run_folder: RunFolder | None = None
        if run is not None:
            self.attach_run(run)

    def attach_run(self, run: RunFolder) -> None:
        """Record into `run`: events to metrics.jsonl and summary.json, checkpoints beside."""
        self.run_folder = run
        run.claim()
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
        experiment, distributed, device = _setup(config)
        weights = resolve_weights(config.weights, config.offline) if experiment.pretrained else None
        data = experiment.load_data(config, True)
        if distributed is not None and not distributed.is_main:
            listeners, write_run = (), False  # only rank 0 prints and writes the run folder
        trainer = cls(config, experiment, data, device, None, listeners, stop, weights, distributed)
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

    @classmethod
    def resume(
        cls,
        folder: RunFolder,
        listeners: Iterable[Listener] = (),
        stop: threading.Event | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Trainer:
        """Carry on a run from its last.pt with its saved configuration, in its own folder.

        `overrides` (fields of RESUME_OVERRIDES: the data moved, or this machine keeps it
        elsewhere or cannot compile) replace the saved values; config.toml records them once
        the data has loaded.
        """
        config, info = folder.read_config()
        overrides = overrides or {}
        assert set(overrides) <= set(RESUME_OVERRIDES), overrides
        moved = {key: value for key, value in overrides.items() if getattr(config, key) != value}
        config = dataclasses.replace(config, **moved)
        state = load_checkpoint(folder.last_path)
        if state.get("experiment") != config.experiment:
            raise CheckpointError(
                f"{folder.last_path} is a {state.get('experiment')!r} checkpoint but the run is "
                f"{config.experiment!r}: it cannot be resumed; start a new run"
            )
        experiment, distributed, device = _setup(config)
        data = experiment.load_data(config, True)
        main = distributed is None or distributed.is_main
        if list(state.get("classes", [])) != list(data.classes):
            raise CheckpointError(
                f"{folder.last_path} has {len(state.get('classes', []))} classes but the data has "
                f"{len(data.classes)}: resume with the data the run was trained on"
            )
        trainer = cls(
            config, experiment, data, device, None, listeners if main else (), stop,
            distributed=distributed,
        )  # fmt: skip
        try:
            trainer.restore(state)
        except (KeyError, RuntimeError, ValueError, TypeError) as error:
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise CheckpointError(
                f"{folder.last_path} does not fit {config.experiment} ({first}): start a new run"
            ) from None
        if main:
            folder.remove_stale_temp_files()
            if moved:
                folder.write_config(config, {**info, "data_source": data.source})
            folder.summary_path.unlink(missing_ok=True)  # running again; rewritten at the end
            trainer.attach_run(folder)
        return trainer

    def emit(self, event: Event) -> None:
        for listener in self.listeners:
            listener(event)

    def run(self) -> RunFinished | RunFailed:
        """Train every epoch; returns (and emits) how the run ended.

        Errors a user can fix end the run with RunFailed. A bug, or a second Ctrl+C, is
        recorded as RunFailed too (so the run folder says what happened) and then re-raised.
        """
        started = self.run_started = time.perf_counter() - self.seconds_before
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
            if self.dist is not None and _is_lost_peer(error):
                # gloo: "[.../pair.cc:545] Read error [127.0.0.1]:51867: Connection reset by
                # peer. This is typically caused by ..." -> the part between.
                first = (str(error).strip().splitlines() or [type(error).__name__])[0]
                first = re.sub(r"^\[[^\]]*\]\s*", "", first).split(". ")[0]
                message = (
                    f"lost contact with another process of the torchrun job ({first[:160]}): "
                    "the other ranks' output says why; resume with the same torchrun command "
                    "and --resume"
                )
                return self._failed(message, "peer_lost", started)
            if self.config.compile and _is_compile_error(error):
                first = (str(error).strip().splitlines() or [type(error).__name__])[0]
                message = (
                    f"torch.compile failed ({first[:200]}): train without --compile (a "
                    "resumed run: --resume RUN --no-compile)"
                )
                return self._failed(message, "user_error", started)
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
        first = self.resume_from.epoch if self.resume_from else self.epochs_completed + 1
        self.emit(
            RunStarted(
                run_id=self.run_folder.run_id if self.run_folder else "",
                run_dir=str(self.run_folder.path.resolve()) if self.run_folder else "",
                experiment=config.experiment,
                device=str(self.device),
                classes=self.data.classes,
                epochs=config.epochs,
                start_epoch=first,
                train_size=len(self.data.train),
                test_size=len(self.data.evals["test"]),
                batches_per_epoch=batches,
                trainable_params=trainable,
                total_params=total,
            )
        )
        if self.restart_note:
            self.emit(Warned(self.restart_note))
        last: dict[str, Evaluation] = {}
        status = "completed"
        for epoch in range(first, config.epochs + 1):
            epoch_started = time.perf_counter()
            resumed, self.resume_from = self.resume_from, None
            before = resumed.seen if resumed else 0, resumed.seconds if resumed else 0.0
            progress, finished = self._train_epoch(epoch, started, resumed)
            ranks = self.dist.world_size if self.dist else 1
            self.train_images += (progress.seen - before[0]) * ranks  # the whole job's images
            self.train_seconds += progress.seconds - before[1]
            if not finished:
                if self.run_folder is not None:
                    self._save(self.run_folder.last_path, progress)
                status = "interrupted"
                break
            assert progress.loss_sum is not None
            train_loss = float(progress.loss_sum) / progress.seen
            train_acc = progress.correct / progress.seen
            images, seconds = progress.seen, progress.seconds
            if self.dist is not None:
                self.dist.share_buffers(self.model)
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
                paths = [self.run_folder.last_path] + (
                    [self.run_folder.best_path] if is_best else []
                )
                self._save_epoch(paths, EpochProgress(epoch + 1))
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
                    train_images_per_s=images * ranks / seconds if seconds > 0 else 0.0,
                    epoch_seconds=time.perf_counter() - epoch_started,
                    elapsed=time.perf_counter() - started,
                    is_best=is_best,
                )
            )
            if self._any_rank_stopping():
                status = "interrupted" if epoch < config.epochs else "completed"
                break
        replicas = self.dist.identical(self.model, self.device) if self.dist else None
        finished = RunFinished(
            status=status,
            epochs_completed=self.epochs_completed,
            test_acc=last["test"].acc if last else None,
            scrambled_test_acc=last["scrambled_test"].acc if "scrambled_test" in last else None,
            best_test_acc=self.best_acc,
            train_images_per_s=self._images_per_s(),
            device=str(self.device),
            seconds=time.perf_counter() - started,
            world_size=self.dist.world_size if self.dist else 1,
            replicas_identical=replicas,
        )
        self.emit(finished)
        return finished

    def _any_rank_stopping(self) -> bool:
        """Whether a stop was asked for, agreed by every rank so none waits for the others."""
        if self.dist is None:
            return self.stop.is_set()
        (stopping,) = self.dist.any(self.stop.is_set(), device=self.device)
        return stopping

    def _train_epoch(
        self, epoch: int, run_started: float, resumed: EpochProgress | None
    ) -> tuple[EpochProgress, bool]:
        """One pass over the shuffled training set, or the rest of it after `resumed`.

        Returns where the epoch stands and whether it ran to its end (False: a stop request
        cut it short after the batch in progress).
        """
        config, train = self.config, self.data.train
        model, optimizer, loss_fn = self.train_model, self.optimizer, self.loss_fn
        model.train()
        order = epoch_order(len(train), config.seed, epoch)
        if self.dist is not None:
            order = self.dist.shard(order)  # this rank's share, the same length on every rank
        order = order.to(train.images.device)
        augment = None
        if self.augment:
            augment = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch + 500_000)
            if resumed is not None and resumed.augment_state is not None:
                augment.set_state(resumed.augment_state)
        amp_on = self.amp_dtype is not None
        batches = batch_count(len(order), config.batch_size)
        progress = resumed or EpochProgress(epoch)
        loss_sum = torch.zeros((), device=self.device)
        if progress.loss_sum is not None:
            loss_sum += progress.loss_sum.to(self.device)
        correct = torch.tensor(progress.correct, device=self.device)
        seen = progress.seen
        started = last_report = time.perf_counter() - progress.seconds
        for batch in range(progress.batch, batches):
            end = len(order) if batch + 1 == batches else (batch + 1) * config.batch_size
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
            stopping = self._batch_flags(loss, epoch, batch) if self.dist else self.stop.is_set()
            if last_batch or stopping or now - last_report >= PROGRESS_INTERVAL_S:
                last_report = now
                running_loss = float(loss_sum) / seen
                if self.dist is None and not math.isfinite(running_loss):
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
                return EpochProgress(
                    epoch, batch + 1, loss_sum.detach().clone(), int(correct), seen,
                    now - started, augment.get_state() if augment is not None else None,
                ), False  # fmt: skip
        seconds = time.perf_counter() - started
        return EpochProgress(epoch, batches, loss_sum, int(correct), seen, seconds), True

    def _batch_flags(self, loss: torch.Tensor, epoch: int, batch: int) -> bool:
        """Distributed: agree after every batch on stopping and on a non-finite loss."""
        assert self.dist is not None
        flags = torch.stack(
            [
                torch.tensor(int(self.stop.is_set()), device=self.device),
                (~torch.isfinite(loss.detach())).to(torch.long),
            ]
        )
        self.dist.sum(flags)
        stopping, non_finite = (bool(v) for v in flags.tolist())
        if non_finite:
            raise NonFiniteLossError(
                f"the training loss became non-finite in epoch {epoch}, batch {batch + 1} (on "
                "at least one rank): lower --lr; checkpoints keep the last finite weights"
            )
        return stopping

    def _evaluate(self, split: Split) -> Evaluation:
        if self.dist is None:
            return evaluate(
                self.model, split, self.transform, self.experiment.loss, amp=self.amp_dtype
            )
        start, end = self.dist.span(len(split))
        part = Split(split.images[start:end], split.labels[start:end])
        local = evaluate(self.model, part, self.transform, self.experiment.loss, amp=self.amp_dtype)
        correct = int((local.predictions == part.labels.cpu()).sum())
        sums = torch.tensor(
            [local.loss * len(part), correct], dtype=torch.float64, device=self.device
        )
        loss_sum, correct_all = self.dist.sum(sums).tolist()
        total = max(len(split), 1)
        return Evaluation(loss_sum / total, correct_all / total, local.predictions)

    def _save(self, path: Path, position: EpochProgress) -> None:
        """Write a checkpoint of everything needed to carry on from `position`: the start of
        an epoch (after an epoch ended) or a batch inside one (after a stop request)."""
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
            "epoch": self.epochs_completed,
            "position": position.to_state() if position.batch else None,
            "world_size": self.dist.world_size if self.dist else 1,
            "best_test_acc": self.best_acc,
            "selection_metric": self.selection + "_acc",
            "train_images": self.train_images,
            "train_seconds": self.train_seconds,
            "elapsed": time.perf_counter() - (self.run_started or time.perf_counter()),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "permutation": self.data.permutation,
        }
        save_atomic(state, path)

    def _save_epoch(self, paths: list[Path], position: EpochProgress) -> None:
        """Save after an epoch. A failure (disk full, folder gone) is reported and training
        goes on, the previous checkpoints intact, until saving fails in too many epochs in a
        row."""
        errors = []
        for path in paths:
            try:
                self._save(path, position)
            except CheckpointError as error:
                errors.append(str(error))
        if not errors:
            self.save_failures = 0
            return
        self.save_failures += 1
        if self.save_failures >= MAX_SAVE_FAILURES:
            raise CheckpointError(
                f"{errors[0]} — saving failed after {self.save_failures} epochs in a row, so "
                "training stopped; free some space, then resume"
            )
        self.emit(Warned(f"{errors[0]}; training goes on and saves again after the next epoch"))

    def restore(self, state: dict[str, object]) -> None:
        """Continue from a checkpoint's state (see `_save`): weights, optimiser, scheduler,
        RNG, counters and the position inside an interrupted epoch."""
        self.model.load_state_dict(state["model"])  # type: ignore[arg-type]
        load_optimizer_state(self.optimizer, state["optimizer"])  # type: ignore[arg-type]
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["grad_scaler"])  # type: ignore[arg-type]
        self.epochs_completed = int(state["epochs_completed"])  # type: ignore[call-overload]
        self.best_acc = state.get("best_test_acc")  # type: ignore[assignment]
        self.train_images = int(state.get("train_images", 0))  # type: ignore[call-overload]
        self.train_seconds = float(state.get("train_seconds", 0.0))  # type: ignore[arg-type]
        self.seconds_before = float(state.get("elapsed", 0.0))  # type: ignore[arg-type]
        position = state.get("position")
        self.resume_from = EpochProgress.from_state(position) if position else None  # type: ignore[arg-type]
        world = self.dist.world_size if self.dist else 1
        if self.resume_from is not None and state.get("world_size", 1) != world:
            # Shards differ with the number of processes: an exact mid-epoch continuation is
            # impossible, so the interrupted epoch starts again from its first batch.
            self.resume_from = None
            self.restart_note = (
                f"stopped mid-epoch with {state.get('world_size', 1)} process(es), resumed with "
                f"{world}: epoch {self.epochs_completed + 1} starts again from its first batch"
            )
        torch.set_rng_state(state["rng_cpu"])  # type: ignore[arg-type]
        if self.device.type == "cuda" and state.get("rng_cuda"):
            torch.cuda.set_rng_state_all(state["rng_cuda"])  # type: ignore[arg-type]
