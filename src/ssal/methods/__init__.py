"""Self-supervised methods: the learner contract, its registry, and the MoCo learner.

* :mod:`.learner`: :class:`Learner`, what the engine asks of a training algorithm;
  :data:`LEARNERS` (by ``model.learner``), :func:`build_learner`, :func:`learner_name`;
* :mod:`.losses`: InfoNCE (L_Info), distributional divergence (L_d, AimCLR's D3M),
  nearest-neighbour mining, as pure functions;
* :mod:`.queue`: :class:`FeatureQueue`, the ring buffer of negative keys;
* :mod:`.moco`: :func:`momentum_update`, :class:`MoCoLearner` (``moco``: SSAL, AimCLR,
  SkeletonCLR), :func:`~.moco.build_moco_learner`, :func:`learner_settings`;
* :mod:`.registry`: the methods, one preset each (:func:`available_methods`,
  :func:`load_method_config`): adding a method is adding a file.
"""

from .learner import Learner
from .learners import LEARNERS, build_learner, learner_name
from .losses import distribution_divergence, info_nce, moco_logits
from .moco import LearnerSettings, MoCoLearner, build_moco_learner, has_strong_view, learner_settings, momentum_update
from .queue import FeatureQueue
from .registry import available_methods, encoder_name, load_method_config

__all__ = [
    "FeatureQueue",
    "LEARNERS",
    "Learner",
    "available_methods",
    "encoder_name",
    "has_strong_view",
    "learner_name",
    "learner_settings",
    "LearnerSettings",
    "MoCoLearner",
    "build_learner",
    "build_moco_learner",
    "distribution_divergence",
    "info_nce",
    "load_method_config",
    "moco_logits",
    "momentum_update",
]
