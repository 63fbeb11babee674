"""The learner contract: what the pretraining engine asks of a self-supervised method.

A *learner* is one training algorithm (MoCo for SSAL, AimCLR and SkeletonCLR; a masked
predictor or a redundancy-reduction method could be others): an ``nn.Module`` that owns every
network and every piece of state the algorithm trains or keeps (encoders, heads, momentum
copies, memory banks), so that its ``state_dict`` is the ``model`` field of ``checkpoint.pt``.
:mod:`ssal.training.engine` and :mod:`ssal.training.distributed` use a learner only through the methods of
:class:`Learner` below; nothing there names an algorithm's parts.

One learner's life in a run (``ssal.training.engine.pretrain``):

1. built by :func:`build_learner` from the ``model:`` section: the builder of
   :data:`LEARNERS` named by :func:`learner_name` (first on the meta device, to refuse a learner
   too large for memory, then for real);
2. under ``torchrun`` with several ranks: :meth:`Learner.distributed_setup` with ``run.dist_bn``
   (after every BatchNorm became ``SyncBatchNorm`` for ``sync``);
3. the optimiser is built over :meth:`Learner.trainable_parameters`; a resumed run loads the
   checkpoint's ``model`` with ``load_state_dict``; ``run.compile`` calls
   :meth:`Learner.compile_encoders`; under ``torchrun`` the learner is wrapped in
   ``DistributedDataParallel``, which leaves alone the state named by
   :meth:`Learner.replicated_buffers` and :meth:`Learner.derived_state`;
4. every epoch: :meth:`Learner.set_epoch`, ``train()``, then one call per batch
   ``learner(x, generator)`` (:meth:`Learner.training_step`), whose ``loss`` is back-propagated
   and whose other scalars are logged;
5. at the end of every monitored epoch and of the run: :attr:`Learner.evaluated_encoder` is
   evaluated by the kNN monitor and written to ``encoder.pt`` (and ``snapshots/``); before the
   final write, every buffer except :meth:`Learner.replicated_buffers` is broadcast from rank 0.

Adding a learner is adding a subclass and its builder to :data:`ssal.methods.learners.LEARNERS`
(a preset then names it with ``model.learner``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

__all__ = ["Learner", "LOSS_KEY", "compile_feature_maps"]

#: The key of the total loss in what :meth:`Learner.training_step` returns.
LOSS_KEY = "loss"


class Learner(nn.Module):
    """The base class of every learner (see the module docstring for when each method is called).

    A subclass implements :meth:`training_step` and :attr:`evaluated_encoder`; every other hook
    has a default that fits a learner with a single encoder trained by gradient and no state
    shared between ranks. ``forward`` is :meth:`training_step`, so that ``DistributedDataParallel``
    and module hooks see the step.
    """

    def forward(self, x: Tensor, generator: torch.Generator | None = None,
                lengths: Tensor | None = None) -> Mapping[str, Tensor | float]:
        """The training step (:meth:`training_step`)."""
        return self.training_step(x, generator, lengths)

    def training_step(self, x: Tensor, generator: torch.Generator | None = None,
                      lengths: Tensor | None = None) -> Mapping[str, Tensor | float]:
        """One step on a batch ``x`` ``(N, C, T, V)`` (this rank's share of the global batch).

        Args:
            x: the sequences, float32 on the training device (under ``run.amp`` the call runs
                inside bf16 autocast).
            generator: a ``torch.Generator`` on ``x.device`` that drives every random choice of
                the step (views, masks); the engine seeds it per epoch and saves it in every
                checkpoint, so a resumed run draws the same numbers.
            lengths: ``(N,)`` valid frame counts, when known (the engine passes none).

        Returns:
            ``{LOSS_KEY: total, part: value, ...}``: the total is a differentiable scalar tensor
            (the engine calls ``backward`` on it and stops the run when it is not finite); the
            other entries are detached scalar tensors or Python floats (loss terms, accuracies)
            that the engine averages per epoch into ``metrics.jsonl`` and logs per step. Entries
            that are neither are ignored.

        In training mode (``learner.train()``) the step may update state that is not trained by
        gradient (momentum encoders, memory banks); in eval mode it must leave it unchanged.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement training_step")

    @property
    def evaluated_encoder(self) -> nn.Module:
        """The encoder whose output is the learned representation: what ``encoder.pt`` holds and
        what the kNN monitor and every evaluation protocol read (``feature_maps``, ``fuse``,
        ``out_dim``; see ``ssal.models``). A submodule of the learner, so training updates it."""
        raise NotImplementedError(f"{type(self).__name__} does not name its evaluated encoder")

    def set_epoch(self, epoch: int) -> None:
        """Called at the start of every epoch (0-based, also on resume) before its first step;
        for schedules inside the learner. The default remembers it as ``self.epoch``."""
        self.epoch = int(epoch)

    def trainable_parameters(self) -> Iterable[nn.Parameter]:
        """The parameters the optimiser updates, in a fixed order (the optimiser's state in
        ``checkpoint.pt`` is matched by position). Default: every parameter that requires a
        gradient, in module order."""
        return (p for p in self.parameters() if p.requires_grad)

    def compile_encoders(self, backend: str) -> None:
        """``run.compile``: ``torch.compile`` the heavy parts in place, without changing the module
        structure or the state-dict keys (checkpoints of compiled and eager runs are
        interchangeable). Called after a resumed checkpoint is loaded. Default: the evaluated
        encoder's ``feature_maps``, when it has them."""
        compile_feature_maps(self.evaluated_encoder, backend)

    # ------------------------------------------------------------------ distributed training
    def distributed_setup(self, bn_mode: str) -> None:
        """Called once under ``torchrun`` with more than one rank, before the optimiser is built.

        ``bn_mode`` is ``run.dist_bn`` (``ssal.config.schema.BN_MODES``): ``sync`` (every
        BatchNorm has already been converted to ``SyncBatchNorm``), ``shuffle`` (a learner with
        a key encoder shuffles the keys' batch across ranks, MoCo's shuffle-BN; one without has
        nothing to do) or ``local``. Default: nothing.
        """

    def replicated_buffers(self) -> list[str]:
        """State-dict names of buffers that every rank keeps identical by construction (e.g. a
        memory bank filled with keys gathered from all ranks): ``DistributedDataParallel`` does
        not broadcast them and the final synchronisation skips them. Default: none."""
        return []

    def derived_state(self) -> list[str]:
        """State-dict names of parameters and buffers that no gradient trains and that each step
        recomputes from other state (e.g. a momentum copy of the encoder):
        ``DistributedDataParallel`` neither all-reduces nor broadcasts them. Default: none."""
        return []


def compile_feature_maps(encoder: nn.Module, backend: str) -> None:
    """Replace ``encoder.feature_maps`` by its ``torch.compile`` (an instance attribute: the
    module's structure and state-dict keys do not change)."""
    maps = getattr(encoder, "feature_maps", None)
    if maps is not None:
        encoder.feature_maps = torch.compile(maps, backend=backend)  # type: ignore[assignment]
