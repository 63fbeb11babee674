"""Distributed pretraining (PyTorch DDP under ``torchrun``): process group, sharding, sync.

:func:`ssal.training.engine.pretrain` opens a :func:`session` around every run. Outside ``torchrun``
(no ``WORLD_SIZE``/``RANK`` in the environment and no process group already initialised) the
session is a single process, every helper below is the identity and the engine behaves
exactly as before. Under ``torchrun`` the session:

* initialises the default process group (``nccl`` on CUDA, ``gloo`` on the CPU; device
  ``cuda:LOCAL_RANK``) unless the caller already did, and destroys it at the end if it made it;
* runs the run directory's file work on rank 0 and broadcasts its result (:meth:`DistContext.on_main`),
  so only rank 0 writes and every rank starts from the same checkpoint and split;
* gives each rank its contiguous share of every global batch (:meth:`DistContext.shard`);
* wraps the learner in ``DistributedDataParallel`` (:meth:`DistContext.wrap`): gradients of
  the trained parameters are all-reduced, BatchNorm running statistics are broadcast from
  rank 0 before each forward; the state the learner names as replicated (identical on every
  rank by construction) or derived (recomputed from other state each step) is excluded;
* converts every BatchNorm to ``SyncBatchNorm`` (CUDA only) or lets the learner shuffle a
  batch across ranks (shuffle-BN, :func:`ssal.methods.collectives.shuffled_forward`), per
  ``run.dist_bn``.

The learner is used only through the contract of :class:`ssal.methods.learner.Learner`
(``distributed_setup``, ``replicated_buffers``, ``derived_state``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

if TYPE_CHECKING:
    from ..methods.learner import Learner

__all__ = ["BN_MODES", "DistContext", "session", "torchrun_env"]

#: ``run.dist_bn`` choices: shuffle-BN for a learner's key encoder, SyncBatchNorm everywhere
#: (CUDA only: PyTorch's SyncBatchNorm has no CPU kernel), or per-rank BatchNorm.
from ..config.schema import BN_MODES  # noqa: E402 - the choices of run.dist_bn

L = TypeVar("L", bound="Learner")


def torchrun_env() -> tuple[int, int, int] | None:
    """``(rank, world_size, local_rank)`` from a ``torchrun`` environment, else ``None``."""
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return None
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    return rank, world, local


def _active() -> bool:
    return dist.is_available() and dist.is_initialized()


@dataclass
class DistContext:
    """Where this process stands in the run: rank, world size, device; helpers for the engine.

    With ``active`` false (a plain single process) every method is the identity.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    active: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the only rank that writes files and shows progress."""
        return self.rank == 0

    # ------------------------------------------------------------------ collectives
    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def on_main(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` on rank 0 only; its result (or error) reaches every rank.

        Used for everything that touches the run directory, so other ranks never race rank 0
        and need no shared filesystem for resuming (the checkpoint travels by broadcast).
        """
        if not self.active:
            return fn(*args, **kwargs)
        payload: list[Any] = [None]
        error: BaseException | None = None
        if self.is_main:
            try:
                payload[0] = ("ok", fn(*args, **kwargs))
            except BaseException as exc:  # re-raised below, after the others have heard
                error = exc
                payload[0] = ("error", _describe_error(exc))
        dist.broadcast_object_list(payload, src=0)
        if error is not None:
            raise error
        status, value = payload[0]
        if status == "error":
            raise _rebuild_error(value)
        return value

    def all_gather_object(self, obj: Any) -> list[Any]:
        """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` when single)."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def any_flags(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag OR-ed over the ranks (one small all-reduce), so every rank takes a branch."""
        if not self.active:
            return tuple(bool(f) for f in flags)
        t = torch.tensor([float(bool(f)) for f in flags], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return tuple(bool(v) for v in t.tolist())

    def mean_over_ranks(self, values: Mapping[str, float]) -> dict[str, float]:
        """Per-key mean over the ranks of a dict of floats (same keys on every rank)."""
        if not self.active or not values:
            return dict(values)
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return {k: v / self.world_size for k, v in zip(keys, t.tolist())}

    # ------------------------------------------------------------------ data
    def per_rank_batch(self, batch_size: int) -> int:
        """Each rank's share of a global batch of ``batch_size`` (floor division)."""
        return batch_size // self.world_size

    def shard(self, rows: Sequence[int] | Any) -> Any:
        """This rank's contiguous share of one global batch (all shares have equal size)."""
        if self.world_size == 1:
            return rows
        per = len(rows) // self.world_size
        return rows[self.rank * per:(self.rank + 1) * per]

    def rank_seed(self, seed: int) -> int:
        """A per-rank seed derived from a shared one (rank 0 keeps ``seed``)."""
        return (int(seed) + self.rank) % (2**63 - 1)

    # ------------------------------------------------------------------ model
    def prepare(self, learner: L, bn_mode: str) -> L:
        """Set up BatchNorm handling on ``learner`` before its optimizer is built: with more than
        one rank, ``sync`` converts every BatchNorm to ``SyncBatchNorm``, then the learner's
        ``distributed_setup(bn_mode)`` runs (``shuffle``: shuffle-BN of its keys, if it has any)."""
        from ..errors import SsalInputError

        if bn_mode not in BN_MODES:
            raise SsalInputError(None, f"run.dist_bn must be one of {', '.join(BN_MODES)}, got {bn_mode!r}")
        if not self.active or self.world_size == 1:
            return learner
        if bn_mode == "sync":
            if self.device.type != "cuda":
                raise SsalInputError(None, "run.dist_bn=sync needs CUDA (SyncBatchNorm has no CPU kernel); "
                                 "use shuffle on the CPU")
            # In place: the children are replaced (only a root that is itself a BatchNorm is copied).
            nn.SyncBatchNorm.convert_sync_batchnorm(learner)
        learner.distributed_setup(bn_mode)
        return learner

    def wrap(self, learner: Learner) -> nn.Module:
        """``learner`` inside ``DistributedDataParallel`` (the learner itself when single).

        The learner's replicated buffers (identical on every rank by construction) and derived
        state (recomputed each step from the broadcast and all-reduced state) are left out of
        DDP's buffer broadcast and gradient all-reduce.
        """
        if not self.active:
            return learner
        from torch.nn.parallel import DistributedDataParallel as DDP

        ignore = [*learner.replicated_buffers(), *learner.derived_state()]
        if ignore and hasattr(DDP, "_set_params_and_buffers_to_ignore_for_model"):
            DDP._set_params_and_buffers_to_ignore_for_model(learner, ignore)
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        # Buffers (BatchNorm statistics) are broadcast from rank 0 at init and before each
        # forward: DDP's default.
        return DDP(learner, device_ids=device_ids)

    @torch.no_grad()
    def sync_buffers(self, learner: Learner) -> None:
        """Broadcast every buffer but the learner's replicated ones from rank 0 (BatchNorm
        statistics of the last forward are rank-local until then), so all ranks end with rank
        0's model."""
        if not self.active:
            return
        replicated = set(learner.replicated_buffers())
        for name, buf in learner.named_buffers():
            if name not in replicated:
                dist.broadcast(buf, src=0)


def _describe_error(exc: BaseException) -> tuple[str, Any, Any]:
    from ..errors import SsalInputError

    if isinstance(exc, SsalInputError):
        return ("input", exc.where, exc.problem)
    return ("other", type(exc).__name__, str(exc))


def _rebuild_error(desc: tuple[str, Any, Any]) -> BaseException:
    from ..errors import SsalInputError

    kind, a, b = desc
    if kind == "input":
        return SsalInputError(a, b)
    return RuntimeError(f"rank 0 failed: {a}: {b}")


@contextmanager
def session(device: torch.device) -> Iterator[DistContext]:
    """The process's :class:`DistContext` for one run (see the module docstring).

    ``device`` is the resolved ``run.device``; under ``torchrun`` a CUDA device becomes
    ``cuda:LOCAL_RANK`` and the backend is ``nccl`` (``gloo`` otherwise).
    """
    env = torchrun_env()
    if _active():  # the caller manages the group
        rank, world = dist.get_rank(), dist.get_world_size()
        local = env[2] if env else 0
        if device.type == "cuda":
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
        yield DistContext(rank, world, local, device, active=True)
        return
    if env is None or not dist.is_available():
        yield DistContext(device=device)
        return
    rank, world, local = env
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    init: dict[str, Any] = {"backend": backend}
    if backend == "nccl":
        init["device_id"] = device
    dist.init_process_group(**init)
    ok = False
    try:
        yield DistContext(rank, world, local, device, active=True)
        ok = True
    finally:
        try:
            if ok:
                dist.barrier()
        finally:
            dist.destroy_process_group()
