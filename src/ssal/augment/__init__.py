"""Batched skeleton augmentations: the general set, SSAL's SSA and AimCLR's extreme set.

Every transform is a parameter-free :class:`torch.nn.Module` called as ``t(x, generator)`` on a
batch ``x`` of shape ``(N, C=3, T, V)`` (any floating dtype, any device) with a
:class:`torch.Generator` on ``x.device``; all randomness comes from the generator. Joint sets
(body parts, upper body, mirror pairs) come from a :class:`ssal.skeleton.SkeletonLayout`.

Modules: :mod:`.general` (crop-resize, shear), :mod:`.ssa` (SSA: jitter, part mask,
temporal mask), :mod:`.extreme` (AimCLR: flip, rotate, noise, blur, axis mask),
:mod:`.builders` (typed settings -> :class:`Compose`).
"""

from .base import Augmentation, Compose
from .builders import (
    DEFAULT_EXTREME,
    DEFAULT_GENERAL,
    DEFAULT_SSA,
    STRONG_BUILDERS,
    extreme_augment,
    general_augment,
    ssa_augment,
)
from .extreme import AxisMask, Flip, GaussianBlur, GaussianNoise, Rotate, TimeFlip, axis_rotation
from .general import Shear, TemporalCropResize, TemporalResize, reflect_index, resample
from .ssa import PartMask, TemporalMask, UpperBodyJitter, jitter_joints

__all__ = [
    "Augmentation", "Compose",
    "DEFAULT_GENERAL", "DEFAULT_SSA", "DEFAULT_EXTREME",
    "general_augment", "ssa_augment", "extreme_augment", "STRONG_BUILDERS",
    "TemporalCropResize", "TemporalResize", "Shear", "resample", "reflect_index",
    "UpperBodyJitter", "PartMask", "TemporalMask", "jitter_joints",
    "Flip", "Rotate", "TimeFlip", "GaussianNoise", "GaussianBlur", "AxisMask", "axis_rotation",
]
