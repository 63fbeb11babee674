"""SimAM attention (Yang et al., ICML 2021) and AimCLR's energy-based feature drop.

On a feature map ``x`` ``(N, C, T, V)``, per sample and channel, with ``n = T*V - 1``::

    d   = (x - mean_{T,V} x)^2
    e   = d / (4 (sum_{T,V} d / n + lambda)) + 0.5        (inverse of SimAM's minimal energy)
    att = sigmoid(e)

:func:`simam_drop` uses ``att`` to remove the most salient evidence from the strong view's map
(SPEC section 2). The default ``mode="aimclr"`` is the arithmetic of AimCLR's ``Simam_Drop``
(``net/att_drop.py``), which SSAL adopts:

* ``att`` is computed **once**, on the un-dropped map;
* joint step: the score of joint ``v`` is ``att`` averaged over C and T; joints with a score
  ``>= threshold`` are zeroed in every channel and frame, and the map is multiplied by
  ``mask.numel() / mask.sum()`` of the ``(N, V)`` joint mask, i.e. counted over the whole batch;
* temporal step: **element-wise** on the ``(N, C*V, T)`` view, every entry whose own ``att`` is
  ``>= threshold`` is zeroed, and the map is rescaled by the ``(N, C*V, T)`` mask's
  ``numel / sum``, again over the whole batch.

With threshold 0.7 an entry is dropped where ``|x - mean| >= ~1.18 std`` of its channel, which
is on the order of 10-15% of a typical map. Where every entry would be dropped, the map becomes
zero (AimCLR divides by zero there). ``mode="per_frame"`` is an earlier ssal variant, kept as a
named setting: the temporal step zeroes whole frames whose attention, recomputed on the
joint-dropped map and averaged over C and V, reaches the threshold, and both steps rescale per
sample; it drops far less (under 1% of a CFFN map). Masks carry no gradient; kept entries do.
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


#: Drop modes of :func:`simam_drop`.
from ..config.schema import DROP_MODES  # noqa: E402 - the choices of model.drop_mode


def _batch_drop(x: Tensor, score: Tensor, threshold: float, shape: tuple[int, ...]) -> Tensor:
    """Zero the entries of ``x`` whose ``score`` (viewed as ``shape``) is ``>= threshold`` and
    rescale by ``numel / kept`` of the whole mask (AimCLR's ``mask * mask.numel() / mask.sum()``)."""
    keep = (score < threshold).to(x.dtype)
    scale = keep.numel() / keep.sum().clamp_min(1.0)
    return x * (keep * scale).reshape(shape)


def _sample_drop(x: Tensor, score: Tensor, threshold: float, shape: tuple[int, ...]) -> Tensor:
    """Zero the entries whose ``score`` ``(N, L)`` is >= ``threshold``; rescale the rest by
    ``L / kept`` per sample. ``shape`` views the ``(N, L)`` mask for broadcasting onto ``x``."""
    keep = (score < threshold).to(x.dtype)
    scale = keep.shape[1] / keep.sum(dim=1, keepdim=True).clamp_min(1.0)
    return x * (keep * scale).view(shape)


def simam_drop(
    feature_map: Tensor, threshold: float = 0.7, e_lambda: float = E_LAMBDA, mode: str = "aimclr"
) -> Tensor:
    """Drop the joints, then the entries (or frames), that SimAM finds most salient.

    Args:
        feature_map: ``(N, C, T, V)``.
        threshold: scores ``>= threshold`` are zeroed (0.7 in AimCLR; attention values lie in
            ``(sigmoid(0.5), 1)``, about ``(0.62, 1)``).
        e_lambda: SimAM's lambda.
        mode: ``"aimclr"`` (AimCLR's arithmetic, the default) or ``"per_frame"`` (see the
            module docstring).

    Returns:
        A new tensor of the same shape; ``feature_map`` is not modified.
    """
    if mode not in DROP_MODES:
        raise ValueError(f"SimAM drop mode must be one of {DROP_MODES}, got {mode!r}")
    n, c, t, v = feature_map.shape
    with torch.no_grad():
        att = simam_attention(feature_map, e_lambda)
        joint_score = att.mean(dim=(1, 2))  # (N, V)
    if mode == "aimclr":
        x = _batch_drop(feature_map, joint_score, threshold, (n, 1, 1, v))
        # att viewed as (N, C*V, T) is the same entries as att itself: mask element-wise.
        return _batch_drop(x, att, threshold, (n, c, t, v))
    x = _sample_drop(feature_map, joint_score, threshold, (n, 1, 1, v))
    with torch.no_grad():
        frame_score = simam_attention(x, e_lambda).mean(dim=(1, 3))  # (N, T)
    return _sample_drop(x, frame_score, threshold, (n, 1, t, 1))


__all__ = ["DROP_MODES", "E_LAMBDA", "simam_attention", "simam_drop", "simam_energy"]
