"""The MoCo learner behind SSAL, AimCLR and SkeletonCLR (``model.learner: moco``), and its builder.

:class:`MoCoLearner` implements the learner contract (:class:`ssal.methods.learner.Learner`);
these methods differ only by configuration (their presets): the encoder, the augmentations and
which loss terms are on. One training step of :class:`MoCoLearner`
(SPEC section 2, the paper's Fig. 2):

1. views: ``s1 = T(x)``, ``s2 = T(x)`` (general augmentation), ``s3 = T'(x)`` (strong: SSA for
   SSAL, AimCLR's extreme set for AimCLR, absent for SkeletonCLR);
2. query encoder + MLP head: ``z2 = g(f(s2))``; for the strong view the encoder's feature maps are
   computed once and fused twice, as is (``z3``) and after SimAM drop (``z3'``);
3. momentum update of the key encoder + head (before the keys are computed, as in MoCo), then,
   without gradient, ``z1 = g_k(f_k(s1))``;
4. logits of every query against the same keys ``[z1; queue]``;
   ``L = a * L_Info(z2, z1, queue) + b * L_d(target = z2, others = z3, z3')``;
5. the keys ``z1`` (gathered across ranks under ``torch.distributed``) are pushed into the
   queue *after* the loss is computed, so a batch never uses its own keys as negatives.

Steps 3 and 5 change state and only happen in training mode (``learner.train()``); in eval mode
``forward`` computes the same loss without touching the key encoder or the queue.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from functools import partial
from typing import Any, Protocol, cast

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from ..config.resolve import typed_section
from ..config.schema import STRONG_KINDS, LossWeights, ModelConfig
from .collectives import gather_cat
from .learner import Learner, compile_feature_maps
from .losses import (
    distribution_divergence,
    info_nce_from_logits,
    moco_logits,
    multi_positive_nce,
    neighbour_positive_mask,
    positive_accuracy,
    weighted_sum,
)
from .queue import FeatureQueue

__all__ = [
    "moco_summary",
    "momentum_update",
    "MoCoLearner",
    "LearnerSettings",
    "STRONG_KINDS",
    "build_learner",
    "build_moco_learner",
    "has_strong_view",
    "learner_settings",
]

Augment = Callable[[Tensor, torch.Generator | None], Tensor]
FeatureDrop = Callable[[Tensor], Tensor]


class _MapEncoder(Protocol):
    """The part of the encoder interface the strong view uses (every ``ssal.models`` encoder)."""

    def feature_maps(self, x: Tensor) -> list[Tensor]: ...

    def fuse(self, maps: list[Tensor]) -> Tensor: ...


@torch.no_grad()
def momentum_update(model_q: nn.Module, model_k: nn.Module, m: float) -> None:
    """Exponential moving average of the query model into the key model (MoCo).

    For every parameter ``theta_k <- m * theta_k + (1 - m) * theta_q``; every buffer (BatchNorm
    statistics, counters) is copied from the query model. Both models must have the same
    structure (the key model is a deepcopy of the query model).
    """
    if not 0.0 <= m <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {m}")
    params_q, params_k = list(model_q.parameters()), list(model_k.parameters())
    buffers_q, buffers_k = list(model_q.buffers()), list(model_k.buffers())
    if len(params_q) != len(params_k) or len(buffers_q) != len(buffers_k):
        raise ValueError("query and key models differ in structure")
    for pq, pk in zip(params_q, params_k):
        pk.lerp_(pq.detach(), 1.0 - m)  # pk + (1 - m) (pq - pk) = m pk + (1 - m) pq
    for bq, bk in zip(buffers_q, buffers_k):
        bk.copy_(bq)


class MoCoLearner(Learner):
    """MoCo with an optional strong view, SimAM feature drop and distributional divergence.

    The learner contract (:class:`~ssal.methods.learner.Learner`): the evaluated encoder is the
    query encoder ``encoder_q``; the optimiser trains the query encoder and head; the key
    encoder and head (EMA of the query ones) are derived state and the queue (filled with the
    keys of every rank) is a replicated buffer; ``run.dist_bn: shuffle`` turns on shuffle-BN
    of the keys; ``run.compile`` compiles both encoders' ``feature_maps``.

    Args:
        encoder: query encoder (``feature_maps``, ``fuse``, ``out_dim``; see ``ssal.models``).
            The key encoder is a deepcopy that receives no gradient.
        head: projection head from ``encoder.out_dim`` to ``feature_dim``; copied likewise.
        general: general augmentation ``T``, called as ``general(x, generator)``.
        strong: strong augmentation ``T'``, or ``None`` for no strong view (then no L_d: the
            strong view only feeds L_d, so it is not computed at all).
        drop: feature-map drop applied to the strong view's maps to get ``z3'`` (SimAM drop
            with its threshold bound), or ``None`` for no ``z3'``.
        feature_dim: output size of ``head`` (the queue's D).
        queue_size: K, number of queued negatives (any size; see :class:`FeatureQueue`).
        momentum: m of the key-encoder EMA.
        temperature: t of all logits.
        loss_weights: weights of the terms, ``{"info": a, "ld": b}``; a term left out takes its
            weight from :class:`~ssal.config.schema.LossWeights`.
        mining_topk: AimCLR's nearest-neighbour mining: from epoch ``mining_epoch`` on
            (see :meth:`set_epoch`), the ``mining_topk`` most similar queue entries of each
            query view are extra positives of L_Info. 0 turns mining off.
        mining_epoch: first epoch with mining.
        use_ld: the L_d term (without it a strong view is contrasted like the general query).

    The keyword arguments default to the schema's values (:class:`~ssal.config.schema.ModelConfig`).
    """

    def __init__(
        self,
        encoder: nn.Module,
        head: nn.Module,
        general: nn.Module | Augment,
        strong: nn.Module | Augment | None = None,
        drop: FeatureDrop | None = None,
        *,
        feature_dim: int = ModelConfig.feature_dim,
        queue_size: int = ModelConfig.queue_size,
        momentum: float = ModelConfig.momentum,
        temperature: float = ModelConfig.temperature,
        loss_weights: Mapping[str, float] | None = None,
        mining_topk: int = ModelConfig.mining_topk,
        mining_epoch: int = ModelConfig.mining_epoch,
        use_ld: bool = ModelConfig.use_ld,
    ) -> None:
        super().__init__()
        if mining_topk < 0 or mining_topk > queue_size:
            raise ValueError(f"mining_topk must be in [0, queue_size={queue_size}], got {mining_topk}")
        self.encoder_q = encoder
        self.head_q = head
        self.encoder_k = copy.deepcopy(encoder)
        self.head_k = copy.deepcopy(head)
        for p in (*self.encoder_k.parameters(), *self.head_k.parameters()):
            p.requires_grad_(False)
        self.general = general
        self.strong = strong
        self.drop = drop
        self.queue = FeatureQueue(queue_size, feature_dim)
        self.momentum = float(momentum)
        self.temperature = float(temperature)
        self.loss_weights = {**asdict(LossWeights()), **dict(loss_weights or {})}
        self.mining_topk = int(mining_topk)
        # Without L_d, a strong view (if any) is contrasted like the general query (InfoNCE
        # against the same key and queue), as in AimCLR's ablation without D3M.
        self.use_ld = bool(use_ld)
        self.mining_epoch = int(mining_epoch)
        self.epoch = 0
        #: MoCo's shuffle-BN for the keys under torch.distributed (:meth:`distributed_setup`).
        self.shuffle_bn = False

    # ------------------------------------------------------------------ the learner contract
    @property
    def evaluated_encoder(self) -> nn.Module:
        """The query encoder ``encoder_q``."""
        return self.encoder_q

    def set_epoch(self, epoch: int) -> None:
        """Tell the learner the current epoch (0-based); only nearest-neighbour mining uses it."""
        self.epoch = int(epoch)

    def trainable_parameters(self) -> Iterable[nn.Parameter]:
        """Parameters the optimiser updates: the query encoder and its head (in module order,
        the requires-grad parameters of the learner)."""
        yield from self.encoder_q.parameters()
        yield from self.head_q.parameters()

    def compile_encoders(self, backend: str) -> None:
        """``torch.compile`` the ``feature_maps`` of the query and key encoders in place. The
        augmentations (seeded generators), the SimAM drop and the queue stay eager."""
        for encoder in (self.encoder_q, self.encoder_k):
            compile_feature_maps(encoder, backend)

    def distributed_setup(self, bn_mode: str) -> None:
        """``shuffle``: the keys are computed on a batch shuffled across ranks (shuffle-BN)."""
        if bn_mode == "shuffle":
            self.shuffle_bn = True

    def replicated_buffers(self) -> list[str]:
        """The queue: every rank enqueues the same gathered keys."""
        return [f"queue.{name}" for name, _ in self.queue.named_buffers()]

    def derived_state(self) -> list[str]:
        """The key encoder and head: EMA of the query ones, their buffers copied from them."""
        key_model = {"encoder_k": self.encoder_k, "head_k": self.head_k}
        names = [f"{prefix}.{name}" for prefix, module in key_model.items() for name, _ in module.named_buffers()]
        return names + [f"{prefix}.{name}" for prefix, module in key_model.items()
                        for name, _ in module.named_parameters()]

    @property
    def mining_active(self) -> bool:
        """Whether nearest-neighbour positives are used at the current epoch."""
        return self.mining_topk > 0 and self.epoch >= self.mining_epoch

    # ------------------------------------------------------------------ the step
    def training_step(
        self, x: Tensor, generator: torch.Generator | None = None, lengths: Tensor | None = None
    ) -> dict[str, Tensor]:
        """One MoCo step on a batch ``x`` (N, C, T, V).

        ``generator`` drives every augmentation; ``lengths`` (N,), if given, are the valid frame
        counts handed to the augmentations (their temporal crop ignores frames beyond them).

        Returns a dict with ``loss`` (differentiable, the weighted sum) and detached parts for
        logging: ``info`` (L_Info), ``ld`` (L_d, only when a strong view exists) and ``acc``
        (fraction of queries whose positive key scores above every negative). In training mode
        the key encoder is EMA-updated before the keys are computed and the keys are enqueued
        after the loss is computed.
        """
        extra = () if lengths is None else (lengths,)
        s1 = self.general(x, generator, *extra)
        s2 = self.general(x, generator, *extra)
        s3 = self.strong(x, generator, *extra) if self.strong is not None else None

        z2 = F.normalize(self.head_q(self.encoder_q(s2)), dim=1)
        strong_z: list[Tensor] = []
        if s3 is not None:
            encoder_q = cast(_MapEncoder, self.encoder_q)  # an encoder module (class docstring)
            maps = encoder_q.feature_maps(s3)
            strong_z.append(F.normalize(self.head_q(encoder_q.fuse(maps)), dim=1))
            if self.drop is not None:
                dropped = [self.drop(m) for m in maps]
                strong_z.append(F.normalize(self.head_q(encoder_q.fuse(dropped)), dim=1))

        with torch.no_grad():
            if self.training:
                momentum_update(self.encoder_q, self.encoder_k, self.momentum)
                momentum_update(self.head_q, self.head_k, self.momentum)
            z1 = self._keys(s1, generator)

        # The queue is updated in place below; the backward pass needs this snapshot.
        negatives = self.queue.features.clone()
        with torch.autocast(device_type=x.device.type, enabled=False):
            k = z1.float()
            logits = moco_logits(z2.float(), k, negatives, self.temperature)
            strong_logits = [moco_logits(z.float(), k, negatives, self.temperature) for z in strong_z]

            if self.mining_active:
                mask = neighbour_positive_mask(
                    [lg[:, 1:] for lg in (logits, *strong_logits)], self.mining_topk
                )
                info = multi_positive_nce(logits, mask)
            else:
                info = info_nce_from_logits(logits)
            if strong_logits and not self.use_ld:
                info = torch.stack([info, *(info_nce_from_logits(lg) for lg in strong_logits)]).mean()
            terms = {"info": info}
            if strong_logits and self.use_ld:
                terms["ld"] = distribution_divergence(logits, *strong_logits)
            loss = weighted_sum(terms, self.loss_weights)

        if self.training:
            self.queue.enqueue(gather_cat(z1))  # keys of all ranks, rank order

        out = {"loss": loss}
        out.update({name: value.detach() for name, value in terms.items()})
        out["acc"] = positive_accuracy(logits)
        return out

    def _keys(self, s1: Tensor, generator: torch.Generator | None) -> Tensor:
        """``z1 = g_k(f_k(s1))``, normalised; with ``shuffle_bn`` in distributed training the
        batch is shuffled across ranks first (:func:`ssal.methods.collectives.shuffled_forward`)."""
        if self.training and self.shuffle_bn and dist.is_available() and dist.is_initialized():
            from .collectives import shuffled_forward

            return shuffled_forward(lambda v: F.normalize(self.head_k(self.encoder_k(v)), dim=1),
                                    s1, generator)
        return F.normalize(self.head_k(self.encoder_k(s1)), dim=1)


# ---------------------------------------------------------------------- configuration

#: The ``model:`` section of a run (:class:`ssal.config.schema.ModelConfig`); the name of ssal 0.1.
LearnerSettings = ModelConfig


def learner_settings(cfg: ModelConfig | Mapping[str, Any] | None, where: str | None = None) -> ModelConfig:
    """``cfg`` (a typed section or a mapping; missing keys take SSAL's defaults) as a checked
    :class:`~ssal.config.schema.ModelConfig`; an unknown key or bad value is an
    :class:`~ssal.errors.SsalInputError` naming ``where`` and the key."""
    return typed_section(ModelConfig, cfg, where, "model.")


def has_strong_view(settings: ModelConfig) -> bool:
    """Whether the learner computes a strong view (fed to L_d, or to InfoNCE without L_d)."""
    return settings.augment.strong_kind != "none"


def build_moco_learner(cfg: ModelConfig | Mapping[str, Any], layout: Any, where: str | None = None) -> MoCoLearner:
    """A :class:`MoCoLearner` from the ``model:`` settings of a method (the ``moco`` entry of
    :data:`ssal.methods.learner.LEARNERS`).

    Args:
        cfg: the typed ``model`` section (:class:`~ssal.config.schema.ModelConfig`) or a mapping
            of it (missing keys take SSAL's defaults, unknown keys raise
            :class:`~ssal.errors.SsalInputError`).
        layout: the ``SkeletonLayout`` of the data (joint count, body parts, mirror pairs).
        where: what to name in error messages (e.g. the config file), if anything.
    """
    from ..skeleton import get_layout

    settings = learner_settings(cfg, where)
    layout = get_layout(layout)

    from ..augment import STRONG_BUILDERS, general_augment
    from ..models import build_encoder
    from ..models.heads import MLPHead
    from ..models.simam import simam_drop

    encoder = build_encoder(settings.encoder, layout)
    head = MLPHead(encoder.out_dim, settings.head_hidden, settings.feature_dim)
    general = general_augment(settings.augment, layout)
    strong = drop = None
    if has_strong_view(settings):
        # The strong view starts with the same general set T.
        strong = STRONG_BUILDERS[settings.augment.strong_kind](settings.augment, layout)
        if settings.use_drop:
            drop = partial(simam_drop, threshold=settings.drop_threshold, mode=settings.drop_mode)
    return MoCoLearner(
        encoder,
        head,
        general,
        strong,
        drop,
        feature_dim=settings.feature_dim,
        queue_size=settings.queue_size,
        momentum=settings.momentum,
        temperature=settings.temperature,
        loss_weights=asdict(settings.loss_weights),
        mining_topk=settings.mining_topk,
        mining_epoch=settings.mining_epoch,
        use_ld=settings.use_ld,
    )


def moco_summary(model: Mapping[str, Any]) -> str:
    """What a report says about a MoCo learner's settings (``model:`` as a mapping)."""
    return (f"MoCo, queue {model['queue_size']}, key momentum {model['momentum']}, "
            f"strong view {model['augment']['strong_kind']}")


#: The name of ssal 0.1 (the benchmarks call it); :func:`ssal.methods.build_learner` builds any
#: learner a ``model:`` section names.
build_learner = build_moco_learner
