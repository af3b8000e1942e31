"""Data-parallel training under ``torchrun`` without changing the model interface.

Started by ``torchrun --nproc_per_node=N -m benchmark.cli run ...`` (``WORLD_SIZE > 1``), the
runner joins a process group (``nccl`` on CUDA, ``gloo`` on the CPU), and every rank runs the
same jobs in the same order:

* each global batch (the same as in a one-process run) is split into contiguous shards, one
  per rank (:func:`benchmark.data.shard`);
* after each backward pass the gradients are averaged over ranks in one flattened
  all-reduce (:func:`sync_gradients`), then clipped (the recipe's ``grad_clip``) -- so SAM's
  two passes and gradient clipping see the averaged gradient, as with one process;
* BatchNorm running statistics (floating buffers) are averaged at the end of every epoch;
* SCN-style relabelling requests are gathered from all ranks and applied at the epoch end;
* evaluation batches are dealt round-robin to the ranks and gathered on rank 0;
* only rank 0 writes files (checkpoints, CSVs, predictions, tables, figures).

This is plain data parallelism, not ``DistributedDataParallel``: ``FERModel.training_step``
returns named losses rather than going through ``forward``, and averaging gradients once per
step keeps that interface. Results with N ranks equal a one-process run up to BatchNorm
statistics computed per shard and floating-point summation order.
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


def init_distributed(device: str, timeout_min: float = 120.0) -> DistInfo:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE > 1``)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=timeout_min))
    return DistInfo(rank, world, local)


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def sync_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    """Average the gradients of ``params`` over ranks in one flattened all-reduce.

    A parameter whose gradient is ``None`` on every rank stays ``None`` (optimisers skip it, as
    in a one-process run); if some ranks have one, the others count zeros.
    """
    if world <= 1 or not params:
        return
    dev = params[0].device
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=dev)
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float()
                      for p in params])
    buf = torch.cat([has, flat])
    dist.all_reduce(buf)
    has_any = buf[: len(params)] > 0
    flat = buf[len(params):] / world
    offset = 0
    for p, any_grad in zip(params, has_any.tolist()):
        n = p.numel()
        if any_grad:
            g = flat[offset:offset + n].view_as(p).to(p.dtype)
            if p.grad is None:
                p.grad = g.clone()
            else:
                p.grad.copy_(g)
        offset += n


def install_gradient_sync(optimizer: torch.optim.Optimizer, model: torch.nn.Module, world: int,
                          grad_clip: float = 0.0) -> None:
    """Make ``optimizer.step`` average (then clip) gradients over ranks first.

    Works for plain optimisers and for :class:`models.train.SAM` (its closure's gradients are
    averaged too). With one rank it only applies ``grad_clip`` where the caller asked for it.
    """
    orig_step = optimizer.step
    params = [p for p in model.parameters() if p.requires_grad]

    def sync_and_clip() -> None:
        sync_gradients(params, world)
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], grad_clip)

    def step(closure=None):
        sync_and_clip()
        if closure is None:
            return orig_step()

        def synced_closure():
            loss = closure()
            sync_and_clip()
            return loss

        return orig_step(synced_closure)

    optimizer.step = step  # instance attribute: isinstance checks (SAM) still hold


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
