"""PSTL (Zhou et al., AAAI 2023; ``model.learner: pstl``): a negative-free learner on three
partial views, following the reference ``YujieOuO/PSTL`` (``procedure.py``
``PretrainProcessor.train_epoch``, ``model.py``, ``module/gcn/st_gcn.py``).

One training step of :class:`PSTLLearner` on a batch ``x`` ``(N, C, T, V)``:

1. the hidden joints of the central spatial mask (CSM) are drawn once for the batch
   (:func:`ssal.augment.pstl.central_spatial_mask_joints`, by joint degree);
2. three views, each the same augmentation (the reference's ``shear(crop(x))``, random
   rotation and random left-right joint swap; here the general set T and AimCLR's flip and
   rotation, which are the same operations, see docs/fidelity.md);
3. ``f1 = f(s1)``; ``f2 = f(MATM(s2))``, the view with the ``mask_frame`` most moving frames
   removed and then ``mask_frame`` more at random (:func:`ssal.augment.pstl.motion_attention_temporal_mask`);
   ``f3 = f(s3)`` on the sub-graph of the remaining joints (the encoder drops the hidden
   joints after its input normalisation and every layer uses the adjacency restricted to them);
4. ``L = BT(g(f1), g(f2)) + BT(g(f1), g(f3))``: one projector ``g`` (three bias-free linear
   layers of width ``projector_dim``, BatchNorm and ReLU after the first two) and the Barlow
   Twins loss (:func:`ssal.methods.losses.barlow_twins_loss`) with weight ``lambd``.

The evaluated encoder is the ST-GCN ``f`` (its pooled last map, as the reference evaluates).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..augment.pstl import central_spatial_mask_joints, motion_attention_temporal_mask
from ..config.resolve import typed_section
from ..config.schema import ModelConfig, PSTLConfig
from ..errors import SsalInputError
from ..skeleton import SkeletonLayout
from .learner import Learner
from .losses import barlow_twins_loss

__all__ = ["PSTLLearner", "barlow_projector", "build_pstl_learner", "mask_counts", "pstl_summary"]

Augment = Callable[[Tensor, torch.Generator | None], Tensor]


def barlow_projector(in_dim: int, width: int) -> nn.Sequential:
    """PSTL's ``BTwins.projector``: Linear-BN-ReLU, Linear-BN-ReLU, Linear, all bias-free."""
    return nn.Sequential(
        nn.Linear(in_dim, width, bias=False), nn.BatchNorm1d(width), nn.ReLU(inplace=True),
        nn.Linear(width, width, bias=False), nn.BatchNorm1d(width), nn.ReLU(inplace=True),
        nn.Linear(width, width, bias=False),
    )


def mask_counts(settings: PSTLConfig, num_joints: int, clip_len: int) -> tuple[int, int]:
    """``(mask_joint, mask_frame)``: the fractions of ``settings`` as counts for a layout of
    ``num_joints`` joints and views of ``clip_len`` frames (rounded half to even)."""
    return round(settings.mask_joint_fraction * num_joints), round(settings.mask_frame_fraction * clip_len)


class PSTLLearner(Learner):
    """PSTL's three-view Barlow Twins learner (module docstring).

    Args:
        encoder: an ST-GCN (``ssal.models.STGCN``: it has ``joint_subset_maps``).
        view: the augmentation of each of the three views, ``view(x, generator)``.
        layout: the skeleton layout (its graph's degrees weight the CSM draw).
        mask_joint: joints drawn for the CSM of each batch.
        mask_frame: frames of each of the two MATM removals.
        projector_dim: the projector's width.
        lambd: the off-diagonal weight of the Barlow Twins loss.
    """

    def __init__(self, encoder: nn.Module, view: nn.Module | Augment, layout: SkeletonLayout, *,
                 mask_joint: int, mask_frame: int,
                 projector_dim: int = PSTLConfig.projector_dim, lambd: float = PSTLConfig.lambd) -> None:
        super().__init__()
        if not hasattr(encoder, "joint_subset_maps"):
            raise SsalInputError(None, "learner pstl needs an ST-GCN encoder (model.encoder.name: stgcn), "
                                       f"got {type(encoder).__name__}")
        self.encoder = encoder
        out_dim: Any = encoder.out_dim  # an ssal.models encoder's feature size
        self.projector = barlow_projector(int(out_dim), projector_dim)
        self.view = view
        self.layout = layout
        self.mask_joint = int(mask_joint)
        self.mask_frame = int(mask_frame)
        self.lambd = float(lambd)

    @property
    def evaluated_encoder(self) -> nn.Module:
        """The ST-GCN encoder."""
        return self.encoder

    def remaining_joints(self, generator: torch.Generator | None, device: torch.device) -> Tensor:
        """The sorted joints the CSM view keeps (all but this batch's hidden ones)."""
        hidden = set(central_spatial_mask_joints(self.layout, self.mask_joint, generator))
        return torch.tensor([j for j in range(self.layout.num_joints) if j not in hidden], device=device)

    def training_step(self, x: Tensor, generator: torch.Generator | None = None,
                      lengths: Tensor | None = None) -> dict[str, Tensor]:
        """One PSTL step (module docstring). Returns ``loss`` and its detached terms
        ``bt_temporal`` (view 1 vs the MATM view) and ``bt_joint`` (view 1 vs the CSM view)."""
        extra = () if lengths is None else (lengths,)
        remain = self.remaining_joints(generator, x.device)
        s1, s2, s3 = (self.view(x, generator, *extra) for _ in range(3))
        s2 = motion_attention_temporal_mask(s2, self.mask_frame, generator)
        encoder: Any = self.encoder
        p1 = self.projector(encoder(s1))
        p2 = self.projector(encoder(s2))
        p3 = self.projector(encoder.fuse(encoder.joint_subset_maps(s3, remain)))
        with torch.autocast(device_type=x.device.type, enabled=False):
            temporal = barlow_twins_loss(p1.float(), p2.float(), self.lambd)
            joint = barlow_twins_loss(p1.float(), p3.float(), self.lambd)
        return {"loss": temporal + joint, "bt_temporal": temporal.detach(), "bt_joint": joint.detach()}


def build_pstl_learner(cfg: ModelConfig | Mapping[str, Any], layout: Any, where: str | None = None) -> PSTLLearner:
    """A :class:`PSTLLearner` from a ``model:`` section (the ``pstl`` entry of
    :data:`ssal.methods.learners.LEARNERS`): its encoder (an ST-GCN), its view (the general set T
    followed by ``augment.strong_kind``'s set, ``extreme`` with flip and rotation only in the
    preset), and ``model.pstl``."""
    from ..augment import STRONG_BUILDERS, general_augment
    from ..models import build_encoder
    from ..skeleton import get_layout

    settings = typed_section(ModelConfig, cfg, where, "model.")
    layout = get_layout(layout)
    if settings.encoder.name != "stgcn":
        raise SsalInputError(where, f"setting 'model.encoder.name': learner pstl needs stgcn, got {settings.encoder.name!r}")
    encoder = build_encoder(settings.encoder, layout)
    kind = settings.augment.strong_kind
    view = general_augment(settings.augment, layout) if kind == "none" else STRONG_BUILDERS[kind](settings.augment, layout)
    clip = settings.augment.general.clip_len
    mask_joint, mask_frame = mask_counts(settings.pstl, layout.num_joints, clip)
    if clip - 2 * mask_frame < 1:
        raise SsalInputError(where, f"setting 'model.pstl.mask_frame_fraction': {mask_frame} + {mask_frame} frames "
                                    f"leave none of clip_len {clip}")
    return PSTLLearner(encoder, view, layout, mask_joint=mask_joint, mask_frame=mask_frame,
                       projector_dim=settings.pstl.projector_dim, lambd=settings.pstl.lambd)


def pstl_summary(model: Mapping[str, Any]) -> str:
    """What a report says about a PSTL learner's settings (``model:`` as a mapping)."""
    return f"Barlow Twins on 3 views, projector {model['pstl']['projector_dim']}"
