"""The encoder interface every model implements, and small pieces the encoders share.

An :class:`Encoder` maps a batch ``(N, C=3, T, V)`` to a feature vector ``(N, out_dim)`` in
two steps so that a learner can act on the feature maps in between (SimAM drop on the strong
view, SPEC section 2)::

    maps = encoder.feature_maps(x)          # list of (N, C_i, T_i, V_i)
    feature = encoder.fuse(maps)            # (N, out_dim)
    # forward(x) == fuse(feature_maps(x))

``fuse`` must accept maps that were modified (joints/frames zeroed) and must not modify its
input in place: a learner may fuse the same maps twice.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import SsalInputError
from ..skeleton import SkeletonLayout, check_batch

#: Number of coordinates per joint (xyz) in the tensor contract.
IN_CHANNELS = 3


class Encoder(nn.Module, abc.ABC):
    """Abstract skeleton-sequence encoder: ``(N, 3, T, V) -> (N, out_dim)``.

    Attributes:
        out_dim: size of the feature vector returned by :meth:`forward` / :meth:`fuse`.
        layout: the skeleton layout of the V axis the encoder was built for.
    """

    out_dim: int
    layout: SkeletonLayout

    @abc.abstractmethod
    def feature_maps(self, x: Tensor) -> list[Tensor]:
        """The last feature map(s) of ``x`` ``(N, 3, T, V)``, each ``(N, C_i, T_i, V_i)``."""

    @abc.abstractmethod
    def fuse(self, maps: list[Tensor]) -> Tensor:
        """Pool (and fuse) the maps of :meth:`feature_maps` into ``(N, out_dim)``."""

    def forward(self, x: Tensor) -> Tensor:
        """``fuse(feature_maps(x))``: the ``(N, out_dim)`` feature of a batch ``(N, 3, T, V)``."""
        return self.fuse(self.feature_maps(x))

    def settings(self) -> dict[str, Any]:
        """The constructor settings (without the layout), enough to rebuild the encoder."""
        return dict(getattr(self, "_settings", {}))

    def check_input(self, x: Tensor) -> None:
        """Raise :class:`SsalInputError` unless ``x`` is ``(N, 3, T, V)`` for this layout."""
        check_batch(x, self.layout)


class JointBatchNorm(nn.Module):
    """Input normalisation of ST-GCN (``data_bn``): one BatchNorm statistic per (channel, joint).

    Statistics are taken over the batch and the T axis. The input ``(N, C, T, V)`` is small
    (C = 3), so the transpose to ``(N, C*V, T)`` costs little.
    """

    def __init__(self, channels: int, num_joints: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(channels * num_joints)

    def forward(self, x: Tensor) -> Tensor:
        n, c, t, v = x.shape
        y = self.bn(x.transpose(2, 3).reshape(n, c * v, t))
        return y.view(n, c, v, t).transpose(2, 3).contiguous()


class BackboneFeatures(nn.Module):
    """The evaluation view of an encoder: its last feature maps, pooled and concatenated.

    Skeleton SSL papers evaluate the backbone's pooled feature, not the output of the layer
    the contrastive objective sits on (AimCLR and CrosSCLR replace the encoder's ``fc`` by the
    classifier). The wrapped encoder's ``fc`` / fusion layers are kept, unused, so its weights
    load and save unchanged. ``out_dim`` is the summed channel count of the maps.
    """

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder
        was_training = encoder.training
        encoder.eval()
        v = encoder.layout.num_joints
        probe = next(encoder.parameters())
        with torch.no_grad():
            maps = encoder.feature_maps(torch.zeros(1, 3, 16, v, dtype=probe.dtype, device=probe.device))
        encoder.train(was_training)
        self.out_dim = int(sum(m.shape[1] for m in maps))
        self.layout = encoder.layout

    def forward(self, x: Tensor) -> Tensor:
        """``(N, 3, T, V) -> (N, out_dim)``: each map averaged over T and V, concatenated."""
        return torch.cat([global_pool(m) for m in self.encoder.feature_maps(x)], dim=1)


def global_pool(x: Tensor) -> Tensor:
    """Average over the T and V axes: ``(N, C, T, V) -> (N, C)``."""
    return x.mean(dim=(2, 3))


def check_setting(ok: bool, name: str, problem: str) -> None:
    """Raise ``SsalInputError(None, 'encoder setting <name>: <problem>')`` unless ``ok``."""
    if not ok:
        raise SsalInputError(None, f"encoder setting {name}: {problem}")


def as_int(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an int ``>= minimum``, else :class:`SsalInputError`."""
    ok = isinstance(value, (int,)) and not isinstance(value, bool) and value >= minimum
    check_setting(ok, name, f"expected an integer >= {minimum}, got {value!r}")
    return int(value)


def as_float(value: Any, name: str, low: float, high: float) -> float:
    """``value`` as a float in ``[low, high)``, else :class:`SsalInputError`."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value < high
    check_setting(ok, name, f"expected a number in [{low}, {high}), got {value!r}")
    return float(value)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def resize_time(x: torch.Tensor, length: int | None) -> torch.Tensor:
    """Resample ``(N, C, T, V)`` to ``length`` frames by linear interpolation in time.

    Uses the convention of the pretraining crop and of preprocessing (``align_corners=True``:
    the first and last frames are kept, output frame ``i`` sits at ``i (T-1) / (length-1)``);
    joints are untouched. ``length=None`` or ``length == T`` returns ``x`` itself.
    """
    if length is None or x.shape[2] == length:
        return x
    if length < 1:
        raise ValueError(f"clip length must be positive, got {length}")
    n, c, t, v = x.shape
    flat = x.permute(0, 1, 3, 2).reshape(n, c * v, t)
    if length == 1 or t == 1:  # one output frame: the first (linspace(0, T-1, 1) = [0])
        return x[:, :, :1].expand(n, c, length, v).contiguous()
    out = F.interpolate(flat, size=length, mode="linear", align_corners=True)
    return out.reshape(n, c, v, length).permute(0, 1, 3, 2).contiguous()


def iter_batches(
    x: np.ndarray | torch.Tensor,
    batch_size: int,
    device: torch.device | str = "cpu",
    clip_len: int | None = None,
) -> Iterator[torch.Tensor]:
    """Consecutive float32 batches of ``x`` on ``device``, in order, none dropped."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    for start in range(0, x.shape[0], batch_size):
        chunk = x[start : start + batch_size]
        if isinstance(chunk, np.ndarray):
            chunk = torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32))
        yield resize_time(chunk.to(device=device, dtype=torch.float32), clip_len)


__all__ = [
    "iter_batches",
    "resize_time",
    "IN_CHANNELS",
    "Encoder",
    "JointBatchNorm",
    "as_float",
    "as_int",
    "check_batch",
    "check_setting",
    "count_parameters",
    "global_pool",
]
