"""The trainer: epochs over in-memory data, evaluation after each, events to listeners.

It knows nothing of terminals. It checks a threading.Event between batches, so a stop request
takes effect within one batch: the run is saved and marked interrupted.

The loop reads top-down as in Lightning Fabric's hand-written trainer: `run` (records how the
run ended) -> `fit` (the epochs) -> `train_epoch` (the batches) -> `train_step` (one
optimiser step), then `end_epoch` (evaluate, save, return the EpochEnded event). Beside it:
setup.py (a new or resumed run made ready: recipe, device, data, weights, run folder),
trainer_state.py (the model, optimiser and counters the loop works on), checkpoint.py (what
last.pt/best.pt hold, restore, the resume/evaluate fit check), distributed.py (every torchrun
collective), failures.py (exception -> RunFailed reason), selection.py (which split picks
best.pt), loop.py (batch order, AMP, evaluation).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path

import torch
from torch import nn

from aml_tui.config import TrainConfig
from aml_tui.core.data.memory import AnySplit, ImageData
from aml_tui.core.data.stream import batches as batches_of
from aml_tui.core.data.stream import streaming_note
from aml_tui.core.data.transforms import random_crop_flip
from aml_tui.core.events import (
    BatchProgress,
    EpochEnded,
    Event,
    FinishStatus,
    Listener,
    RunFailed,
    RunFinished,
    RunStarted,
    Warned,
)
from aml_tui.core.experiments import Experiment
from aml_tui.core.models import count_parameters
from aml_tui.core.runstore.claim import RunClaim
from aml_tui.core.runstore.recorder import RunRecorder
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.training.checkpoint import EpochSaver, save_checkpoint
from aml_tui.core.training.distributed import Distributed, any_rank_stopping
from aml_tui.core.training.failures import RAISED, classify_failure, model_failure
from aml_tui.core.training.loop import (
    EpochProgress,
    Evaluation,
    StepTimer,
    augment_generator,
    batch_count,
    batch_indices,
    epoch_order,
    evaluate,
)
from aml_tui.core.training.trainer_state import TrainingState
from aml_tui.errors import NonFiniteLossError

PROGRESS_INTERVAL_S = 0.25
"""Least time between two BatchProgress events."""


class Trainer(TrainingState):
    """Trains one run of an experiment and reports through events (the parts it trains and
    the counters it keeps are a TrainingState's).

    Build it with `setup.create_trainer(config, ...)`, which loads the data and makes the run
    folder, or `setup.resume_trainer(folder, ...)`, then call `run()` in whatever thread should
    do the work.
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
        super().__init__(config, experiment, data, device, weights, distributed)
        self.stop = stop or threading.Event()
        self.stop_status: FinishStatus = "interrupted"
        """What a stop ends the run as: interrupted, or pruned (headless.VerdictWaiter)."""
        self.listeners: list[Listener] = list(listeners)
        self.saver = EpochSaver(self.warn)
        self.run_folder: RunFolder | None = None
        self.claim: RunClaim | None = None
        """This process's claim on the run folder, released when `run` ends."""
        if run is not None:
            self.attach_run(run)

    def attach_run(self, run: RunFolder, claim: RunClaim | None = None) -> None:
        """Record into `run`: events to metrics.jsonl and summary.json, checkpoints beside.
        The run is this process's (`claim`, else claimed here) until `run()` ends."""
        self.claim = claim or run.claim()
        self.run_folder = run
        recorder = RunRecorder(run, self.experiment.name, self.selection + "_acc", self.warn)
        # First, so summary.json is on disk before any front end hears the run ended.
        self.listeners.insert(0, recorder)

    def emit(self, event: Event) -> None:
        for listener in self.listeners:
            listener(event)

    def warn(self, message: str) -> None:
        """Report a problem that does not stop training (a checkpoint or record not written)."""
        self.emit(Warned(message))

    def run(self) -> RunFinished | RunFailed:
        """Train every epoch; returns (and emits) how the run ended.

        Errors a user can fix end the run with RunFailed. A bug, or a second Ctrl+C, is
        recorded as RunFailed too (so the run folder says what happened) and then re-raised.
        """
        started = self.run_started = time.perf_counter() - self.seconds_before
        try:
            return self.fit(started)
        except (Exception, KeyboardInterrupt) as error:
            compiled = self.config.compile
            reason, message = classify_failure(error, self.device, self.dist is not None, compiled)
            failed = RunFailed(
                message=message,
                reason=reason,
                epochs_completed=self.epochs_completed,
                best_acc=self.best_acc,
                train_images_per_s=self.images_per_s(),
                device=str(self.device),
                seconds=time.perf_counter() - started,
            )
            self.emit(failed)
            if reason in RAISED:
                raise
            return failed
        finally:
            if self.claim is not None:  # the run is free for another process now
                self.claim.release()

    def fit(self, started: float) -> RunFinished:
        """Train the epochs left, from where a resumed run stopped; ends on the last epoch or
        on a stop request (saving last.pt mid-epoch)."""
        first = self.resume_from.epoch if self.resume_from else self.epochs_completed + 1
        self.emit(self._run_started(first))
        if self.restart_note:
            self.emit(Warned(self.restart_note))
        if note := streaming_note(self.data):
            self.emit(Warned(note))
        ended: EpochEnded | None = None
        status: FinishStatus = "completed"
        stopped_early: int | None = None
        for epoch in range(first, self.config.epochs + 1):
            epoch_started = time.perf_counter()
            resumed, self.resume_from = self.resume_from, None
            before = resumed or EpochProgress(epoch)
            progress, finished = self.train_epoch(epoch, started, resumed)
            self.train_images += (progress.seen - before.seen) * self.world_size  # the whole job's
            self.train_seconds += progress.seconds - before.seconds
            if not finished:
                if self.run_folder is not None:
                    save_checkpoint(self, self.run_folder.last_path, progress)
                status = self.stop_status
                break
            ended = self.end_epoch(progress, epoch_started, started)
            self.emit(ended)
            if self.no_better_for_long(epoch):
                stopped_early = epoch if epoch < self.config.epochs else None
                break
            if any_rank_stopping(self.dist, self.stop, self.device):
                status = self.stop_status if epoch < self.config.epochs else "completed"
                break
        replicas = self.dist.identical(self.model, self.device) if self.dist else None
        result = RunFinished(
            status=status,
            epochs_completed=self.epochs_completed,
            test_acc=ended.test_acc if ended else None,
            scrambled_test_acc=ended.scrambled_test_acc if ended else None,
            best_acc=self.best_acc,
            train_images_per_s=self.images_per_s(),
            device=str(self.device),
            seconds=time.perf_counter() - started,
            world_size=self.world_size,
            replicas_identical=replicas,
            selected_on=self.selection,
            selected_epoch=self.best_epoch,
            selected_test_acc=self.selected_test_acc,
            stopped_early=stopped_early,
        )
        self.emit(result)
        return result

    def no_better_for_long(self, epoch: int) -> bool:
        """--early-stop N: N epochs have ended since the validation accuracy last improved
        (every rank decides alike: the ranks share their evaluation)."""
        patience = self.config.early_stop
        return patience is not None and epoch - (self.best_epoch or 0) >= patience

    def train_epoch(
        self, epoch: int, run_started: float, resumed: EpochProgress | None
    ) -> tuple[EpochProgress, bool]:
        """One pass over the shuffled training set, or the rest of it after `resumed`.

        Returns where the epoch stands and whether it ran to its end (False: a stop request
        cut it short after the batch in progress).
        """
        size, train = self.config.batch_size, self.data.train
        order = epoch_order(len(train), self.config.seed, epoch)
        if self.dist is not None:
            order = self.dist.shard(order)  # this rank's share, the same length on every rank
        order = order.to(train.device)  # indexed where the images lie
        augment = augment_generator(self.config.seed, epoch, resumed) if self.augment else None
        batches = batch_count(len(order), size)
        progress = resumed or EpochProgress(epoch)
        loss_sum = torch.zeros((), device=self.device)
        if progress.loss_sum is not None:
            loss_sum += progress.loss_sum.to(self.device)
        correct = torch.tensor(progress.correct, device=self.device)
        seen = progress.seen
        started = last_report = time.perf_counter() - progress.seconds
        self.train_model.train()
        timer = StepTimer(self.device)
        spans = [batch_indices(order, b, batches, size) for b in range(progress.batch, batches)]
        # closed at the end: a streamed split's worker processes end with the epoch
        with closing(batches_of(train, spans, pin=self.device.type == "cuda")) as stored:
            for batch in range(progress.batch, batches):
                timer.start()
                images, labels = next(stored)
                if augment is not None:
                    images = random_crop_flip(images, 4, augment)
                images = self.transform(images)
                labels = labels.to(self.device, non_blocking=True)
                timer.data_ready()
                loss, right = self.train_step(images, labels)
                loss_sum += loss * labels.shape[0]
                correct += right
                seen += labels.shape[0]
                now = time.perf_counter()
                timer.step_done(now)
                last_batch = batch + 1 == batches
                stopping = self._stopping(loss, epoch, batch)
                if last_batch or stopping or now - last_report >= PROGRESS_INTERVAL_S:
                    last_report = now
                    done = EpochProgress(
                        epoch, batch + 1, loss_sum, int(correct), seen, now - started
                    )
                    self._report(done, batches, now - run_started, timer)
                if stopping and not last_batch:
                    return EpochProgress(
                        epoch, batch + 1, loss_sum.detach().clone(), int(correct), seen,
                        now - started, augment.get_state() if augment is not None else None,
                    ), False  # fmt: skip
        seconds = time.perf_counter() - started
        return EpochProgress(epoch, batches, loss_sum, int(correct), seen, seconds), True

    def train_step(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step on a batch. Returns its mean loss and its count of correct
        predictions as tensors on the device: reading them would wait for the accelerator."""
        with torch.autocast(
            self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None
        ):
            try:
                outputs = self.train_model(images)
                loss = self.loss_fn(outputs.float(), labels)
            except Exception as error:  # the model is the user's: it does not fit its input
                raise model_failure(error, self.experiment, images.shape) from error
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
        if self.config.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not scaled ones
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach(), (outputs.detach().argmax(1) == labels).sum()

    def end_epoch(
        self, progress: EpochProgress, epoch_started: float, run_started: float
    ) -> EpochEnded:
        """After a whole epoch: evaluate every split, step the scheduler, keep the best
        accuracy on the selection split, save last.pt (and best.pt); returns the event."""
        trained = time.perf_counter()
        epoch = progress.epoch
        assert progress.loss_sum is not None
        if self.dist is not None:
            self.dist.share_buffers(self.model)
        evals = {name: self._evaluate(split) for name, split in self.data.evals.items()}
        lr = self.optimizer.param_groups[0]["lr"]
        if self.scheduler is not None:
            self.scheduler.step()
        self.epochs_completed = epoch
        acc = evals[self.selection].acc
        is_best = self.best_acc is None or acc > self.best_acc
        if is_best:
            self.best_acc, self.best_epoch = acc, epoch
            self.selected_test_acc = evals["test"].acc
        if self.run_folder is not None:
            paths = [self.run_folder.last_path] + ([self.run_folder.best_path] if is_best else [])
            self.saver.save(self, paths, EpochProgress(epoch + 1))
        scrambled, val = evals.get("scrambled_test"), evals.get("val")
        seconds = progress.seconds
        return EpochEnded(
            epoch=epoch,
            epochs=self.config.epochs,
            train_loss=float(progress.loss_sum) / progress.seen,
            train_acc=progress.correct / progress.seen,
            test_loss=evals["test"].loss,
            test_acc=evals["test"].acc,
            scrambled_test_loss=scrambled.loss if scrambled else None,
            scrambled_test_acc=scrambled.acc if scrambled else None,
            lr=lr,
            train_images_per_s=progress.seen * self.world_size / seconds if seconds > 0 else 0.0,
            epoch_seconds=time.perf_counter() - epoch_started,
            elapsed=time.perf_counter() - run_started,
            is_best=is_best,
            data_share=self.data_share,
            after_training_seconds=time.perf_counter() - trained,
            val_loss=val.loss if val else None,
            val_acc=val.acc if val else None,
        )

    def _run_started(self, first: int) -> RunStarted:
        """What is trained, where, and from which epoch."""
        trainable, total = count_parameters(self.model)
        return RunStarted(
            run_id=self.run_folder.run_id if self.run_folder else "",
            run_dir=str(self.run_folder.path.resolve()) if self.run_folder else "",
            experiment=self.config.experiment,
            device=str(self.device),
            classes=self.data.classes,
            epochs=self.config.epochs,
            start_epoch=first,
            train_size=len(self.data.train),
            test_size=len(self.data.evals["test"]),
            batches_per_epoch=batch_count(len(self.data.train), self.config.batch_size),
            trainable_params=trainable,
            total_params=total,
        )

    def _stopping(self, loss: torch.Tensor, epoch: int, batch: int) -> bool:
        """Whether to stop after this batch. Distributed, the ranks agree on it after every
        batch, and fail together when any rank's loss is non-finite (one all-reduce for both)."""
        if self.dist is None:
            return self.stop.is_set()
        stopping, non_finite = self.dist.agree_after_batch(self.stop.is_set(), loss, self.device)
        if non_finite:
            raise NonFiniteLossError(
                f"the training loss became non-finite in epoch {epoch}, batch {batch + 1} (on "
                "at least one rank): lower --lr; checkpoints keep the last finite weights"
            )
        return stopping

    def _report(
        self, position: EpochProgress, batches: int, elapsed: float, timer: StepTimer
    ) -> None:
        """Emit BatchProgress for `position`; a single process fails on a non-finite loss here
        (a few times a second, not per batch: reading the loss waits for the accelerator, so
        the timer's CUDA samples are read after it). The epoch's last report leaves its data
        share in `data_share` for EpochEnded."""
        assert position.loss_sum is not None
        running_loss = float(position.loss_sum) / position.seen
        if self.dist is None and not math.isfinite(running_loss):
            raise NonFiniteLossError(
                f"the training loss became {running_loss} in epoch {position.epoch}, batch "
                f"{position.batch}: lower --lr; checkpoints keep the last finite weights"
            )
        self.data_share = timer.share()
        self.emit(
            BatchProgress(
                epoch=position.epoch,
                epochs=self.config.epochs,
                batch=position.batch,
                batches=batches,
                running_loss=running_loss,
                running_acc=position.correct / position.seen,
                images_per_s=position.seen / max(position.seconds, 1e-9),
                elapsed=elapsed,
                lr=self.optimizer.param_groups[0]["lr"],
                data_share=self.data_share,
            )
        )

    def _evaluate(self, split: AnySplit) -> Evaluation:
        """Loss and accuracy on a whole split (distributed: each rank evaluates a part)."""
        if self.dist is not None:
            return self.dist.evaluate(split, self._evaluate_part, self.device)
        return self._evaluate_part(split)

    def _evaluate_part(self, split: AnySplit) -> Evaluation:
        return evaluate(self.model, split, self.transform, self.experiment.loss, amp=self.amp_dtype)
