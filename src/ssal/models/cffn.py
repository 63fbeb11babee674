"""CFFN: complementary feature fusion of a graph branch and an image branch (SSAL's encoder).

* Graph branch: the ST-GCN backbone (:class:`~ssal.models.stgcn.STGCNBackbone`, AimCLR's
  configuration by default: widths 16..64, 256) without its ``fc``.
* Image branch: the sequence as a 3-channel T x V image through AFF blocks
  (:class:`~ssal.models.aff.AFFBackbone`), light by default (32 channels, 2 blocks, stem stride
  2 on T) so that CFFN costs little more than ST-GCN alone.

Fusion (the paper only says it is "guided so that the two domains complement each other";
this gated form is our choice, *inferred*). Each branch map is average-pooled over (T, V) and
projected to ``out_dim``: ``f_g = P_g pool(graph_map)``, ``f_i = P_i pool(image_map)``. A gate
computed from both decides, per feature dimension, how much each domain contributes:

    g = sigmoid(W_g [f_g; f_i] + b_g)
    h = g * f_g + (1 - g) * f_i
    out = fc(h)                                     (N, out_dim)

Where one branch is uninformative for a dimension the gate can hand it to the other, which is
the complementarity asked for. ``fusion="concat"`` replaces the gate with ``fc([f_g; f_i])``
(an ablation). With one branch switched off (``use_graph`` / ``use_image`` false) the output
is ``fc(f)`` of the remaining branch and ``feature_maps`` returns only its map.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import torch
from torch import Tensor, nn

from ..config.schema import CFFNConfig as _C  # the defaults
from ..skeleton import SkeletonLayout
from .aff import AFFBackbone
from .base import Encoder, as_int, check_setting, global_pool
from .stgcn import STGCNBackbone

FUSIONS = ("gate", "concat")

#: Old -> new name of the graph branch submodule (renamed after ssal 0.1, see :class:`CFFN`).
RENAMED_MODULES = {"graph": "graph_branch"}


def upgrade_state_dict(state: Mapping[str, Any], expected: Iterable[str]) -> dict[str, Any]:
    """``state`` with the keys of modules renamed since it was written mapped to today's names.

    A key is renamed only where one of its path components is an old name of
    :data:`RENAMED_MODULES`, the renamed key is one of ``expected`` (the keys of the module
    that will load it) and the old key is not. This keeps every other key as it is, so it works
    for an encoder's state (``graph.blocks...``) and a learner's (``encoder_q.graph.blocks...``)
    alike and never touches ``proj.graph.weight`` (a ModuleDict entry that kept its name).
    """
    wanted = set(expected)
    out: dict[str, Any] = {}
    for key, value in state.items():
        new = key
        if key not in wanted:
            parts = key.split(".")
            for i, part in enumerate(parts):
                if part in RENAMED_MODULES:
                    candidate = ".".join([*parts[:i], RENAMED_MODULES[part], *parts[i + 1:]])
                    if candidate in wanted:
                        new = candidate
                        break
        out[new] = value
    return out


class CFFN(Encoder):
    """Graph (ST-GCN) + image (AFF) encoder with gated complementary fusion to ``out_dim``.

    Graph settings: ``base_channels``, ``num_layers``, ``channels``, ``strides``,
    ``hidden_dim``, ``temporal_kernel``, ``dropout``, ``edge_importance`` (see
    :class:`STGCNBackbone`).
    Image settings: ``image_channels``, ``image_depth``, ``image_blocks``, ``image_mlp_ratio``,
    ``image_stem_stride``, ``image_sparsity`` (see :class:`AFFBackbone`).
    ``fusion``: ``"gate"`` (default) or ``"concat"``. ``use_graph`` / ``use_image``: ablations.
    """

    def __init__(
        self,
        layout: SkeletonLayout,
        out_dim: int = cast(int, _C.out_dim),  # 128; Optional only as STGCNConfig's field type
        use_graph: bool = _C.use_graph,
        use_image: bool = _C.use_image,
        fusion: str = _C.fusion,
        base_channels: int = _C.base_channels,
        num_layers: int | None = _C.num_layers,
        channels: Sequence[int] | None = _C.channels,
        strides: Sequence[int] | None = _C.strides,
        temporal_kernel: int = _C.temporal_kernel,
        dropout: float = _C.dropout,
        edge_importance: bool = _C.edge_importance,
        image_channels: int = _C.image_channels,
        image_depth: int = _C.image_depth,
        image_blocks: int = _C.image_blocks,
        image_mlp_ratio: float = _C.image_mlp_ratio,
        image_stem_stride: int = _C.image_stem_stride,
        image_sparsity: float = _C.image_sparsity,
        hidden_dim: int | None = _C.hidden_dim,
    ) -> None:
        super().__init__()
        self._settings: dict[str, Any] = {
            "out_dim": out_dim, "use_graph": use_graph, "use_image": use_image, "fusion": fusion,
            "base_channels": base_channels, "num_layers": num_layers,
            "channels": None if channels is None else list(channels),
            "strides": None if strides is None else list(strides),
            "temporal_kernel": temporal_kernel, "dropout": dropout,
            "edge_importance": edge_importance, "image_channels": image_channels,
            "image_depth": image_depth, "image_blocks": image_blocks,
            "image_mlp_ratio": image_mlp_ratio, "image_stem_stride": image_stem_stride,
            "image_sparsity": image_sparsity, "hidden_dim": hidden_dim,
        }
        for name, flag in (("use_graph", use_graph), ("use_image", use_image)):
            check_setting(isinstance(flag, bool), name, f"expected true or false, got {flag!r}")
        check_setting(use_graph or use_image, "use_graph/use_image", "at least one branch must be on")
        check_setting(fusion in FUSIONS, "fusion", f"expected one of {FUSIONS}, got {fusion!r}")
        self.layout = layout
        self.out_dim = as_int(out_dim, "out_dim")
        self.fusion = fusion
        self.branch_names: tuple[str, ...] = tuple(
            name for name, on in (("graph", use_graph), ("image", use_image)) if on
        )
        # Named ``graph_branch``, not ``graph``: ``torch.fx.GraphModule.graph`` is the traced
        # graph, and a submodule of that name breaks the dynamo ONNX exporter. Checkpoints from
        # before the rename load through :func:`upgrade_state_dict`.
        self.graph_branch: STGCNBackbone | None = None
        self.image: AFFBackbone | None = None
        self.proj = nn.ModuleDict()
        if use_graph:
            self.graph_branch = STGCNBackbone(
                layout, base_channels, num_layers, channels, strides, temporal_kernel, dropout,
                edge_importance, hidden_dim,
            )
            self.proj["graph"] = nn.Linear(self.graph_branch.out_channels, self.out_dim)
        if use_image:
            self.image = AFFBackbone(
                layout, image_channels, image_depth, image_blocks, image_mlp_ratio,
                image_stem_stride, image_sparsity,
            )
            self.proj["image"] = nn.Linear(self.image.out_channels, self.out_dim)
        both = len(self.branch_names) == 2
        self.gate: nn.Linear | None = None
        if both and fusion == "gate":
            self.gate = nn.Linear(2 * self.out_dim, self.out_dim)
            nn.init.zeros_(self.gate.weight)  # start as the plain average of the two domains
            nn.init.zeros_(self.gate.bias)
        fc_in = 2 * self.out_dim if both and fusion == "concat" else self.out_dim
        self.fc = nn.Linear(fc_in, self.out_dim)

    def feature_maps(self, x: Tensor) -> list[Tensor]:
        """``[graph_map (N, C_g, T_g, V), image_map (N, C_i, T_i, V)]`` (only the enabled ones)."""
        self.check_input(x)
        maps = []
        if self.graph_branch is not None:
            maps.append(self.graph_branch(x))
        if self.image is not None:
            maps.append(self.image(x))
        return maps

    def branch_features(self, x: Tensor) -> dict[str, Tensor]:
        """Projected per-branch features ``(N, out_dim)`` of a batch ``x`` (N, 3, T, V).

        Keys: the enabled branches (``graph``, ``image``), plus ``gate`` ``(N, out_dim)`` (the
        weight of the graph domain per dimension) when the gated fusion is used.
        """
        return self.map_features(self.feature_maps(x))

    def map_features(self, maps: list[Tensor]) -> dict[str, Tensor]:
        """:meth:`branch_features` from maps of :meth:`feature_maps` (possibly SimAM-dropped)."""
        if len(maps) != len(self.branch_names):
            raise ValueError(
                f"CFFN.fuse expects {len(self.branch_names)} feature maps "
                f"({', '.join(self.branch_names)}), got {len(maps)}"
            )
        feats = {name: self.proj[name](global_pool(m)) for name, m in zip(self.branch_names, maps)}
        if self.gate is not None:
            feats["gate"] = torch.sigmoid(self.gate(torch.cat([feats["graph"], feats["image"]], 1)))
        return feats

    def fuse(self, maps: list[Tensor]) -> Tensor:
        """Pool, project and fuse the branch maps into ``(N, out_dim)``."""
        feats = self.map_features(maps)
        if len(self.branch_names) == 1:
            return self.fc(feats[self.branch_names[0]])
        if self.gate is not None:
            g = feats["gate"]
            return self.fc(g * feats["graph"] + (1.0 - g) * feats["image"])
        return self.fc(torch.cat([feats["graph"], feats["image"]], dim=1))
