"""The headless reporter of `aml-tui train --no-ui`.

On a terminal: a rich progress bar per epoch with images/s and two ETAs (the epoch's and the
whole run's, core/timing.py's arithmetic as in the app), a line per epoch and a final table.
Anywhere else (nohup, a log file, a pipe): plain lines, no carriage returns. Every line fits
the console's width (the terminal's, COLUMNS, else 80): an epoch takes two lines on a narrow
terminal, never a figure cut in two (render/text.py's fit_figures).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
)
from rich.table import Table

from aml_tui.core.events import (
    BatchProgress,
    EpochEnded,
    Event,
    RunFailed,
    RunFinished,
    RunStarted,
    Warned,
)
from aml_tui.core.selection import chosen_on
from aml_tui.core.timing import estimate
from aml_tui.render.colours import WRONG
from aml_tui.render.text import epoch_lines, fit_figures, format_duration, percent, safe, wrap_words

PLAIN_PROGRESS_STEP = 0.25
"""Plain output prints a progress line each time this fraction of an epoch is done."""

SPEED_FROM = 100
"""Plain progress lines show images/s from this width: narrower, they keep one line of the
same figures every time (with ETAs over an hour they take about 79 columns)."""


class HangupSafeConsole(Console):
    """A console that goes quiet when its reader is gone (an SSH hang-up closes the pipe)
    instead of exiting as rich's default does: training carries on and saves."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.file.fileno())


KEEP = "\xa0"
"""Joins the words of a part of the start line while it is wrapped (textwrap breaks at
spaces only), given back as spaces after."""


class ConsoleReporter:
    """A listener printing training events for a person or a log file."""

    def __init__(
        self, stream: TextIO | None = None, force_terminal: bool | None = None, batch_size: int = 0
    ) -> None:
        """`batch_size`: the run's, for the ETAs (0: worked out from the first RunStarted)."""
        stream = stream or sys.stdout
        self.console = HangupSafeConsole(
            file=stream, force_terminal=force_terminal, highlight=False
        )
        self.errors = HangupSafeConsole(stderr=True, highlight=False)
        self.live = self.console.is_terminal
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.next_plain_step = PLAIN_PROGRESS_STEP
        self.gone = False
        self.batch_size = batch_size
        self.train_size = 0
        self.last_epoch: EpochEnded | None = None

    def __call__(self, event: Event) -> None:
        """Report an event; if the terminal went away (an SSH hang-up), go quiet and let
        training carry on."""
        if self.gone:
            return
        try:
            self._report(event)
        except OSError:
            self.gone = True
            if self.progress is not None:
                with contextlib.suppress(OSError):
                    self.progress.stop()

    def _report(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._started(event)
        elif isinstance(event, BatchProgress):
            self._progress(event)
        elif isinstance(event, EpochEnded):
            self._close_bar()
            self.last_epoch = event
            self._print(epoch_lines(event, self.console.width))
        elif isinstance(event, RunFinished):
            self._close_bar()
            self._finished(event)
        elif isinstance(event, Warned):
            self.errors.print(
                f"aml-tui: warning: {safe(event.message, markup=False)}",
                markup=False,
                soft_wrap=True,
            )
        elif isinstance(event, RunFailed):
            self._close_bar()
            self.errors.print(
                f"aml-tui: run failed: {safe(event.message, markup=False)}",
                markup=False,
                soft_wrap=True,
                style=f"bold {WRONG}",  # ANSI red is 3.6:1 on black
            )

    def _started(self, event: RunStarted) -> None:
        """What runs where; names from the configuration and the system go through `safe`."""
        self.train_size = event.train_size
        if self.batch_size <= 0 and event.batches_per_epoch > 0:
            self.batch_size = math.ceil(event.train_size / event.batches_per_epoch)
        where = f"-> {safe(event.run_dir, markup=False)}" if event.run_dir else ""
        parts = [  # each figure stays with what it counts: a line breaks between parts only
            f"{safe(event.experiment, markup=False)} on {safe(event.device, markup=False)}:",
            f"{event.train_size:,} train / {event.test_size:,} test images,",
            f"{len(event.classes)} classes,",
            f"{event.trainable_params:,} of {event.total_params:,} parameters trainable,",
            f"{event.epochs} epoch{'s' if event.epochs != 1 else ''}",
        ]
        text = " ".join(part.replace(" ", KEEP) for part in parts)
        lines = wrap_words(text, self.console.width, where)
        self._print([line.replace(KEEP, " ") for line in lines])

    def _print(self, lines: list[str]) -> None:
        for line in lines:
            self.console.print(line, markup=False, soft_wrap=True)

    def _etas(self, event: BatchProgress) -> str:
        """The time left of the epoch and of the whole run, from the measured throughput."""
        eta = estimate(event, self.batch_size, self.train_size, self.last_epoch)
        return f"ETA {format_duration(eta.epoch)}, run {format_duration(eta.run)}"

    def _progress(self, event: BatchProgress) -> None:
        if not self.live:
            fraction = event.batch / event.batches
            if fraction >= self.next_plain_step and event.batch < event.batches:
                figures = [
                    f"epoch {event.epoch}/{event.epochs} batch {event.batch}/{event.batches}",
                    f"loss {event.running_loss:.4f} acc {percent(event.running_acc)}",
                    self._etas(event),
                ]
                if self.console.width >= SPEED_FROM:  # else the epoch's line tells the speed
                    figures.insert(2, f"{event.images_per_s:,.0f} img/s")
                self._print(fit_figures(figures, self.console.width))
                while self.next_plain_step <= fraction:
                    self.next_plain_step += PLAIN_PROGRESS_STEP
            return
        if self.progress is None:
            self.progress = Progress(
                *bar_columns(self.console.width), console=self.console, transient=True
            )
            self.progress.start()
            self.task = self.progress.add_task(
                "train", total=event.batches, epoch=f"{event.epoch}/{event.epochs}",
                loss=event.running_loss, speed=event.images_per_s, etas=self._etas(event),
            )  # fmt: skip
        assert self.task is not None
        self.progress.update(
            self.task, completed=event.batch, loss=event.running_loss,
            speed=event.images_per_s, etas=self._etas(event),
        )  # fmt: skip

    def _close_bar(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
            self.task = None
        self.next_plain_step = PLAIN_PROGRESS_STEP

    def _finished(self, event: RunFinished) -> None:
        table = Table(title=f"run {safe(event.status)}", show_header=False, title_justify="left")
        table.add_column("what")
        table.add_column("value", justify="right")
        table.add_row("epochs completed", str(event.epochs_completed))
        table.add_row("test accuracy", percent(event.test_acc))
        if event.scrambled_test_acc is not None:
            table.add_row("scrambled test accuracy", percent(event.scrambled_test_acc))
        at = f"epoch {event.selected_epoch}, " if event.selected_epoch is not None else ""
        label = f"best accuracy ({at}{chosen_on(event.selected_on)})"
        table.add_row(label, percent(event.best_acc))
        if event.selected_on == "val":
            table.add_row("test accuracy of that epoch", percent(event.selected_test_acc))
        if event.stopped_early is not None:
            table.add_row("stopped early after epoch", str(event.stopped_early))
        table.add_row("training images/s", f"{event.train_images_per_s:,.0f}")
        table.add_row("device", safe(event.device))
        table.add_row("seconds", f"{event.seconds:.1f}")
        self.console.print(table)


def bar_columns(width: int) -> list[ProgressColumn]:
    """The progress bar's columns for a terminal `width` wide: the bar gives way first, then
    the loss and the speed, so the ETAs stay on one line down to 50 columns."""
    columns: list[ProgressColumn] = [
        TextColumn("epoch {task.fields[epoch]}"),
        BarColumn(bar_width=None),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TextColumn("{task.fields[speed]:,.0f} img/s"),
        TextColumn("{task.fields[etas]}"),
    ]
    if width < 80:
        del columns[3]  # the loss: the epoch line after the bar has it
    if width < 66:
        del columns[3]  # the speed
    return columns
