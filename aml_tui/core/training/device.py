"""Choosing the torch device from the --device option."""

from __future__ import annotations

import os
import sys

import torch

from aml_tui.errors import ConfigError

SUPPORTED = ("cpu", "cuda", "mps")
"""Device types aml-tui trains and evaluates on (torch knows more: meta, xpu, ...)."""


def available_devices() -> list[str]:
    """Device names usable here, best first, for menus and messages."""
    names = (
        [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    )
    if torch.backends.mps.is_available():
        names.append("mps")
    names.append("cpu")
    return names


def resolve_device(name: str) -> torch.device:
    """auto -> cuda, then mps, then cpu. A name torch does not know, a device type aml-tui
    does not run on, or an explicit device that is absent is a one-line ConfigError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    choices = f"choose auto or one of {', '.join(available_devices())}"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"--device {name!r} is not a device: {choices}") from None
    if device.type not in SUPPORTED:
        raise ConfigError(
            f"--device {name!r}: aml-tui runs on cpu, cuda[:N] or mps, not {device.type}: {choices}"
        )
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"--device {name} was asked for but no CUDA GPU is available: use --device cpu "
                "or auto"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here: {choices}"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            "--device mps was asked for but MPS is not available: use --device cpu or auto"
        )
    return device


def memory_in_use(device: torch.device) -> int:
    """Bytes in use: allocated GPU memory on CUDA, else this process's resident memory."""
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        # lazy: `resource` exists on Unix only; Linux has answered from /proc above
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # the peak, not the current
        return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, else KiB
