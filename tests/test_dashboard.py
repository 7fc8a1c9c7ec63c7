"""The dashboard (#16): plots that show a 0.05-point change near 100%, legends outside the
data, resumed sessions marked, lines told apart by marker under NO_COLOR; the time and
hardware panel (ETAs, finish time, the data share the engine measures, CPU/GPU use); a log
that grows and wraps again; History that says so. Unit tests of the functions behind them,
Pilot tests of the widgets, snapshots at 80×24 and 120×40.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import types
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual import constants
from textual.app import App, ComposeResult
from textual.content import Content
from textual.pilot import Pilot
from textual.widgets import Button, Label

from aml_tui import tui
from aml_tui.config import to_toml
from aml_tui.core.events import (
    BatchProgress,
    EpochEnded,
    RunFinished,
    RunStarted,
    event_from_record,
    event_record,
)
from aml_tui.core.experiments import build_config
from aml_tui.core.hardware import GpuLoad, HardwareSample, HardwareSampler, ProcessClock
from aml_tui.core.runstore.listing import session_history
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.timing import estimate, finish_time
from aml_tui.core.training import loop
from aml_tui.render.text import epoch_line
from aml_tui.tui.app import create_app
from aml_tui.tui.messages import EngineReported
from aml_tui.tui.screens.train import TrainScreen
from aml_tui.tui.screens.watch import WatchScreen
from aml_tui.tui.widgets import dashboard as dashboard_module
from aml_tui.tui.widgets.axes import (
    MIN_ACC_SPAN,
    axis_ranges,
    follow_range,
    nice_ticks,
    recent_window,
)
from aml_tui.tui.widgets.dashboard import Dashboard
from aml_tui.tui.widgets.panel import hardware_line
from aml_tui.tui.widgets.plots import LOOKS, MetricPlot
from aml_tui.tui.widgets.text_line import TextLine
from aml_tui.tui.widgets.wrapping_log import WrappingLog

CANVAS_DOTS = 7 * 4
"""An accuracy plot at 80×24 draws in about seven rows of braille, four dots each."""

FIXED_NOW = datetime(2026, 11, 18, 9, 0, 0)


def started(start_epoch: int = 1, epochs: int = 8) -> RunStarted:
    return RunStarted("demo", "", "fashion-cnn", "cpu", ("Clothes", "Shoes", "Others"), epochs,
                      start_epoch, 60000, 10000, 938, 404483, 404483)  # fmt: skip


def ended(epoch: int, train: float, test: float, scrambled: float | None = 0.1) -> EpochEnded:
    return EpochEnded(
        epoch=epoch, epochs=8, train_loss=0.1 / epoch, train_acc=train,
        test_loss=0.05 / epoch, test_acc=test, scrambled_test_loss=2.0,
        scrambled_test_acc=scrambled, lr=0.001, train_images_per_s=3200.0,
        epoch_seconds=21.0, elapsed=21.0 * epoch, is_best=True, data_share=0.04,
    )  # fmt: skip


REAL_CURVES = [  # fashion-cnn, 60,000 images: train, test, scrambled accuracy per epoch
    (0.9816, 0.9942, 0.1003), (0.9944, 0.9951, 0.153), (0.9957, 0.9959, 0.1151),
    (0.9968, 0.9958, 0.1029), (0.9975, 0.9959, 0.1012), (0.9983, 0.9967, 0.1141),
    (0.9986, 0.9965, 0.108),
]  # fmt: skip


def dots_apart(low: float, high: float, limits: tuple[float, float]) -> float:
    return (high - low) / (limits[1] - limits[0]) * CANVAS_DOTS


# --- the y axis -----------------------------------------------------------------------------


def test_a_change_of_five_hundredths_of_a_point_is_visible() -> None:
    """99.50 -> 99.55: the range follows the data, so the change spans most of the plot."""
    series = {"train": ([1.0, 2.0], [99.6, 99.7]), "test": ([1.0, 2.0], [99.50, 99.55])}
    left, right = axis_ranges(series, "scrambled", None, MIN_ACC_SPAN)
    assert left is not None and right is None
    assert left[0] < 99.50 and left[1] > 99.7
    assert dots_apart(99.50, 99.55, left) >= 4
    ticks, labels = nice_ticks(*left, 3)
    assert len(ticks) >= 2 and len(set(labels)) == len(labels)


def test_on_real_curves_the_recent_range_shows_test_accuracy_moving() -> None:
    """With the scrambled accuracy near 10% on its own axis and the range following the
    recent epochs, the last epochs' 0.02-0.08 point changes of test accuracy are dots apart
    (over all epochs from 98.2% they would be under one)."""
    series = {
        "train": ([], []), "test": ([], []), "scrambled": ([], []),
    }  # type: dict[str, tuple[list[float], list[float]]]  # fmt: skip
    for epoch, accs in enumerate(REAL_CURVES, 1):
        for name, acc in zip(("train", "test", "scrambled"), accs, strict=True):
            series[name][0].append(epoch)
            series[name][1].append(100 * acc)
    left, right = axis_ranges(series, "scrambled", recent_window(7), MIN_ACC_SPAN)
    assert left is not None and right is not None
    assert right[0] < 10.03 and right[1] > 15.3  # scrambled on the right, all of it
    assert dots_apart(99.60, 99.65, left) >= 3
    everything, _ = axis_ranges(series, "scrambled", None, MIN_ACC_SPAN)
    assert everything is not None and dots_apart(99.60, 99.65, everything) < 1


def test_an_aside_series_near_the_others_shares_their_axis() -> None:
    series = {"train": ([1.0, 2.0], [97.0, 99.0]), "scrambled": ([1.0, 2.0], [96.0, 98.0])}
    left, right = axis_ranges(series, "scrambled", None, MIN_ACC_SPAN)
    assert right is None and left is not None and left[0] < 96.0 and left[1] > 99.0


def test_ranges_ticks_and_windows() -> None:
    assert follow_range([], 0.1) is None
    low, high = follow_range([99.5], 0.1) or (0, 0)
    assert low < 99.5 < high and high - low == pytest.approx(0.12)
    assert [recent_window(n) for n in (1, 2, 3, 4, 7, 15)] == [1, 2, 2, 2, 4, 8]
    assert nice_ticks(99.22, 99.58, 3) == ([99.3, 99.4, 99.5], ["99.3", "99.4", "99.5"])
    assert nice_ticks(99.495, 99.555, 3)[1] == ["99.50", "99.55"]
    assert nice_ticks(0.0494, 0.0506, 3)[1] == ["0.0495", "0.0500", "0.0505"]
    for low, high, most in ((0.0, 1.0, 2), (9.5, 16.0, 3), (99.45, 99.6, 3), (10, 100, 6)):
        ticks, labels = nice_ticks(low, high, most)
        assert 2 <= len(ticks) <= most and all(low <= t <= high for t in ticks)
        assert len(set(labels)) == len(labels)


# --- time -----------------------------------------------------------------------------------


def test_eta_counts_the_epochs_left_with_their_evaluation() -> None:
    progress = BatchProgress(2, 4, 469, 938, 0.05, 0.99, 3200.0, 40.0, 0.001)
    first = estimate(progress, 64, 60000)  # no epoch ended yet: an epoch is its training
    assert first.epoch == pytest.approx(469 * 64 / 3200)
    assert first.run == pytest.approx(first.epoch + 2 * 938 * 64 / 3200)
    last = ended(1, 0.99, 0.99)  # 60,000 images at 3,200/s = 18.75 s of its 21 s trained
    later = estimate(progress, 64, 60000, last)
    assert later.epoch == pytest.approx(469 * 64 / 3200 + 2.25)
    assert later.run == pytest.approx(later.epoch + 2 * (938 * 64 / 3200 + 2.25))
    # Training slowed to half the last epoch's pace (another job started): every epoch left
    # trains at the new pace, and still evaluates as long as the last one did.
    slower = dataclasses.replace(progress, images_per_s=1600.0)
    halved = estimate(slower, 64, 60000, last)
    assert halved.epoch == pytest.approx(469 * 64 / 1600 + 2.25)
    assert halved.run == pytest.approx(halved.epoch + 2 * (938 * 64 / 1600 + 2.25))
    # Early in an epoch its pace is noise (the first report comes 0.25 s in): the epochs
    # after it keep the last epoch's pace until a tenth of it has run.
    early = dataclasses.replace(progress, batch=5, images_per_s=6400.0)
    jumpy = estimate(early, 64, 60000, last)
    assert jumpy.epoch == pytest.approx(933 * 64 / 6400 + 2.25)
    assert jumpy.run == pytest.approx(jumpy.epoch + 2 * (60000 / 3200 + 2.25))
    # A paused last epoch (its whole time 10 minutes, 2.25 s of it evaluating and saving, as
    # the engine measured) does not make later epochs last 10 minutes.
    paused = dataclasses.replace(last, epoch_seconds=600.0, after_training_seconds=2.25)
    assert estimate(progress, 64, 60000, paused).run == pytest.approx(later.run)
    stalled = BatchProgress(2, 4, 0, 938, 0.05, 0.99, 0.0, 40.0, 0.001)
    assert estimate(stalled, 64, 60000, last).run is None


def test_finish_time_says_the_day_when_it_is_not_today() -> None:
    assert finish_time(FIXED_NOW, 3600 + 120) == "10:02"
    assert finish_time(FIXED_NOW, 20 * 3600) == "Thu 05:00"
    assert finish_time(FIXED_NOW, None) == "--:--"


def test_the_step_timer_splits_data_and_compute_on_the_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter([0.0, 0.1, 1.0, 1.0, 1.3, 2.0])  # start, data ready, step done: twice
    monkeypatch.setattr(loop.time, "perf_counter", lambda: next(clock))
    timer = loop.StepTimer(loop.torch.device("cpu"))
    assert timer.share() is None
    for _ in range(2):
        timer.start()
        timer.data_ready()
        timer.step_done(next(clock))
    assert timer.share() == pytest.approx(0.4 / 2.0)


class FakeCudaEvent:
    """A CUDA event on a clock of our own: `done` says whether the GPU has reached it."""

    clock = 0.0

    def __init__(self) -> None:
        self.at = 0.0
        self.done = False

    def record(self) -> None:
        self.at = FakeCudaEvent.clock

    def query(self) -> bool:
        return self.done

    def elapsed_time(self, end: FakeCudaEvent) -> float:
        return end.at - self.at


def test_on_cuda_one_batch_per_report_is_timed_by_events_never_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[FakeCudaEvent] = []

    def event() -> FakeCudaEvent:
        made.append(FakeCudaEvent())
        return made[-1]

    monkeypatch.setattr(loop, "timing_event", event)
    timer = loop.StepTimer(loop.torch.device("cuda"))
    for batch in range(3):  # only the first batch is sampled until the next report
        for step in (timer.start, timer.data_ready):
            step()
            FakeCudaEvent.clock += 1.0 if batch == 0 and step == timer.start else 4.0
        timer.step_done(0.0)
    assert len(made) == 3
    assert timer.share() is None  # the GPU has not reached the events: nothing waits for it
    for done in made:
        done.done = True
    assert timer.share() == pytest.approx(1.0 / 5.0)  # and the next batch is sampled again
    timer.start()
    assert len(made) == 4


def test_training_reports_the_data_share(tmp_path: Path, fashion_dir: Path) -> None:
    from aml_tui.core.training.setup import create_trainer  # imports torch

    config = build_config("fashion-cnn", epochs=1, batch_size=32, data_dir=str(fashion_dir),
                          checkpoints=str(tmp_path / "ck"), offline=True)  # fmt: skip
    events: list[object] = []
    create_trainer(config, [events.append]).run()
    progress = [e for e in events if isinstance(e, BatchProgress)]
    (epoch,) = [e for e in events if isinstance(e, EpochEnded)]
    assert progress and all(0 < (p.data_share or 0) < 1 for p in progress)
    assert epoch.data_share == progress[-1].data_share
    assert f"| data {100 * (epoch.data_share or 0):.0f}% |" in epoch_line(epoch)
    # The time after training (evaluating both test sets, saving) is measured apart, for ETAs.
    assert 0 < (epoch.after_training_seconds or 0) < epoch.epoch_seconds
    (metrics,) = (tmp_path / "ck").rglob("metrics.jsonl")
    assert '"data_share": 0.' in metrics.read_text()
    assert '"after_training_seconds": ' in metrics.read_text()


def test_records_without_a_data_share_still_read() -> None:
    record = event_record(ended(1, 0.99, 0.99))
    del record["data_share"], record["after_training_seconds"]
    old = event_from_record(record)
    assert isinstance(old, EpochEnded) and old.data_share is None
    assert old.after_training_seconds is None
    record = event_record(BatchProgress(1, 2, 3, 4, 0.5, 0.6, 100.0, 1.0, 0.001, 0.25))
    assert event_from_record(record) == BatchProgress(1, 2, 3, 4, 0.5, 0.6, 100.0, 1.0, 0.001, 0.25)


class TwoLines(App[None]):
    CSS = "#auto { width: auto; }"

    def compose(self) -> ComposeResult:
        yield TextLine("loss 0.1", id="fixed")
        yield TextLine("short", id="auto")


async def test_a_text_line_repaints_only_what_changed() -> None:
    app = TwoLines()
    async with app.run_test(size=(40, 4)) as pilot:
        fixed, auto = app.query_one("#fixed", TextLine), app.query_one("#auto", TextLine)
        calls: list[bool] = []
        original = TextLine.refresh

        def counted(self: TextLine, *args: Any, layout: bool = False, **kwargs: Any) -> Any:
            calls.append(layout)
            return original(self, *args, layout=layout, **kwargs)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(TextLine, "refresh", counted)
            fixed.update("loss 0.1")  # the same text: nothing to do
            assert calls == []
            fixed.update("loss 0.2")  # new text: its line repainted, no new layout
            assert calls == [False]
            fixed.update(Content.assemble(("loss 0.2", "bold")))  # same text, new style
            assert calls == [False, False]
            auto.update("a longer line")  # CSS made its width follow the text: a layout
            assert calls == [False, False, True]
        await pilot.pause()
        assert str(fixed.render()) == "loss 0.2" and auto.size.width == len("a longer line")


# --- hardware -------------------------------------------------------------------------------


def test_the_process_is_sampled_without_psutil() -> None:
    sampler = HardwareSampler()
    sum(i * i for i in range(300_000))  # some CPU time between the two readings
    sample = sampler.sample()
    assert sample.cpu_percent is not None and sample.cpu_percent >= 0
    assert sample.cpu_count >= 1 and (sample.memory or 0) > 0 and sample.gpus == ()
    other = ProcessClock(os.getpid())  # another process's figures come from /proc
    assert (other.cpu_seconds() or 0) > 0 and (other.memory() or 0) > 0
    assert ProcessClock(2**22 + 7).cpu_seconds() is None  # no such process: nothing, no error


class FakeNvml(types.ModuleType):
    """pynvml as far as the sampler uses it: three GPUs, the second one's queries failing."""

    class NVMLError(Exception):
        pass

    def __init__(self) -> None:
        super().__init__("pynvml")
        self.shut = False

    def nvmlInit(self) -> None:  # NVML's names, as pynvml spells them
        pass

    def nvmlShutdown(self) -> None:
        self.shut = True

    def nvmlDeviceGetCount(self) -> int:
        return 3

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> int:
        if uuid != "GPU-2":
            raise self.NVMLError("no such GPU")
        return 2

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        if handle == 1:
            raise self.NVMLError("not supported")
        return types.SimpleNamespace(gpu=90 + handle)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:
        if handle == 1:
            raise self.NVMLError("not supported")
        return types.SimpleNamespace(used=(handle + 1) * 2**30, total=80 * 2**30)


@pytest.mark.parametrize(
    ("visible", "names"),
    [(None, ["cuda:0", "cuda:1", "cuda:2"]), ("2,0", ["cuda:0", "cuda:1"]),
     ("GPU-2,7,0", ["cuda:0"]), ("", [])],
)  # fmt: skip
def test_gpus_are_read_through_nvml_as_torch_numbers_them(
    monkeypatch: pytest.MonkeyPatch, visible: str | None, names: list[str]
) -> None:
    nvml = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    sampler = HardwareSampler(gpus=True)
    gpus = sampler.sample().gpus
    assert [gpu.name for gpu in gpus] == names
    if visible == "2,0":
        assert gpus[0] == GpuLoad("cuda:0", 92, 3 * 2**30, 80 * 2**30)
    if visible is None:
        assert gpus[1] == GpuLoad("cuda:1", None, 0, None)  # what NVML cannot say is left out
    sampler.close()
    assert nvml.shut


def test_without_nvml_the_gpu_shows_the_memory_torch_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed
    sampler = HardwareSampler(gpus=True, gpu_memory=lambda: 3 * 2**30)
    assert sampler.sample().gpus == (GpuLoad("cuda", None, 3 * 2**30, None),)


def test_the_hardware_line_fits_its_width() -> None:
    cpu = HardwareSample(150.0, 4, 512 * 2**20)
    assert hardware_line("cpu", 0.034, cpu, 78) == (
        "cpu · data 3% · compute 97% · CPU 150% of 4 cores · memory 512 MB"
    )
    gpus = tuple(GpuLoad(f"cuda:{i}", 97, 3 * 2**30, 80 * 2**30) for i in range(4))
    line = hardware_line("cuda:2", None, HardwareSample(100.0, 16, 2**30, gpus), 78)
    assert line.startswith("cuda:2 · CPU 100% of 16 · cuda:2 97% 3.0/80 GB") and len(line) <= 78
    assert line.endswith("GPUs")
    assert hardware_line("", None, None, 78) == ""


# --- the widgets ----------------------------------------------------------------------------


class Host(App[None]):
    """A dashboard alone, styled as in the app."""

    CSS_PATH = Path(tui.__file__).parent / "aml_tui.tcss"

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    def compose(self) -> ComposeResult:
        yield Dashboard(self.config)


def canvas_cells(plot: MetricPlot) -> list[list[tuple[str, int | None]]]:
    """The plot as drawn: rows of (character, its colour's palette number)."""
    rendered = plot.render()
    assert isinstance(rendered, Text)
    console = plot.app.console
    return [[(ch, getattr(line.get_style_at_offset(console, i).color, "number", None))
             for i, ch in enumerate(line.plain)] for line in rendered.split("\n")]  # fmt: skip


@pytest.fixture
def palette(monkeypatch: pytest.MonkeyPatch) -> None:
    """The colours of a terminal over SSH (256) with NO_COLOR unset."""
    monkeypatch.setattr(constants, "COLOR_SYSTEM", "auto")  # TEXTUAL_COLOR_SYSTEM, read once
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("COLORTERM", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)


async def test_the_accuracy_plot_draws_99_50_and_99_55_apart(palette: None) -> None:
    host = Host(build_config("fashion-cnn", epochs=2))
    async with host.run_test(size=(80, 24)) as pilot:
        dashboard = host.query_one(Dashboard)
        dashboard.apply(started(epochs=2))
        dashboard.apply(ended(1, 0.9960, 0.9950, 0.11))
        dashboard.apply(ended(2, 0.9970, 0.9955, 0.12))
        dashboard.redraw_plots()
        await pilot.pause()
        acc = dashboard.query_one("#acc-plot", MetricPlot)
        assert acc.right == "scrambled"  # 10% has its own axis
        cells = canvas_cells(acc)
        test = [(x, y) for y, row in enumerate(cells) for x, (_, colour) in enumerate(row)
                if colour == 214]  # fmt: skip
        (_, first), (_, last) = min(test), max(test)
        assert last < first  # the test line climbs: 99.55 is drawn above 99.50
        title = str(dashboard.query_one("#acc-box .plot-title", Label).render())
        assert "train" in title and "test" in title and "scrambled→" in title
        canvas = "".join(ch for row in cells for ch, _ in row)
        assert "train" not in canvas and "test" not in canvas  # no legend over the data


async def test_under_no_color_the_lines_differ_by_marker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    host = Host(build_config("fashion-cnn", epochs=3))
    async with host.run_test(size=(80, 24)) as pilot:
        assert host.no_color
        dashboard = host.query_one(Dashboard)
        dashboard.apply(started(epochs=3))
        for epoch, (train, test) in enumerate([(0.990, 0.991), (0.993, 0.992), (0.995, 0.993)]):
            dashboard.apply(ended(epoch + 1, train, test, 0.96 - epoch / 100))
        dashboard.redraw_plots()
        await pilot.pause()
        acc = dashboard.query_one("#acc-plot", MetricPlot)
        drawn = {ch for row in canvas_cells(acc) for ch, _ in row}
        assert drawn & set("▀▄▌▐▖▗▘▝▚▞▙▛▜▟█")  # train: half blocks
        assert any("\u2801" <= ch <= "\u28ff" for ch in drawn)  # test: braille
        assert "•" in drawn  # scrambled: bullets
        title = str(dashboard.query_one("#acc-box .plot-title", Label).render())
        assert "▄▀" in title and "⠤⠒" in title and "••" in title  # the legend shows them


async def test_a_validation_split_draws_its_own_curves(palette: None) -> None:
    """A run holding out validation images plots their loss and accuracy beside the test's,
    in their own colour and legend entry; a run without one has no such line."""
    from dataclasses import replace

    host = Host(build_config("fashion-cnn", epochs=8, val_split=0.1))
    async with host.run_test(size=(120, 40)) as pilot:
        dashboard = host.query_one(Dashboard)
        dashboard.apply(started())
        for epoch, val in ((1, 0.9), (2, 0.95)):
            event = ended(epoch, 0.98, 0.99, scrambled=None)
            dashboard.apply(replace(event, val_loss=0.2 / epoch, val_acc=val))
        dashboard.apply(ended(3, 0.99, 0.992, scrambled=None))  # a record without (old run)
        dashboard.redraw_plots()
        await pilot.pause()
        acc = dashboard.query_one("#acc-plot", MetricPlot)
        loss = dashboard.query_one("#loss-plot", MetricPlot)
        assert acc.series["val"] == ([1, 2], [90.0, 95.0])
        assert loss.series["val"] == ([1, 2], [0.2, 0.1])
        colours = {colour for row in canvas_cells(acc) for _, colour in row}
        assert LOOKS["val"].colour in colours  # drawn, in its own colour
        assert "val" in str(dashboard.query_one("#acc-box .plot-title", Label).render())


async def test_resumed_sessions_are_marked_on_the_epoch_axis(palette: None) -> None:
    host = Host(build_config("fashion-cnn", epochs=8))
    async with host.run_test(size=(120, 40)) as pilot:
        dashboard = host.query_one(Dashboard)
        dashboard.apply(started(), past=True)
        dashboard.apply(ended(1, 0.98, 0.99), past=True)
        dashboard.apply(ended(2, 0.99, 0.992), past=True)
        dashboard.apply(started(start_epoch=3), past=True)
        dashboard.apply(ended(3, 0.995, 0.993), past=True)
        dashboard.redraw_plots()
        await pilot.pause()
        for plot in dashboard.query("#loss-plot, #acc-plot").results(MetricPlot):
            assert plot.marks == [2.5]
            axis = [row for row in canvas_cells(plot) if "└" in "".join(c for c, _ in row)]
            assert "┴" in "".join(ch for ch, _ in axis[0])
        assert "│resumed" in str(dashboard.query_one("#acc-box .plot-title", Label).render())
        assert "resumed in epoch 3" in "\n".join(dashboard.query_one(WrappingLog).lines)


def test_a_resumed_run_replays_its_earlier_sessions(tmp_path: Path) -> None:
    """Train's resume replays every earlier session's start with the epochs, so each resume
    is marked; an epoch recorded twice (killed before its save) is shown once."""
    run = tmp_path / "run"
    run.mkdir()
    events = [started(), ended(1, 0.98, 0.99), ended(2, 0.99, 0.99), started(start_epoch=2),
              ended(2, 0.991, 0.992), started(start_epoch=3), ended(3, 0.995, 0.993)]  # fmt: skip
    with (run / "metrics.jsonl").open("w") as handle:
        handle.writelines(json.dumps(event_record(e)) + "\n" for e in events)
    history = session_history(RunFolder(run), 2)
    assert history == [events[0], events[1], events[3], events[4]]


async def test_log_lines_are_wrapped_again_when_the_terminal_shrinks() -> None:
    host = Host(build_config("fashion-cnn", epochs=2))
    words = " ".join(f"word{i}" for i in range(40))
    async with host.run_test(size=(120, 24)) as pilot:
        dashboard = host.query_one(Dashboard)
        log = dashboard.query_one(WrappingLog)
        dashboard.log_line(words)
        await pilot.pause()
        assert max(len(line) for line in log.lines) > 80
        await pilot.resize_terminal(60, 24)
        await pilot.pause()
        assert max(len(line) for line in log.lines) <= log.size.width
        assert " ".join(line.strip() for line in log.lines) == words


def test_the_log_wraps_an_epoch_line_between_its_figures() -> None:
    """At 80 columns an epoch line takes two or three lines, each figure whole on one."""
    from aml_tui.render.text import SEPARATOR

    line = (
        "epoch 1/2 | train loss 0.4068 acc 82.96% | val loss 0.1026 acc 96.00% | test loss "
        "0.0968 acc 96.53% | scrambled acc 24.69% | lr 0.001 | 1,753 img/s | data 2% | 5.3s *"
    )
    for width in (78, 60, 40):
        wrapped = WrappingLog.wrap(line, width)
        assert all(len(part) <= width for part in wrapped)
        figures = [f.strip() for part in wrapped for f in part.strip().split(SEPARATOR.strip())]
        assert [f for f in figures if f] == [f.strip() for f in line.split("|")]
    assert WrappingLog.wrap("no figures here", 10) == ["no figures", "  here"]


@pytest.fixture
def train_app(tmp_path: Path, palette: None) -> Callable[[], Any]:
    def make() -> Any:
        return create_app(tmp_path / "ck")

    return make


async def open_train(pilot: Pilot, epochs: int = 4) -> TrainScreen:
    config = build_config("fashion-cnn", epochs=epochs, checkpoints=str(pilot.app.checkpoints))  # type: ignore[attr-defined]
    screen = TrainScreen(config, autostart=False)
    await pilot.app.push_screen(screen)
    await pilot.pause()
    return screen


async def test_l_toggles_a_tall_log(train_app: Callable[[], Any]) -> None:
    app = train_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_train(pilot)
        log = screen.query_one(WrappingLog)
        short = log.size.height
        await pilot.press("l")
        await pilot.pause()
        assert log.size.height >= 2 * short
        await pilot.press("l")
        await pilot.pause()
        assert log.size.height == short
        shown = {b.binding.description for b in screen.active_bindings.values() if b.binding.show}
        assert {"Log", "Zoom"} <= shown  # in the footer


async def test_z_shows_every_epoch(palette: None) -> None:
    host = Host(build_config("fashion-cnn", epochs=8))
    async with host.run_test(size=(80, 24)) as pilot:
        dashboard = host.query_one(Dashboard)
        for epoch, accs in enumerate(REAL_CURVES, 1):
            dashboard.apply(ended(epoch, *accs))
        acc = dashboard.query_one("#acc-plot", MetricPlot)
        zoomed, _ = acc.ranges()
        dashboard.toggle_zoom()
        await pilot.pause()
        everything, _ = acc.ranges()
        assert zoomed and everything and everything[0] < 98.16 < zoomed[0]


async def test_the_panel_shows_etas_finish_time_and_hardware(
    train_app: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dashboard_module, "HARDWARE_S", 0.01)
    app = train_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_train(pilot)
        dashboard = screen.dashboard
        dashboard.panel.clock = lambda: FIXED_NOW
        dashboard.apply(started(epochs=4))
        dashboard.apply(ended(1, 0.99, 0.99))
        dashboard.apply(BatchProgress(2, 4, 469, 938, 0.05, 0.99, 3200.0, 40.0, 0.001, 0.06))
        sample = HardwareSample(150.0, 4, 2**30, ())
        dashboard.sample_hardware(lambda: FixedSampler(sample))  # type: ignore[arg-type, return-value]
        await pilot.pause(0.2)
        dashboard.refresh_view()
        await pilot.pause()
        text = {wid: str(screen.query_one(f"#{wid}", Label).render())
                for wid in ("epoch-info", "run-info", "hardware")}  # fmt: skip
        assert text["epoch-info"] == "2/4 · 469/938 · ETA 0:11"
        assert text["run-info"] == "ETA 0:53 · ends 09:00"
        assert (
            text["hardware"] == "cpu · data 6% · compute 94% · CPU 150% of 4 cores · memory 1.0 GB"
        )
        dashboard.apply(RunFinished("completed", 4, 0.99, 0.1, 0.99, 3200.0, "cpu", 84.0))
        await pilot.pause()
        assert str(screen.query_one("#run-info", Label).render()) == "took 1:24"
        log = " ".join(line.strip() for line in dashboard.query_one(WrappingLog).lines)
        assert "best 99.00% (chosen on the test set)" in log  # a built-in's best says so
        assert not dashboard.sampling_hardware
        assert "CPU" not in str(screen.query_one("#hardware", Label).render())


class FixedSampler:
    def __init__(self, sample: HardwareSample) -> None:
        self.fixed = sample

    def sample(self) -> HardwareSample:
        return self.fixed

    def close(self) -> None:
        pass


async def wait_for(pilot: Pilot, condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)
    await pilot.pause()


def write_run(root: Path, run_id: str, finished: bool) -> Path:
    run = root / run_id
    run.mkdir(parents=True)
    (run / "config.toml").write_text(to_toml(build_config("fashion-cnn", epochs=2), {}))
    events: list[Any] = [started(epochs=2), ended(1, 0.99, 0.99)]
    if finished:
        events += [ended(2, 0.995, 0.992), RunFinished("completed", 2, 0.992, 0.1, 0.992,
                                                       3200.0, "cpu", 42.0)]  # fmt: skip
    with (run / "metrics.jsonl").open("w") as handle:
        handle.writelines(json.dumps(event_record(e)) + "\n" for e in events)
    return run


async def test_history_says_history_and_has_no_stop(tmp_path: Path) -> None:
    run = write_run(tmp_path, "done", finished=True)
    app = create_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = WatchScreen(run)
        await app.push_screen(screen)
        await wait_for(pilot, lambda: screen.status == "completed")
        assert str(screen.query_one("#train-title", Label).render()).startswith("history done:")
        assert not screen.query_one("#stop", Button).display
        assert screen.check_action("stop", ()) is False  # not in the footer either


async def test_a_live_run_is_watched_until_it_ends(tmp_path: Path) -> None:
    run = write_run(tmp_path, "live", finished=False)
    app = create_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = WatchScreen(run)
        await app.push_screen(screen)
        await wait_for(pilot, lambda: "epoch 1/8" in "".join(screen.query_one(WrappingLog).lines))
        assert str(screen.query_one("#train-title", Label).render()).startswith("watching live:")
        assert screen.query_one("#stop", Button).display
        with (run / "metrics.jsonl").open("a") as handle:
            end = RunFinished("completed", 2, 0.99, 0.1, 0.99, 3200.0, "cpu", 42.0)
            handle.write(json.dumps(event_record(end)) + "\n")
        await wait_for(pilot, lambda: screen.status == "completed")
        assert str(screen.query_one("#train-title", Label).render()).startswith("history live:")
        assert not screen.query_one("#stop", Button).display


# --- snapshots ------------------------------------------------------------------------------


@pytest.fixture
def fixed_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(constants, "COLOR_SYSTEM", "auto")
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLORTERM", "truecolor")
    monkeypatch.delenv("NO_COLOR", raising=False)
    yield


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_dashboard_snapshot(
    snap_compare: Callable[..., bool], tmp_path: Path, fixed_env: None, size: tuple[int, int]
) -> None:
    """A run resumed in epoch 3, in epoch 6 of 8, with its panel filled in."""

    async def feed(pilot: Pilot) -> None:
        await pilot.pause()
        screen = await open_train(pilot, epochs=8)
        screen.dashboard.panel.clock = lambda: FIXED_NOW
        events: list[Any] = [started()]
        for epoch, accs in enumerate(REAL_CURVES[:5], 1):
            if epoch == 3:
                events.append(started(start_epoch=3))
            for batch in (300, 600, 938):
                loss = 0.06 / (epoch + batch / 938)
                events.append(BatchProgress(epoch, 8, batch, 938, loss, accs[0], 3200.0,
                                            21.0 * epoch, 0.001, 0.04))  # fmt: skip
            events.append(ended(epoch, *accs))
        events.append(BatchProgress(6, 8, 469, 938, 0.008, 0.9982, 3150.0, 110.0, 0.0009, 0.05))
        for event in events:
            screen.post_message(EngineReported(event))
            await pilot.pause()
        screen.dashboard.panel.show_hardware(HardwareSample(187.0, 2, 812 * 2**20))
        screen.refresh_view()
        screen.redraw_plots()
        await pilot.pause()

    assert snap_compare(create_app(tmp_path / "ck"), terminal_size=size, run_before=feed)
