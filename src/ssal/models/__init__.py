"""Encoders (ST-GCN, CFFN = ST-GCN + AFF image branch), heads and SimAM drop.

Every encoder implements :class:`~ssal.models.base.Encoder` on batches ``(N, 3, T, V)``;
:func:`build_encoder` makes one from its typed settings (``model.encoder``, :mod:`ssal.config.schema`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..config.resolve import typed_section
from ..config.schema import ENCODER_SCHEMAS, EncoderConfig
from ..errors import SsalInputError
from ..skeleton import SkeletonLayout
from .base import BackboneFeatures, Encoder, count_parameters
from .cffn import CFFN, upgrade_state_dict
from .heads import LinearClassifier, MLPHead
from .simam import simam_attention, simam_drop, simam_energy
from .stgcn import STGCN
from .transformer import SkeletonTransformer

#: Encoder classes by config name.
ENCODERS: dict[str, type[Encoder]] = {"stgcn": STGCN, "cffn": CFFN, "transformer": SkeletonTransformer}


def encoder_settings(name: str) -> list[str]:
    """The setting names an encoder accepts (its schema's fields, without ``name``)."""
    return [f.name for f in dataclasses.fields(ENCODER_SCHEMAS[name]) if f.name != "name"]


def _graph_summary(enc: Mapping[str, Any]) -> str:
    widths = "-".join(map(str, enc["channels"])) if enc.get("channels") else "the 10-layer plan to 256"
    return f"ST-GCN {widths}"


#: What a report says about each encoder's settings: ``summary(encoder_section_mapping) -> str``.
ENCODER_SUMMARIES: dict[str, Any] = {
    "stgcn": _graph_summary,
    "cffn": lambda e: f"CFFN ({_graph_summary(e)}; AFF {e['image_channels']} channels x {e['image_depth']})",
    "transformer": lambda e: (f"transformer dim {e['dim']}, depth {e['depth']}, {e['num_heads']} heads, "
                              f"{e['num_frames']} frames in {e['t_patch_size']}-frame tokens"),
}


def encoder_summary(enc: Mapping[str, Any]) -> str:
    """One phrase on an encoder's settings (``model.encoder`` as a mapping), for reports."""
    summary = ENCODER_SUMMARIES.get(str(enc.get("name")))
    return summary(enc) if summary else str(enc.get("name"))


def build_encoder(cfg: EncoderConfig | Mapping[str, Any], layout: SkeletonLayout) -> Encoder:
    """Build an encoder from its typed settings (:class:`~ssal.config.schema.STGCNConfig` or
    :class:`~ssal.config.schema.CFFNConfig`) or a mapping ``{"name": "stgcn" | "cffn", **settings}``.

    Raises:
        SsalInputError: missing or unknown ``name``, an unknown setting, or a bad value.
    """
    if not isinstance(cfg, EncoderConfig):
        if not isinstance(cfg, Mapping) or "name" not in cfg:
            raise SsalInputError(None, f"encoder config must be a mapping with a 'name', got {cfg!r}")
        name = cfg["name"]
        if name not in ENCODERS:
            raise SsalInputError(None, f"unknown encoder {name!r}; available: {', '.join(sorted(ENCODERS))}")
    settings = typed_section(EncoderConfig, cfg, None, "model.encoder.")
    kwargs = {k: v for k, v in dataclasses.asdict(settings).items() if k != "name"}
    try:
        return ENCODERS[settings.name](layout, **kwargs)
    except SsalInputError:
        raise
    except (TypeError, ValueError) as exc:
        raise SsalInputError(None, f"encoder {settings.name}: {exc}") from None


__all__ = [
    "BackboneFeatures",
    "CFFN",
    "ENCODERS",
    "STGCN",
    "SkeletonTransformer",
    "Encoder",
    "LinearClassifier",
    "MLPHead",
    "build_encoder",
    "count_parameters",
    "encoder_settings",
    "encoder_summary",
    "simam_attention",
    "simam_drop",
    "simam_energy",
    "upgrade_state_dict",
]
