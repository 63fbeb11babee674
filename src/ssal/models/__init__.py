"""Encoders (ST-GCN, CFFN = ST-GCN + AFF image branch), heads and SimAM drop.

Every encoder implements :class:`~ssal.models.base.Encoder` on batches ``(N, 3, T, V)``;
:func:`build_encoder` makes one from a config mapping (``name`` plus constructor settings).
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping

from ..errors import SsalInputError
from ..skeleton import SkeletonLayout
from .base import BackboneFeatures, Encoder, count_parameters
from .cffn import CFFN, upgrade_state_dict
from .heads import LinearClassifier, MLPHead
from .simam import simam_attention, simam_drop, simam_energy
from .stgcn import STGCN

#: Encoder classes by config name.
ENCODERS: dict[str, type[Encoder]] = {"stgcn": STGCN, "cffn": CFFN}


def encoder_settings(name: str) -> list[str]:
    """The setting names an encoder accepts (its constructor keywords, without ``layout``)."""
    params = inspect.signature(ENCODERS[name].__init__).parameters
    return [p for p in params if p not in ("self", "layout")]


def build_encoder(cfg: Mapping[str, Any], layout: SkeletonLayout) -> Encoder:
    """Build an encoder from ``cfg`` = ``{"name": "stgcn" | "cffn", **settings}``.

    Raises:
        SsalInputError: missing or unknown ``name``, an unknown setting, or a bad value.
    """
    if not isinstance(cfg, Mapping) or "name" not in cfg:
        raise SsalInputError(None, f"encoder config must be a mapping with a 'name', got {cfg!r}")
    settings = dict(cfg)
    name = settings.pop("name")
    if name not in ENCODERS:
        raise SsalInputError(
            None, f"unknown encoder {name!r}; available: {', '.join(sorted(ENCODERS))}"
        )
    allowed = encoder_settings(name)
    unknown = sorted(str(k) for k in settings if k not in allowed)
    if unknown:
        raise SsalInputError(
            None,
            f"encoder {name}: unknown setting(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(allowed)}",
        )
    try:
        return ENCODERS[name](layout, **settings)
    except SsalInputError:
        raise
    except (TypeError, ValueError) as exc:
        raise SsalInputError(None, f"encoder {name}: {exc}") from None


__all__ = [
    "BackboneFeatures",
    "CFFN",
    "ENCODERS",
    "STGCN",
    "Encoder",
    "LinearClassifier",
    "MLPHead",
    "build_encoder",
    "count_parameters",
    "encoder_settings",
    "simam_attention",
    "simam_drop",
    "simam_energy",
    "upgrade_state_dict",
]
