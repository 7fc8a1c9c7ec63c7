"""Choosing the torch device from the --device option."""

from __future__ import annotations

import torch

from aml_tui.errors import ConfigError


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
    """auto -> cuda, then mps, then cpu; an explicit device that is absent is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"--device {name} was asked for but no CUDA GPU is available: use --device cpu "
                "or auto"
            )
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here: "
                f"choose one of {', '.join(available_devices())}"
            )
        return device
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            "--device mps was asked for but MPS is not available: use --device cpu or auto"
        )
    return torch.device(name)


def memory_in_use(device: torch.device) -> int:
    """Bytes in use: allocated GPU memory on CUDA, else this process's resident memory."""
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        import os

        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
