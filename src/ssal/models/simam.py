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

The ``aimclr`` mode works through chunks of samples (:data:`DROP_CHUNK_FLOATS`): the attention
is never a full-size tensor, the entry mask is kept as bytes, and the output is one full-size
tensor whose backward pass keeps only that byte mask (:class:`_MaskedScale`). The arithmetic is
the same as written above, in the same order (the result equals the plain form bitwise). On
AimCLR's last map (128, 256, 19, 16) on the 2-core Xeon of benchmarks/RESULTS.md (section 0)
the whole-tensor form took 110 ms forward and made about 8 full-size temporaries; this form
takes 31 ms.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: SimAM's regulariser lambda.
E_LAMBDA = 1e-4
#: Floats per chunk of samples where the ``aimclr`` drop computes attention and applies masks
#: (4 MiB: a chunk's temporaries stay in cache and below the ``bounded`` allocator's mmap size).
DROP_CHUNK_FLOATS = 1 << 20


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


def _sample_chunks(x: Tensor) -> list[tuple[int, int]]:
    """``[(n0, n1), ...]``: ranges of samples of ``x`` with about :data:`DROP_CHUNK_FLOATS` entries."""
    n = x.shape[0]
    step = max(1, DROP_CHUNK_FLOATS // max(1, x[0].numel()))
    return [(n0, min(n, n0 + step)) for n0 in range(0, n, step)]


def _batch_scale(keep: Tensor, dtype: torch.dtype) -> Tensor:
    """AimCLR's ``mask.numel() / mask.sum()`` of a bool mask over the whole batch (0-d, ``dtype``;
    ``count_nonzero``: a bool ``sum`` widens every entry first, 20x slower)."""
    return keep.numel() / torch.count_nonzero(keep).to(dtype).clamp_min(1.0)


def _attention_no_grad(x: Tensor, e_lambda: float) -> Tensor:
    """:func:`simam_attention` with the same operations in the same order, in place on one
    temporary (no autograd)."""
    n = x.shape[2] * x.shape[3] - 1
    d = (x - x.mean(dim=(2, 3), keepdim=True)).pow_(2)
    return d.div_(d.sum(dim=(2, 3), keepdim=True).div_(n).add_(e_lambda).mul_(4.0)).add_(0.5).sigmoid_()


def _scaled_entries(dst: Tensor, keep: Tensor, scale: Tensor) -> Tensor:
    """``dst *= keep * scale`` (``keep`` bool, the float mask made only at ``dst``'s size)."""
    return dst.mul_(keep.to(dst.dtype).mul_(scale))


class _MaskedScale(torch.autograd.Function):
    """``(x * joint) * (keep * scale)`` chunk by chunk; the backward pass keeps ``keep`` as bytes."""

    @staticmethod
    def forward(ctx, x: Tensor, joint: Tensor, keep: Tensor, scale: Tensor) -> Tensor:
        out = torch.empty_like(x)
        for n0, n1 in _sample_chunks(x):
            _scaled_entries(torch.mul(x[n0:n1], joint[n0:n1], out=out[n0:n1]), keep[n0:n1], scale)
        ctx.save_for_backward(joint, keep, scale)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        joint, keep, scale = ctx.saved_tensors
        grad_x = torch.empty_like(grad)
        for n0, n1 in _sample_chunks(grad):
            # the plain form's order: (grad * (keep * scale)) * joint
            chunk = _scaled_entries(grad_x[n0:n1].copy_(grad[n0:n1]), keep[n0:n1], scale)
            chunk.mul_(joint[n0:n1])
        return grad_x, None, None, None


def _aimclr_drop(x: Tensor, threshold: float, e_lambda: float) -> Tensor:
    """The ``aimclr`` mode (module docstring), chunked."""
    _check_map(x)
    n, v = x.shape[0], x.shape[3]
    with torch.no_grad():
        joint_score = x.new_empty(n, v)
        keep = torch.empty_like(x, dtype=torch.bool)
        for n0, n1 in _sample_chunks(x):
            att = _attention_no_grad(x[n0:n1], e_lambda)
            joint_score[n0:n1] = att.mean(dim=(1, 2))
            torch.lt(att, threshold, out=keep[n0:n1])
        keep_joint = joint_score < threshold
        joint = (keep_joint.to(x.dtype) * _batch_scale(keep_joint, x.dtype)).view(n, 1, 1, v)
        scale = _batch_scale(keep, x.dtype)
    return _MaskedScale.apply(x, joint, keep, scale)


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
    if mode == "aimclr":
        # att viewed as AimCLR's (N, C*V, T) is the same entries as att itself: the entry step
        # masks element-wise.
        return _aimclr_drop(feature_map, threshold, e_lambda)
    n, c, t, v = feature_map.shape
    with torch.no_grad():
        joint_score = simam_attention(feature_map, e_lambda).mean(dim=(1, 2))  # (N, V)
    x = _sample_drop(feature_map, joint_score, threshold, (n, 1, 1, v))
    with torch.no_grad():
        frame_score = simam_attention(x, e_lambda).mean(dim=(1, 3))  # (N, T)
    return _sample_drop(x, frame_score, threshold, (n, 1, t, 1))


__all__ = ["DROP_CHUNK_FLOATS", "DROP_MODES", "E_LAMBDA", "simam_attention", "simam_drop", "simam_energy"]
