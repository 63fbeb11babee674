"""SimAM attention (Yang et al., ICML 2021) and AimCLR's energy-based feature drop.

On a feature map ``x`` ``(N, C, T, V)``, per sample and channel, with ``n = T*V - 1``::

    d   = (x - mean_{T,V} x)^2
    e   = d / (4 (sum_{T,V} d / n + lambda)) + 0.5        (inverse of SimAM's minimal energy)
    att = sigmoid(e)

:func:`simam_drop` uses ``att`` to remove the most salient evidence from the strong view's map
(SPEC section 2): first joints, then frames, whose score is at or above ``threshold`` are zeroed
and the rest rescaled so the map keeps its overall magnitude (AimCLR's ``mask * numel / sum``).

Choices where SPEC is silent: the rescaling is per sample (``V / kept joints``,
``T / kept frames``) rather than over the whole batch, so one sample's drop does not change
another sample's scale; if every joint (frame) of a sample is dropped, its map becomes zero
(no division by zero). The frame score is the SimAM attention of the *joint-dropped* map
averaged over C and V. Masks carry no gradient; the kept entries do.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: SimAM's regulariser lambda.
E_LAMBDA = 1e-4


def _check_map(x: Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"SimAM expects a feature map (N, C, T, V), got shape {tuple(x.shape)}")
    if x.shape[2] * x.shape[3] < 2:
        raise ValueError(f"SimAM needs T*V >= 2, got shape {tuple(x.shape)}")


def simam_energy(x: Tensor, e_lambda: float = E_LAMBDA) -> Tensor:
    """SimAM inverse energy ``e`` of each element of ``x`` ``(N, C, T, V)``, same shape."""
    _check_map(x)
    n = x.shape[2] * x.shape[3] - 1
    d = (x - x.mean(dim=(2, 3), keepdim=True)).pow(2)
    return d / (4.0 * (d.sum(dim=(2, 3), keepdim=True) / n + e_lambda)) + 0.5


def simam_attention(x: Tensor, e_lambda: float = E_LAMBDA) -> Tensor:
    """SimAM attention ``sigmoid(e)`` of ``x`` ``(N, C, T, V)``, same shape."""
    return torch.sigmoid(simam_energy(x, e_lambda))


def _drop_rescale(x: Tensor, score: Tensor, threshold: float, shape: tuple[int, ...]) -> Tensor:
    """Zero the entries whose ``score`` ``(N, L)`` is >= ``threshold``; rescale the rest by
    ``L / kept`` per sample. ``shape`` views the ``(N, L)`` mask for broadcasting onto ``x``."""
    keep = (score < threshold).to(x.dtype)
    scale = keep.shape[1] / keep.sum(dim=1, keepdim=True).clamp_min(1.0)
    return x * (keep * scale).view(shape)


def simam_drop(feature_map: Tensor, threshold: float = 0.7, e_lambda: float = E_LAMBDA) -> Tensor:
    """Drop the joints, then the frames, that SimAM finds most salient; rescale the rest.

    Args:
        feature_map: ``(N, C, T, V)``.
        threshold: joints (frames) whose mean attention is ``>= threshold`` are zeroed
            (0.7 in AimCLR; attention values lie in ``(sigmoid(0.5), 1)``, about ``(0.62, 1)``).
        e_lambda: SimAM's lambda.

    Returns:
        A new tensor of the same shape; ``feature_map`` is not modified.
    """
    n, _, t, v = feature_map.shape
    with torch.no_grad():
        joint_score = simam_attention(feature_map, e_lambda).mean(dim=(1, 2))  # (N, V)
    x = _drop_rescale(feature_map, joint_score, threshold, (n, 1, 1, v))
    with torch.no_grad():
        frame_score = simam_attention(x, e_lambda).mean(dim=(1, 3))  # (N, T)
    return _drop_rescale(x, frame_score, threshold, (n, 1, t, 1))


__all__ = ["E_LAMBDA", "simam_attention", "simam_drop", "simam_energy"]
