"""What the machine is doing while a run trains: the training process's CPU use and memory,
and each visible GPU's utilisation and memory.

GPUs are read through NVML (the `nvidia-ml-py` package, NVIDIA's own bindings; the library
comes with the driver), numbered as torch numbers them in this process (CUDA_VISIBLE_DEVICES
applied). Everything fails soft: without the package, the driver's library or a process to
look at, a sample simply holds less, and nothing here ever raises for it. No torch (the app
samples a run another process trains without loading it) and no psutil: the process's CPU
time comes from os.times, or /proc for another process.

A sampler is used from one thread (the app's hardware worker), a few times a minute.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class GpuLoad:
    """One GPU at one moment."""

    name: str
    """As torch names it in this process: "cuda:0", "cuda:1", ..."""
    utilisation: int | None
    """Percent of NVML's last sample period in which a kernel ran; None when unknown."""
    memory_used: int
    """Bytes in use on the device (by every process, with NVML)."""
    memory_total: int | None
    """The device's memory in bytes; None when unknown."""


@dataclass(frozen=True)
class HardwareSample:
    """The training process and the GPUs, sampled once."""

    cpu_percent: float | None
    """The process's CPU time over the wall time since the previous sample, in percent: 100
    is one core kept busy. None when the process cannot be looked at."""
    cpu_count: int
    """Cores this process may run on."""
    memory: int | None
    """The process's resident memory in bytes; None when unknown."""
    gpus: tuple[GpuLoad, ...] = ()


def cpu_count() -> int:
    """Cores this process may run on (its affinity where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class ProcessClock:
    """CPU seconds and resident memory of one process: this one (pid None) or another on
    this host, read from /proc."""

    def __init__(self, pid: int | None = None) -> None:
        self.pid = pid
        self.ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def cpu_seconds(self) -> float | None:
        if self.pid is None:
            times = os.times()
            return times.user + times.system
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_bytes()
        except OSError:
            return None
        # The command name (field 2) may hold spaces: count the fields after it.
        fields = stat[stat.rfind(b")") + 2 :].split()
        try:
            return (int(fields[11]) + int(fields[12])) / self.ticks
        except (IndexError, ValueError):
            return None

    def memory(self) -> int | None:
        where = "self" if self.pid is None else str(self.pid)
        try:
            pages = int(Path(f"/proc/{where}/statm").read_text().split()[1])
            return pages * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError, AttributeError):
            return None


class HardwareSampler:
    """Samples a process (this one by default) and, when asked, the GPUs."""

    def __init__(
        self,
        pid: int | None = None,
        gpus: bool = False,
        gpu_memory: Callable[[], int] | None = None,
    ) -> None:
        """`gpus`: read the GPUs through NVML. `gpu_memory`: bytes the run holds on its GPU,
        shown when NVML cannot be used (torch's count, from a screen that has torch)."""
        self.clock = ProcessClock(pid)
        self.gpu_memory = gpu_memory
        self.nvml = open_nvml() if gpus else None
        self.handles: list[tuple[str, Any]] = visible_gpus(self.nvml) if self.nvml else []
        self.last = (time.monotonic(), self.clock.cpu_seconds())

    def sample(self) -> HardwareSample:
        now, cpu = time.monotonic(), self.clock.cpu_seconds()
        then, before = self.last
        self.last = (now, cpu)
        percent = None
        if cpu is not None and before is not None and now > then:
            percent = 100 * (cpu - before) / (now - then)
        return HardwareSample(percent, cpu_count(), self.clock.memory(), self.gpu_loads())

    def gpu_loads(self) -> tuple[GpuLoad, ...]:
        if self.nvml is not None and self.handles:
            return tuple(gpu_load(self.nvml, name, handle) for name, handle in self.handles)
        if self.gpu_memory is not None:
            return (GpuLoad("cuda", None, self.gpu_memory(), None),)
        return ()

    def close(self) -> None:
        """Let NVML go (it counts its users)."""
        if self.nvml is not None:
            with contextlib.suppress(self.nvml.NVMLError):  # already down: nothing to let go
                self.nvml.nvmlShutdown()
            self.nvml = None


def open_nvml() -> ModuleType | None:
    """pynvml, initialised; None where the package or the driver's library is missing."""
    try:
        # lazy: an optional GPU dependency, needed only while a CUDA run is sampled
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    module: ModuleType = pynvml
    return module


def visible_gpus(nvml: ModuleType) -> list[tuple[str, Any]]:
    """NVML handles of the GPUs this process sees, named as torch numbers them: NVML's
    order, filtered and reordered by CUDA_VISIBLE_DEVICES (indices or GPU-UUIDs; as CUDA
    does, the list ends at the first entry that names no device)."""
    try:
        count = nvml.nvmlDeviceGetCount()
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is None:
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        else:
            handles = []
            for entry in (part.strip() for part in visible.split(",")):
                if entry.isdigit() and int(entry) < count:
                    handles.append(nvml.nvmlDeviceGetHandleByIndex(int(entry)))
                elif entry.startswith("GPU-") and (handle := by_uuid(nvml, entry)) is not None:
                    handles.append(handle)
                else:
                    break
    except nvml.NVMLError:
        return []
    return [(f"cuda:{i}", handle) for i, handle in enumerate(handles)]


def by_uuid(nvml: ModuleType, uuid: str) -> Any:
    """The GPU of this UUID; None when NVML knows none (CUDA also takes a UUID's prefix)."""
    try:
        return nvml.nvmlDeviceGetHandleByUUID(uuid)
    except nvml.NVMLError:
        return None


def gpu_load(nvml: ModuleType, name: str, handle: Any) -> GpuLoad:
    """One GPU's utilisation and memory; what NVML cannot say is left out."""
    try:
        utilisation: int | None = int(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    except nvml.NVMLError:
        utilisation = None
    try:
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        used, total = int(memory.used), int(memory.total)
    except nvml.NVMLError:
        used, total = 0, None
    return GpuLoad(name, utilisation, used, total)
