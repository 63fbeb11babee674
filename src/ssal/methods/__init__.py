"""Self-supervised methods: one MoCo learner, configured per method.

* :mod:`.losses`: InfoNCE (L_Info), distributional divergence (L_d, AimCLR's D3M),
  nearest-neighbour mining, as pure functions;
* :mod:`.queue`: :class:`FeatureQueue`, the ring buffer of negative keys;
* :mod:`.moco`: :func:`momentum_update`, :class:`MoCoLearner`, :func:`build_learner`,
  :func:`load_method_config`;
* ``configs/{ssal,aimclr,skeletonclr}.yaml``: the method presets (``model:`` + ``train:``).
"""

from .losses import distribution_divergence, info_nce, moco_logits
from .moco import (
    METHODS,
    LearnerSettings,
    MoCoLearner,
    build_learner,
    load_method_config,
    momentum_update,
)
from .queue import FeatureQueue

__all__ = [
    "METHODS",
    "FeatureQueue",
    "LearnerSettings",
    "MoCoLearner",
    "build_learner",
    "distribution_divergence",
    "info_nce",
    "load_method_config",
    "moco_logits",
    "momentum_update",
]
