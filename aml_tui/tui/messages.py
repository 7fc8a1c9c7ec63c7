"""Textual messages that carry what thread workers found or were told back to the UI thread."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

from textual.message import Message

from aml_tui.core.events import BatchProgress, Event
from aml_tui.core.hardware import HardwareSample
from aml_tui.core.runstore.listing import RunInfo
from aml_tui.core.runstore.run_curves import RunCurve
from aml_tui.core.runstore.sweep_state import SweepProgress

if TYPE_CHECKING:
    from aml_tui.core.evaluation import RunEvaluation  # imports torch: types only


class EngineReported(Message):
    """The training engine emitted an event; live batch progress merges (a run's recorded
    history, read back, keeps every record: History draws them), nothing else is dropped."""

    bubble = False

    def __init__(self, event: Event, past: bool = False) -> None:
        super().__init__()
        self.event = event
        self.past = past
        """Read back from a run's history, not happening now: shown, but no pop-up."""

    def can_replace(self, message: Message) -> bool:
        return (
            not self.past
            and isinstance(message, EngineReported)
            and isinstance(message.event, BatchProgress)
            and isinstance(self.event, BatchProgress)
        )


class HardwareSampled(Message):
    """The hardware a run trains on was sampled (in a worker thread)."""

    bubble = False

    def __init__(self, sample: HardwareSample) -> None:
        super().__init__()
        self.sample = sample


class HandOverStarted(Message):
    """The run the app trained is saved, and a background process is starting to carry it on."""

    bubble = False


class RunSetupFailed(Message):
    """Training could not start (missing data, bad weights, ...): `text` says why and the fix."""

    bubble = False

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class DevicesFound(Message):
    """The devices training can use here were listed (torch is imported by then)."""

    def __init__(self, devices: list[str]) -> None:
        super().__init__()
        self.devices = devices


class RunsListed(Message):
    """The checkpoints folder was read: its runs, newest first."""

    bubble = False

    def __init__(self, runs: list[RunInfo]) -> None:
        super().__init__()
        self.runs = runs


class EvaluationFinished(Message):
    """A run was evaluated in a worker; `evaluation` is ready to draw."""

    def __init__(self, evaluation: RunEvaluation) -> None:
        super().__init__()
        self.evaluation = evaluation


class ComparisonFinished(Message):
    """Two runs were evaluated on the same test images in a worker; ready to draw."""

    def __init__(
        self, first: RunEvaluation, second: RunEvaluation, note: str | None = None
    ) -> None:
        super().__init__()
        self.pair = (first, second)
        self.note = note
        """One line when their --test-limit differed: the images both were tested on."""


class EvaluationFailed(Message):
    """Evaluation could not be done (missing run, corrupt checkpoint, ...): `text` says why."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class CurvesRead(Message):
    """The metrics of the runs a curves view shows were read (again); their curves so far."""

    bubble = False

    def __init__(self, curves: list[RunCurve]) -> None:
        super().__init__()
        self.curves = curves


class SweepsListed(Message):
    """The sweeps of the checkpoints folder were read, newest first, with their runs' results."""

    bubble = False

    def __init__(self, sweeps: list[SweepProgress]) -> None:
        super().__init__()
        self.sweeps = sweeps


class SweepRead(Message):
    """A sweep's record and runs were read (again): where it stands, and the curves of the
    runs its screen shows."""

    bubble = False

    def __init__(self, progress: SweepProgress, curves: list[RunCurve]) -> None:
        super().__init__()
        self.progress = progress
        self.curves = curves


class SweepUnreadable(Message):
    """A sweep's record could not be read: `text` says why and the fix."""

    bubble = False

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class SweepLaunched(Message):
    """The app started a sweep's runner process (`aml-tui sweep --resume ID --no-ui`)."""

    def __init__(self, sweep_id: str, process: subprocess.Popen[bytes]) -> None:
        super().__init__()
        self.sweep_id = sweep_id
        self.process = process


class SweepLaunchFailed(Message):
    """A sweep could not be recorded or its runner started: `text` says why and the fix."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class SweepEnded(Message):
    """A runner the app started has exited with `code` (0: every run completed); `last` is
    the last line it wrote."""

    def __init__(self, sweep_id: str, code: int, last: str) -> None:
        super().__init__()
        self.sweep_id = sweep_id
        self.code = code
        self.last = last


class ExperimentLoaded(Message):
    """An installed entry point's experiment was loaded in a worker: `name` is its name in
    the registry now."""

    bubble = False

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class ExperimentLoadFailed(Message):
    """An installed entry point's experiment could not be loaded: `text` says why in a line."""

    bubble = False

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
