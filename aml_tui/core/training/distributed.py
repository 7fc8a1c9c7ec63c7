"""Several processes through torchrun: DistributedDataParallel on PyTorch's own machinery.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; each rank trains its shard of every epoch,
evaluation sums are all-reduced, and only rank 0 writes the run folder and prints. Every
collective the trainer makes lives here: the DDP wrap, the per-batch agreement on stopping
and on a non-finite loss, the sharded evaluation, rank 0's buffers for all, the end-of-run
replica check, and telling a lost peer from other errors. The trainer (engine.py) calls
these only when `Distributed` is not None. Leaving the process group at exit (a barrier,
then the process ends) is the headless runner's: aml_tui/headless.py.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from aml_tui.core.data.memory import AnySplit
from aml_tui.core.training.loop import Evaluation
from aml_tui.errors import ConfigError


def world_size_from_env() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun job."""

    rank: int
    local_rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's share of an epoch's sample order, padded by wrapping around so every
        rank takes the same number of steps (as DistributedSampler does)."""
        per_rank = -(-len(order) // self.world_size)
        padded = torch.cat([order, order[: per_rank * self.world_size - len(order)]])
        return padded[self.rank :: self.world_size]

    def span(self, size: int) -> tuple[int, int]:
        """This rank's contiguous slice of `size` evaluation samples (no padding: sums over
        ranks then cover every sample exactly once)."""
        per_rank = -(-size // self.world_size)
        start = min(size, self.rank * per_rank)
        return start, min(size, start + per_rank)

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The model as DDP trains it: gradients all-reduced in backward. Checkpoints and
        evaluation use the unwrapped module."""
        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def any(self, *flags: bool, device: torch.device) -> list[bool]:
        """Whether any rank raised each flag: every rank gets the same answer."""
        values = torch.tensor([int(f) for f in flags], device=device)
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
        return [bool(v) for v in values.tolist()]

    def agree_after_batch(
        self, stop: bool, loss: torch.Tensor, device: torch.device
    ) -> tuple[bool, bool]:
        """After every batch, one all-reduce: whether any rank was asked to stop, and whether
        any rank's loss is non-finite (then every rank fails the run together)."""
        flags = torch.stack(
            [torch.tensor(int(stop), device=device), (~torch.isfinite(loss)).to(torch.long)]
        )
        stopping, non_finite = (bool(v) for v in self.sum(flags).tolist())
        return stopping, non_finite

    def evaluate(
        self, split: AnySplit, evaluate_part: Callable[[AnySplit], Evaluation], device: torch.device
    ) -> Evaluation:
        """Each rank evaluates its span of `split`; loss and accuracy are summed over ranks,
        so every rank gets the whole split's. Predictions stay this rank's own."""
        start, end = self.span(len(split))
        part = split.subset(torch.arange(start, end))
        local = evaluate_part(part)
        correct = int((local.predictions == part.labels.cpu()).sum())
        sums = torch.tensor([local.loss * len(part), correct], dtype=torch.float64, device=device)
        loss_sum, correct_all = self.sum(sums).tolist()
        total = max(len(split), 1)
        return Evaluation(loss_sum / total, correct_all / total, local.predictions)

    def share_buffers(self, model: torch.nn.Module) -> None:
        """Give every rank rank 0's buffers (BatchNorm statistics drift apart in the last
        training step), so evaluation and the saved model agree."""
        for buffer in model.buffers():
            dist.broadcast(buffer.data, src=0)

    def identical(self, model: torch.nn.Module, device: torch.device) -> bool:
        """Whether every rank holds the same weights and buffers (position-weighted sum)."""
        tensors = [*model.parameters(), *model.buffers()]
        flat = torch.cat([t.detach().flatten().double() for t in tensors])
        weights = torch.arange(1, flat.numel() + 1, dtype=torch.float64, device=flat.device)
        checksum = (flat * weights.remainder(997)).sum().to(device).reshape(1)
        low, high = checksum.clone(), checksum.clone()
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        return bool(low.item() == high.item())


def any_rank_stopping(
    distributed: Distributed | None, stop: threading.Event, device: torch.device
) -> bool:
    """Whether a stop was asked for, agreed by every rank so none waits for the others."""
    if distributed is None:
        return stop.is_set()
    (stopping,) = distributed.any(stop.is_set(), device=device)
    return stopping


def is_lost_peer(error: BaseException) -> bool:
    """A collective failed because another rank went away (killed, crashed, out of memory)."""
    if isinstance(error, dist.DistError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and any(
        mark in text for mark in ("gloo", "NCCL", "Connection reset", "Connection closed")
    )


def init_distributed(device_name: str) -> tuple[Distributed | None, str]:
    """Join the torchrun job if there is one; returns it and the device this rank uses.

    nccl with each rank on its LOCAL_RANK GPU when CUDA is there (and not --device cpu),
    gloo on the CPU otherwise.
    """
    world = world_size_from_env()
    if world <= 1:
        return None, device_name
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and not device_name.startswith(("cpu", "mps"))
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPU(s): lower "
                "torchrun's --nproc_per_node"
            )
        torch.cuda.set_device(local_rank)
        device_name = f"cuda:{local_rank}"
    elif device_name.startswith("cuda"):
        raise ConfigError("--device cuda under torchrun but no CUDA GPU is available")
    else:
        device_name = "cpu"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=timedelta(minutes=10))
    return Distributed(rank, local_rank, world), device_name
