"""Build the three views' augmentation pipelines from their typed settings.

* :func:`general_augment`: the general set T (SkeletonCLR; the two MoCo views of every method);
* :func:`ssa_augment`: SSAL's strong view, T followed by jitter, spatial and temporal mask;
* :func:`extreme_augment`: AimCLR's strong view, T followed by its extreme set.

Each takes an :class:`~ssal.config.schema.AugmentConfig` (the ``model.augment`` section of a run)
or, for notebooks, one flat mapping of general and strong keys (``{"clip_len": 32, "jitter":
False}``), typed through the same schemas. The defaults are the schema's
(:class:`~ssal.config.schema.GeneralAugmentConfig`, :class:`~ssal.config.schema.SSAConfig`,
:class:`~ssal.config.schema.ExtremeConfig`); an unknown key or a bad value raises
:class:`ssal.errors.SsalInputError`. :func:`general_augment` also accepts, and ignores, the keys
of the strong sets, so one mapping can configure every view of a method.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from torch import nn

from ..config.resolve import merge_typed
from ..config.schema import (
    AugmentConfig,
    ExtremeConfig,
    GeneralAugmentConfig,
    SSAConfig,
    StrongAugmentConfig,
)
from ..skeleton import SkeletonLayout, get_layout
from .base import Compose, setting_error
from .extreme import AxisMask, Flip, GaussianBlur, GaussianNoise, Rotate, TimeFlip
from .general import Shear, TemporalCropResize, TemporalResize
from .ssa import PartMask, TemporalMask, UpperBodyJitter

#: The schema defaults as flat mappings (views of the schema, not a second source).
DEFAULT_GENERAL: dict[str, Any] = dataclasses.asdict(GeneralAugmentConfig())
DEFAULT_SSA: dict[str, Any] = {**DEFAULT_GENERAL, **dataclasses.asdict(SSAConfig())}
DEFAULT_EXTREME: dict[str, Any] = {**DEFAULT_GENERAL, **dataclasses.asdict(ExtremeConfig())}

AugmentSettings = AugmentConfig | Mapping[str, Any] | None
S = TypeVar("S", bound=StrongAugmentConfig)


def _names(schema: type) -> set[str]:
    return {f.name for f in dataclasses.fields(schema)}


def _typed(cfg: AugmentSettings, strong: type[StrongAugmentConfig] | None) -> AugmentConfig:
    """``cfg`` as an :class:`AugmentConfig` whose strong view is ``strong`` (``None``: any, ignored)."""
    if isinstance(cfg, AugmentConfig):
        return cfg
    flat = dict(cfg or {})
    general_keys = _names(GeneralAugmentConfig)
    strong_keys = _names(strong) if strong is not None else _names(SSAConfig) | _names(ExtremeConfig)
    unknown = sorted(str(k) for k in flat if k not in general_keys and k not in strong_keys)
    if unknown:
        known = sorted(general_keys | (strong_keys if strong is not None else set()))
        raise setting_error(f"unknown augmentation setting {', '.join(map(repr, unknown))}; known: {', '.join(known)}")
    kind = {SSAConfig: "ssa", ExtremeConfig: "extreme"}.get(strong, "none")  # type: ignore[arg-type]
    values = {"general": {k: list(v) if isinstance(v, tuple) else v for k, v in flat.items() if k in general_keys},
              "strong_kind": kind,
              "strong": {k: list(v) if isinstance(v, tuple) else v for k, v in flat.items()
                         if strong is not None and k in strong_keys}}
    return merge_typed(AugmentConfig, [(values, None)], "augment.")


def _strong_settings(cfg: AugmentSettings, schema: type[S]) -> tuple[GeneralAugmentConfig, S]:
    """The general and strong settings of a strong view of kind ``schema``."""
    settings = _typed(cfg, schema)
    if not isinstance(settings.strong, schema):
        raise setting_error(f"a {schema.__name__} view needs its strong_kind, got {settings.strong_kind!r}")
    return settings.general, settings.strong


def _general_ops(s: GeneralAugmentConfig) -> list[nn.Module]:
    ops: list[nn.Module] = []
    if s.temporal_crop:
        ops.append(TemporalCropResize(s.clip_len, s.pad_ratio, tuple(s.crop_ratio)))
    else:
        ops.append(TemporalResize(s.clip_len))
    if s.shear:
        ops.append(Shear(s.shear_amplitude))
    return ops


def general_augment(cfg: AugmentSettings, layout: SkeletonLayout | str) -> Compose:
    """The general set T: temporal crop-resize then shear (each switchable). Output
    ``(N, C, clip_len, V)``."""
    get_layout(layout)
    return Compose(_general_ops(_typed(cfg, None).general))


def ssa_augment(cfg: AugmentSettings, layout: SkeletonLayout | str) -> Compose:
    """SSAL's strong view: T, upper-body jitter, part mask, temporal mask (each switchable).
    Output ``(N, C, clip_len, V)``."""
    layout = get_layout(layout)
    general, s = _strong_settings(cfg, SSAConfig)
    ops = _general_ops(general)
    if s.jitter:
        ops.append(UpperBodyJitter(layout, s.jitter_offset_std, s.jitter_frame_std, s.jitter_trunk, p=s.jitter_p))
    if s.spatial_mask:
        ops.append(PartMask(layout, s.spatial_mask_min_parts, s.spatial_mask_max_parts, p=s.spatial_mask_p))
    if s.temporal_mask:
        ops.append(TemporalMask(s.temporal_mask_ratio, s.temporal_mask_frames, p=s.temporal_mask_p))
    return Compose(ops)


def extreme_augment(cfg: AugmentSettings, layout: SkeletonLayout | str) -> Compose:
    """AimCLR's strong view: T, flip, rotate, time flip, noise, blur, axis mask (each
    switchable, each with its probability, in AimCLR's order). Output ``(N, C, clip_len, V)``."""
    layout = get_layout(layout)
    general, s = _strong_settings(cfg, ExtremeConfig)
    ops = _general_ops(general)
    if s.flip:
        ops.append(Flip(layout, p=s.flip_p, lateral_axis=s.flip_axis, mirror=s.flip_mirror))
    if s.rotate:
        ops.append(Rotate(s.rotate_degrees, s.rotate_minor_degrees, p=s.rotate_p, symmetric=s.rotate_symmetric))
    if s.time_flip:
        ops.append(TimeFlip(p=s.time_flip_p))
    if s.noise:
        ops.append(GaussianNoise(s.noise_std, p=s.noise_p))
    if s.blur:
        ops.append(GaussianBlur(s.blur_kernel, tuple(s.blur_sigma), p=s.blur_p, normalize=s.blur_normalize))
    if s.axis_mask:
        ops.append(AxisMask(p=s.axis_mask_p))
    return Compose(ops)


#: Strong-view builders by ``model.augment.strong_kind``.
STRONG_BUILDERS = {"ssa": ssa_augment, "extreme": extreme_augment}
