"""Self-supervised methods: one MoCo learner, configured per method.

* :mod:`.losses`: InfoNCE (L_Info), distributional divergence (L_d, AimCLR's D3M),
  nearest-neighbour mining, as pure functions;
* :mod:`.queue`: :class:`FeatureQueue`, the ring buffer of negative keys;
* :mod:`.moco`: :func:`momentum_update`, :class:`MoCoLearner`, :func:`build_learner`,
  :func:`learner_settings`;
* :mod:`.registry`: the methods, one preset each in ``configs/<name>.yaml`` (:func:`available_methods`,
  :func:`load_method_config`): adding a method is adding a file.
"""

from .losses import distribution_divergence, info_nce, moco_logits
from .moco import LearnerSettings, MoCoLearner, build_learner, has_strong_view, learner_settings, momentum_update
from .queue import FeatureQueue
from .registry import available_methods, encoder_name, load_method_config

__all__ = [
    "FeatureQueue",
    "available_methods",
    "encoder_name",
    "has_strong_view",
    "learner_settings",
    "LearnerSettings",
    "MoCoLearner",
    "build_learner",
    "distribution_divergence",
    "info_nce",
    "load_method_config",
    "moco_logits",
    "momentum_update",
]
