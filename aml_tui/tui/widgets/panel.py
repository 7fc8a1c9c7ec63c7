"""Where a run stands in time and on the hardware: the epoch and run bars with their ETAs
and the wall-clock time the run should end, the running figures, and a hardware line (the
share of time spent making batches, CPU or GPU use, memory).

The Dashboard hands it events and hardware samples (attributes down); it computes nothing
that costs: the ETAs are arithmetic on the newest progress (core/timing.py), the data share
is measured by the engine (loop.StepTimer) and the hardware is sampled in a worker thread
(core/hardware.py), so drawing it on the dashboard's tick is all the app spends (its lines
are TextLines: an update repaints one line, never the layout).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Label, ProgressBar

from aml_tui.core.events import BatchProgress, EpochEnded, RunStarted
from aml_tui.core.hardware import GpuLoad, HardwareSample
from aml_tui.core.timing import estimate, finish_time
from aml_tui.render.text import format_duration, safe
from aml_tui.tui.widgets.text_line import TextLine


class RunPanel(Vertical):
    """Bars with ETAs, running figures and the hardware line of one run."""

    def __init__(self, epochs: int, batch_size: int) -> None:
        super().__init__(id="run-panel")
        self.epochs = epochs
        self.batch_size = batch_size
        self.train_size = 0
        self.device = ""
        self.last_epoch: EpochEnded | None = None
        """The latest whole epoch: how long the epochs after it should take."""
        self.progress: BatchProgress | None = None
        self.took: float | None = None
        """Seconds the run took, once it has ended: shown instead of the ETAs."""
        self.data_share: float | None = None
        self.hardware: HardwareSample | None = None
        self.clock: Callable[[], datetime] = datetime.now
        """Now, for the finish time (tests fix it)."""

    def compose(self) -> ComposeResult:
        with Horizontal(classes="bar-row"):
            yield Label("epoch", classes="bar-label")
            yield ProgressBar(id="epoch-bar", show_eta=False)
            yield TextLine("", id="epoch-info", classes="bar-info")
        with Horizontal(classes="bar-row"):
            yield Label("run", classes="bar-label")
            yield ProgressBar(total=self.epochs, id="run-bar", show_eta=False)
            yield TextLine("", id="run-info", classes="bar-info")
        yield TextLine("", id="train-stats")
        yield TextLine("", id="hardware")

    def start(self, event: RunStarted) -> None:
        """A session of the run began."""
        self.train_size = event.train_size
        self.device = event.device
        self.took = None  # running (again)
        self.query_one("#epoch-bar", ProgressBar).update(total=event.batches_per_epoch)
        self.show_hardware_line()

    def show_progress(self, p: BatchProgress) -> None:
        """The newest batch progress: bars, ETAs, finish time and figures."""
        self.progress = p
        self.query_one("#epoch-bar", ProgressBar).update(total=p.batches, progress=p.batch)
        done = (p.epoch - 1) + p.batch / p.batches
        self.query_one("#run-bar", ProgressBar).update(progress=done)
        self.show_times()
        self.query_one("#train-stats", TextLine).update(
            f"loss {p.running_loss:.4f} · acc {100 * p.running_acc:.2f}% · "
            f"{p.images_per_s:,.0f} img/s · lr {p.lr:.2g}"
        )
        if p.data_share is not None:
            self.data_share = p.data_share
        self.show_hardware_line()

    def epoch_ended(self, event: EpochEnded) -> None:
        self.last_epoch = event
        self.query_one("#run-bar", ProgressBar).update(progress=event.epoch)
        if event.data_share is not None:
            self.data_share = event.data_share
        self.show_hardware_line()

    def ended(self, seconds: float) -> None:
        """The run ended after `seconds` (all its sessions)."""
        self.took = seconds
        self.show_times()

    def show_times(self) -> None:
        """Where the epoch stands and the ETAs with the finish time; once the run has
        ended, how long it took."""
        p = self.progress
        where = f"{p.epoch}/{p.epochs} · {p.batch}/{p.batches}" if p is not None else ""
        if self.took is not None:
            self.query_one("#epoch-info", TextLine).update(where)
            self.query_one("#run-info", TextLine).update(f"took {format_duration(self.took)}")
        elif p is not None:
            eta = estimate(p, self.batch_size, self.train_size, self.last_epoch)
            self.query_one("#epoch-info", TextLine).update(
                f"{where} · ETA {format_duration(eta.epoch)}"
            )
            self.query_one("#run-info", TextLine).update(
                f"ETA {format_duration(eta.run)} · ends {finish_time(self.clock(), eta.run)}"
            )

    def show_hardware(self, sample: HardwareSample | None) -> None:
        """A new hardware sample (None: sampling stopped)."""
        self.hardware = sample
        self.show_hardware_line()

    def show_hardware_line(self) -> None:
        width = self.size.width - 2 if self.size.width > 2 else 78
        line = hardware_line(self.device, self.data_share, self.hardware, width)
        self.query_one("#hardware", TextLine).update(Content(line))

    def on_resize(self) -> None:
        self.show_hardware_line()


def megabytes(count: int) -> str:
    """Bytes as "512 MB" or, from 10 GB, "12 GB"; 1,000-based as nvidia-smi's are not."""
    if count >= 10 * 2**30:
        return f"{count / 2**30:.0f} GB"
    if count >= 2**30:
        return f"{count / 2**30:.1f} GB"
    return f"{count / 2**20:,.0f} MB"


def gpu_text(gpu: GpuLoad, named: bool) -> str:
    """ "GPU 97% 3.1/80 GB" (with its name when several are shown)."""
    name = f"{gpu.name} " if named else "GPU "
    busy = f"{gpu.utilisation}% " if gpu.utilisation is not None else ""
    total = f"/{megabytes(gpu.memory_total)}" if gpu.memory_total else ""
    used = megabytes(gpu.memory_used)
    if total and used[-2:] == total[-2:]:
        used = used[:-3]  # "3.1/80 GB", not "3.1 GB/80 GB"
    return f"{name}{busy}{used}{total}"


def hardware_line(
    device: str, data_share: float | None, sample: HardwareSample | None, width: int
) -> str:
    """The run's device, how its time splits between data and compute, and what the
    hardware does, fitted to `width`: GPUs past the run's own are dropped first ("+2 GPUs").
    The device name comes from a file when a run is watched: shown plain, through `safe`."""
    parts = [safe(device, markup=False)] if device else []
    if data_share is not None:
        data = round(100 * data_share)
        parts.append(f"data {data}% · compute {100 - data}%")
    if sample is None:
        return " · ".join(parts)
    own = device if ":" in device else f"{device}:0"  # torch's "cuda" is its device 0
    gpus = sorted(sample.gpus, key=lambda gpu: gpu.name not in (own, "cuda"))
    named = len(gpus) > 1
    if sample.cpu_percent is not None:
        cpu = f"CPU {sample.cpu_percent:.0f}% of {sample.cpu_count}"
        parts.append(cpu if gpus else cpu + " cores")
    if not gpus and sample.memory is not None:
        parts.append(f"memory {megabytes(sample.memory)}")
    shown = [gpu_text(gpu, named) for gpu in gpus]
    for keep in range(len(shown), 0, -1):
        rest = len(shown) - keep
        more = [f"+{rest} GPU{'s' if rest > 1 else ''}"] if rest else []
        line = " · ".join(parts + shown[:keep] + more)
        if len(line) <= width or keep == 1:
            return line
    return " · ".join(parts)
