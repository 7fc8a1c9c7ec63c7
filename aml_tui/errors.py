"""Errors a user can cause. Each carries a message that names the thing and the fix.

The command line turns them into one line on stderr and exit code 2; anything else that
escapes is a bug in aml-tui and keeps its traceback.
"""

from __future__ import annotations


class AmlTuiError(Exception):
    """A problem the user can fix; its message says what and how."""

    exit_code = 2


class ConfigError(AmlTuiError):
    """An option or configuration value is out of range or unknown."""

    def __init__(self, message: str, field: str | None = None, problem: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        """The `TrainConfig` field at fault, when there is one (forms mark that field)."""
        self.problem = problem or message
        """The fault alone, for display beside the field ("must be at least 1, got 0")."""


class DataError(AmlTuiError):
    """A dataset could not be found, or its files are not what they should be."""


class CheckpointError(AmlTuiError):
    """A checkpoint or run folder could not be written or read."""


class RunBusyError(CheckpointError):
    """Another process trains the run right now (it holds the run's claim)."""


class SweepBusyError(CheckpointError):
    """Another process carries the sweep on right now (it holds the sweep's claim)."""


class ReportError(AmlTuiError):
    """A report cannot be made from what was asked (what to report, where to write it)."""


class ServeError(AmlTuiError):
    """`aml-tui serve` cannot listen where asked (a port in use, an unknown host)."""


class NonFiniteLossError(AmlTuiError):
    """Training produced a NaN or infinite loss."""

    exit_code = 3


class WeightsError(AmlTuiError):
    """Pretrained weights could not be found, or the file is not what it should be."""


def first_line(error: BaseException, blank: str | None = None) -> str:
    """The first line of an error's message, for a one-line report (a library's message may
    run on for pages); `blank` (else the error's type name) when the message is empty."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else (blank or type(error).__name__)


class UserCodeError(AmlTuiError):
    """The user's own code (their experiment file, module or entry point) raised; the message
    names their file and line and the exception (AML_TUI_DEBUG=1 keeps the traceback)."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.file = file
        """The user's file the error is placed in, when one was found."""
        self.line = line
        """Its line there."""
