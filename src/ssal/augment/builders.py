"""Build the three views' augmentation pipelines from plain config dicts.

* :func:`general_augment`: the general set T (SkeletonCLR; the two MoCo views of every method);
* :func:`ssa_augment`: SSAL's strong view, T followed by jitter, spatial and temporal mask;
* :func:`extreme_augment`: AimCLR's strong view, T followed by its extreme set.

A config dict overrides the defaults below key by key; an unknown key raises
:class:`ssal.errors.SsalInputError`. The strong builders take the general keys too (their view
starts with T). :func:`general_augment` also accepts, and ignores, the keys of the strong sets,
so one dict can configure every view of a method.
"""

from __future__ import annotations

from typing import Any, Collection, Mapping

from torch import nn

from ..skeleton import SkeletonLayout, get_layout
from .base import Compose, check_probability, setting_error
from .extreme import AxisMask, Flip, GaussianBlur, GaussianNoise, Rotate, TimeFlip
from .general import Shear, TemporalCropResize, TemporalResize
from .strong import PartMask, TemporalMask, UpperBodyJitter

#: General set T (SkeletonCLR / AimCLR ``feeder/tools.py``), shared by every view.
DEFAULT_GENERAL: dict[str, Any] = {
    "clip_len": 50,             # frames of every output view (AimCLR's 50)
    "temporal_crop": True,      # switch: random crop (+ resize to clip_len); off = plain resize
    "pad_ratio": 1 / 6,         # mirrored frames (edge repeated) padded at each end: L // 6
    "crop_ratio": (1.0, 1.0),   # (min, max) window, fraction of L: AimCLR's shift-only crop;
                                # below 1 = crop-and-resize (changes the walking speed)
    "shear": True,              # switch: random 3D shear
    "shear_amplitude": 0.5,     # off-diagonal shear entries ~ U(-a, a)
}

#: SSAL's strong set (SSA) = general set + these. Magnitudes are inferred (SPEC section 2).
DEFAULT_SSA: dict[str, Any] = {
    **DEFAULT_GENERAL,
    "jitter": True,                 # switch: upper-body jitter
    "jitter_offset_std": 0.1,       # per-sequence offset of each upper-limb joint, metres
    "jitter_frame_std": 0.01,       # extra per-frame jitter, metres (0 = none)
    "jitter_trunk": False,          # also move the trunk above the hips (spine, neck, head)
    "jitter_p": 1.0,                # probability per sample
    "spatial_mask": True,           # switch: zero whole body parts
    "spatial_mask_min_parts": 1,    # parts zeroed per sample, drawn in [min, max]
    "spatial_mask_max_parts": 2,
    "spatial_mask_p": 1.0,
    "temporal_mask": True,          # switch: zero whole frames
    "temporal_mask_ratio": 0.15,    # fraction of clip_len frames zeroed (8 of 50)
    "temporal_mask_frames": None,   # exact frame count instead of the ratio (None = use ratio)
    "temporal_mask_p": 1.0,
}

#: AimCLR's extreme set = general set + these (``Feeder_triple._strong_aug``, in this order).
DEFAULT_EXTREME: dict[str, Any] = {
    **DEFAULT_GENERAL,
    "flip": True,                   # switch: left/right flip
    "flip_mirror": False,           # AimCLR swaps the mirrored joints only; true: also negate flip_axis
    "flip_axis": 0,                 # lateral coordinate negated when flip_mirror (x)
    "flip_p": 0.5,
    "rotate": True,                 # switch: random rotation
    "rotate_degrees": 30.0,         # main axis angle ~ U(0, 30) degrees
    "rotate_minor_degrees": 1.0,    # the two other axes ~ U(0, 1) degrees
    "rotate_symmetric": False,      # true: U(-30, 30) / U(-1, 1)
    "rotate_p": 1.0,                # AimCLR rotates every sample
    "time_flip": True,              # switch: reverse the frame order
    "time_flip_p": 0.5,
    "noise": True,                  # switch: Gaussian noise
    "noise_std": 0.01,              # metres
    "noise_p": 0.5,
    "blur": True,                   # switch: Gaussian blur along time
    "blur_kernel": 15,              # taps (odd)
    "blur_sigma": (0.1, 2.0),       # (min, max) kernel width, frames
    "blur_normalize": False,        # AimCLR's kernel is not normalised (scales by 1-5x), zero-padded
    "blur_p": 0.5,
    "axis_mask": True,              # switch: zero one coordinate axis
    "axis_mask_p": 0.5,
}

_SWITCHES = ("temporal_crop", "shear", "jitter", "jitter_trunk", "spatial_mask", "temporal_mask",
             "flip", "flip_mirror", "rotate", "rotate_symmetric", "time_flip", "noise", "blur",
             "blur_normalize", "axis_mask")
_ALL_KEYS = set(DEFAULT_SSA) | set(DEFAULT_EXTREME)


def resolve_settings(
    cfg: Mapping[str, Any] | None, defaults: Mapping[str, Any], tolerated: Collection[str] = ()
) -> dict[str, Any]:
    """``defaults`` overridden by ``cfg``; keys in ``tolerated`` are accepted and dropped.

    Raises:
        SsalInputError: a key is neither in ``defaults`` nor tolerated, a switch is not a bool,
            or a probability (``*_p``) is not in ``[0, 1]``. Other values are checked by the
            transforms' constructors.
    """
    cfg = dict(cfg or {})
    unknown = sorted(k for k in cfg if k not in defaults and k not in tolerated)
    if unknown:
        raise setting_error(
            f"unknown augmentation setting {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(defaults))}"
        )
    settings = dict(defaults)
    settings.update({k: v for k, v in cfg.items() if k in defaults})
    for key in settings:
        if key.endswith("_p"):
            check_probability(key, settings[key])
    for key in _SWITCHES:
        if key in settings and not isinstance(settings[key], bool):
            raise setting_error(
                f"augmentation setting {key} must be true or false, got {settings[key]!r}"
            )
    return settings


def _general_ops(s: Mapping[str, Any]) -> list[nn.Module]:
    ops: list[nn.Module] = []
    if s["temporal_crop"]:
        ops.append(TemporalCropResize(s["clip_len"], s["pad_ratio"], s["crop_ratio"]))
    else:
        ops.append(TemporalResize(s["clip_len"]))
    if s["shear"]:
        ops.append(Shear(s["shear_amplitude"]))
    return ops


def general_augment(cfg: Mapping[str, Any] | None, layout: SkeletonLayout | str) -> Compose:
    """The general set T: temporal crop-resize then shear (each switchable); keys of
    :data:`DEFAULT_GENERAL` (strong-set keys are accepted and ignored). Output
    ``(N, C, clip_len, V)``."""
    get_layout(layout)
    s = resolve_settings(cfg, DEFAULT_GENERAL, tolerated=_ALL_KEYS)
    return Compose(_general_ops(s))


def ssa_augment(cfg: Mapping[str, Any] | None, layout: SkeletonLayout | str) -> Compose:
    """SSAL's strong view: T, upper-body jitter, part mask, temporal mask (each switchable);
    keys of :data:`DEFAULT_SSA`. Output ``(N, C, clip_len, V)``."""
    layout = get_layout(layout)
    s = resolve_settings(cfg, DEFAULT_SSA)
    ops = _general_ops(s)
    if s["jitter"]:
        ops.append(UpperBodyJitter(layout, s["jitter_offset_std"], s["jitter_frame_std"],
                                   s["jitter_trunk"], p=s["jitter_p"]))
    if s["spatial_mask"]:
        ops.append(PartMask(layout, s["spatial_mask_min_parts"], s["spatial_mask_max_parts"],
                            p=s["spatial_mask_p"]))
    if s["temporal_mask"]:
        ops.append(TemporalMask(s["temporal_mask_ratio"], s["temporal_mask_frames"],
                                p=s["temporal_mask_p"]))
    return Compose(ops)


def extreme_augment(cfg: Mapping[str, Any] | None, layout: SkeletonLayout | str) -> Compose:
    """AimCLR's strong view: T, flip, rotate, time flip, noise, blur, axis mask (each
    switchable, each with its probability, in AimCLR's order); keys of :data:`DEFAULT_EXTREME`.
    Output ``(N, C, clip_len, V)``."""
    layout = get_layout(layout)
    s = resolve_settings(cfg, DEFAULT_EXTREME)
    ops = _general_ops(s)
    if s["flip"]:
        ops.append(Flip(layout, p=s["flip_p"], lateral_axis=s["flip_axis"], mirror=s["flip_mirror"]))
    if s["rotate"]:
        ops.append(Rotate(s["rotate_degrees"], s["rotate_minor_degrees"], p=s["rotate_p"],
                          symmetric=s["rotate_symmetric"]))
    if s["time_flip"]:
        ops.append(TimeFlip(p=s["time_flip_p"]))
    if s["noise"]:
        ops.append(GaussianNoise(s["noise_std"], p=s["noise_p"]))
    if s["blur"]:
        ops.append(GaussianBlur(s["blur_kernel"], s["blur_sigma"], p=s["blur_p"], normalize=s["blur_normalize"]))
    if s["axis_mask"]:
        ops.append(AxisMask(p=s["axis_mask_p"]))
    return Compose(ops)
