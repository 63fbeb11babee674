"""Collectives a learner calls inside its training step, under ``torchrun`` or not.

Outside a process group (one process) both are the identity of their input; under ``torchrun``
:func:`gather_cat` concatenates every rank's tensor and :func:`shuffled_forward` is MoCo's
shuffle-BN. The process group itself belongs to the training layer
(:mod:`ssal.training.distributed`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["gather_cat", "shuffled_forward"]


def _active() -> bool:
    return dist.is_available() and dist.is_initialized()


def gather_cat(x: Tensor) -> Tensor:
    """``x`` of every rank concatenated along dim 0 in rank order (all ranks same shape)."""
    if not _active() or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


@torch.no_grad()
def shuffled_forward(fn: Callable[[Tensor], Tensor], x: Tensor,
                     generator: torch.Generator | None = None) -> Tensor:
    """Shuffle-BN: ``fn`` on a batch shuffled across ranks, results returned in order.

    The global batch (every rank's ``x``) is gathered, permuted by a permutation drawn on rank 0
    (from ``generator``, so it is reproducible) and broadcast, each rank evaluates ``fn`` on its
    slice of the shuffled batch (so its BatchNorm statistics mix samples of other ranks: a
    contrastive key never shares BN statistics with its own query), and the outputs are gathered and
    un-shuffled. Returns this rank's rows, ``fn``-ed: ``(len(x), ...)``.
    """
    if not _active() or dist.get_world_size() == 1:
        return fn(x)
    world, rank, n = dist.get_world_size(), dist.get_rank(), x.shape[0]
    x_all = gather_cat(x)
    if rank == 0:
        gen_device = generator.device if generator is not None else x.device
        perm = torch.randperm(world * n, generator=generator, device=gen_device).to(x.device)
    else:
        perm = torch.empty(world * n, dtype=torch.long, device=x.device)
    dist.broadcast(perm, src=0)
    mine = perm[rank * n:(rank + 1) * n]
    z_all = gather_cat(fn(x_all[mine]))  # z_all[j] belongs to sample perm[j]
    restored = torch.empty_like(z_all)
    restored[perm] = z_all
    return restored[rank * n:(rank + 1) * n]
