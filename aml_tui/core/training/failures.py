"""Why a run failed: one function maps the exception that ended training to RunFailed's
reason and a message that says what happened and how to go on.

The trainer (engine.Trainer.run) records every failure this way; it re-raises the reasons in
RAISED (a bug, a second Ctrl+C) after recording them, and returns the others.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch

from aml_tui.core.events import FailureReason
from aml_tui.core.experiments import Experiment
from aml_tui.core.training.distributed import is_lost_peer
from aml_tui.core.user_code import debugging
from aml_tui.errors import AmlTuiError, NonFiniteLossError, UserCodeError, first_line

RAISED: tuple[FailureReason, ...] = ("interrupted_hard", "bug")
"""Reasons whose exception goes on up after the failure is recorded."""


def classify_failure(
    error: BaseException, device: torch.device, distributed: bool, compiled: bool
) -> tuple[FailureReason, str]:
    """The reason and message for the error that ended a run on `device`; `distributed` and
    `compiled` say whether a lost torchrun peer or torch.compile could have caused it."""
    if isinstance(error, NonFiniteLossError):
        return "non_finite_loss", str(error)
    if isinstance(error, torch.OutOfMemoryError):
        return "out_of_memory", f"out of memory on {device}: lower --batch-size or --image-size"
    if isinstance(error, AmlTuiError):
        return "user_error", str(error)
    if isinstance(error, KeyboardInterrupt):
        return "interrupted_hard", "stopped at once by a second Ctrl+C"
    if distributed and is_lost_peer(error):
        # gloo: "[.../pair.cc:545] Read error [127.0.0.1]:51867: Connection reset by
        # peer. This is typically caused by ..." -> the part between.
        what = re.sub(r"^\[[^\]]*\]\s*", "", first_line(error)).split(". ")[0]
        return "peer_lost", (
            f"lost contact with another process of the torchrun job ({what[:160]}): the other "
            "ranks' output says why; resume with the same torchrun command and --resume"
        )
    if compiled and _is_compile_error(error):
        return "user_error", (
            f"torch.compile failed ({first_line(error)[:200]}): train without --compile (a "
            "resumed run: --resume RUN --no-compile)"
        )
    return "bug", f"internal error: {type(error).__name__}: {error}"


def model_failure(error: Exception, experiment: Experiment, shape: Sequence[int]) -> Exception:
    """What to raise when a training step's forward pass or loss fails: for an experiment of
    the user's (its `model_source` says where its model is built) a one-line UserCodeError
    naming that place and the input the model was given; otherwise, or with AML_TUI_DEBUG=1,
    the error itself (one of aml-tui's own models failing is a bug)."""
    if experiment.model_source is None or isinstance(error, AmlTuiError | torch.OutOfMemoryError):
        return error
    if debugging():
        return error
    batch = "×".join(str(side) for side in shape[1:])
    what = first_line(error)
    return UserCodeError(
        f"the model built by {experiment.model_source} fails on its input, batches of "
        f"{batch} images ({type(error).__name__}: {what[:300]}): make it fit that input "
        "(AML_TUI_DEBUG=1 shows the traceback)"
    )


def _is_compile_error(error: BaseException) -> bool:
    """An error raised by torch.compile's machinery (no C++ compiler, unsupported op, ...),
    not one the model raised while being traced (that is a bug either way)."""
    kind = type(error)
    return kind.__module__.startswith(("torch._dynamo", "torch._inductor")) and (
        kind.__name__ != "TorchRuntimeError"
    )
