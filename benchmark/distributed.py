"""Data-parallel training under ``torchrun`` with PyTorch's ``DistributedDataParallel``.

Started by ``torchrun --nproc_per_node=N -m benchmark.cli run ...`` (``WORLD_SIZE > 1``), the
runner joins a process group (the backend follows the resolved device: ``nccl`` on CUDA,
``gloo`` on the CPU), and every rank runs the same jobs in the same order:

* each global batch (the same as in a one-process run) is split into contiguous shards, one
  per rank (:func:`benchmark.data.shard`);
* each stage's training step runs through :func:`wrap_model`: a
  :class:`~torch.nn.parallel.DistributedDataParallel` around the model's ``training_step``
  (:class:`models.train.TrainingStep`), built after ``begin_stage`` so it holds exactly that
  stage's trainable parameters. Its backward pass averages the gradients over ranks, so the
  recipe's gradient clipping and SAM's two passes see the averaged gradient, as with one
  process;
* BatchNorm running statistics (floating buffers) are averaged at the end of every epoch
  (:func:`average_buffers`; DDP's own ``broadcast_buffers`` would keep rank 0's alone);
* SCN-style relabelling requests are gathered from all ranks and applied at the epoch end;
* evaluation batches are dealt round-robin to the ranks and gathered on rank 0;
* only rank 0 writes files (checkpoints, CSVs, predictions, tables, figures).

Results with N ranks equal a one-process run up to BatchNorm statistics computed per shard
and floating-point summation order (``tests/test_bench_ddp.py`` checks it on two CPU ranks).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: ``rank`` of ``world`` processes, ``local_rank`` on its node."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_writer(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def place(self, device: torch.device) -> torch.device:
        """This rank's device: ``cuda:LOCAL_RANK`` for CUDA under ``torchrun``, else ``device``."""
        return torch.device("cuda", self.local_rank) if self.enabled and device.type == "cuda" else device


def init_distributed(device: torch.device, timeout_min: float = 120.0) -> DistInfo:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE > 1``).

    ``device`` is the command's resolved device (:func:`fercore.device.resolve_device`): the
    backend is ``nccl`` when it is CUDA, ``gloo`` otherwise.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=timeout_min))
    return DistInfo(rank, world, local)


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: torch.nn.Module, info: DistInfo, device: torch.device):
    """The training step of ``model`` behind ``DistributedDataParallel`` (``None`` with one rank).

    Call it after ``begin_stage``: DDP holds the parameters that require gradients when it is
    built. ``find_unused_parameters`` because a stage may leave some of them out of a step's
    loss (they then get no gradient on any rank, as in a one-process run).
    """
    if not info.enabled:
        return None
    from torch.nn.parallel import DistributedDataParallel

    from models.train import TrainingStep

    return DistributedDataParallel(TrainingStep(model), device_ids=[device.index] if device.type == "cuda" else None,
                                   broadcast_buffers=False, find_unused_parameters=True)


def average_buffers(model: torch.nn.Module, world: int) -> None:
    """Average floating-point buffers (BatchNorm running statistics) over ranks."""
    if world <= 1:
        return
    for b in model.buffers():
        if b.is_floating_point():
            dist.all_reduce(b)
            b.div_(world)


def all_reduce_sum(values: list[float], device) -> list[float]:
    """Sum a list of numbers over ranks (returns the list unchanged with one rank)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj`` (in rank order) on every rank."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world
    dist.all_gather_object(out, obj)
    return out
