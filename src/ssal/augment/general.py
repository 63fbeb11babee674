"""The general augmentation set T of SkeletonCLR / AimCLR (SPEC section 2).

* :class:`TemporalCropResize`: pad mirrored frames at both ends (edge frame repeated, NumPy's
  ``"symmetric"`` mode, as SkeletonCLR/AimCLR's ``temperal_crop``), take a random window of the
  original length (AimCLR; a random shorter window is the crop-and-resize variant), resize it to
  a fixed clip length by linear interpolation;
* :class:`TemporalResize`: the deterministic resize used when the crop is switched off;
* :class:`Shear`: a random 3D shear per sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..config.schema import GeneralAugmentConfig as _T  # the defaults
from .base import (
    Augmentation,
    check_batch,
    check_int,
    check_non_negative,
    check_range,
    uniform,
)


def valid_lengths(
    lengths: torch.Tensor | None, n: int, t: int, device: torch.device
) -> torch.Tensor:
    """Per-sample valid frame counts as a long ``(N,)`` tensor in ``[1, T]`` (default: all T)."""
    if lengths is None:
        return torch.full((n,), t, dtype=torch.long, device=device)
    lengths = torch.as_tensor(lengths, device=device).to(torch.long).reshape(-1)
    if lengths.numel() != n:
        raise ValueError(f"lengths has {lengths.numel()} entries for a batch of {n} sequences")
    return lengths.clamp(1, t)


def reflect_index(index: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Map frame indices outside ``[0, L-1]`` back inside by mirror reflection.

    Reflection *with* the edge frame repeated (NumPy's ``mode="symmetric"``, which is what
    SkeletonCLR/AimCLR's ``data[:, :P][:, ::-1]`` padding makes): index ``-1`` maps to ``0``,
    ``-2`` to ``1``, ``L`` to ``L-1``. ``index`` is ``(N, K)`` long, ``lengths`` ``(N,)``.
    """
    length = lengths.view(-1, 1).clamp(min=1)
    r = torch.remainder(index, 2 * length)
    return torch.where(r >= length, 2 * length - 1 - r, r)


def resample(
    x: torch.Tensor, first: torch.Tensor, window: torch.Tensor, lengths: torch.Tensor, clip_len: int
) -> torch.Tensor:
    """Linearly resample a window of each sequence to ``clip_len`` frames.

    Sample ``n``'s window spans the frames ``first[n] .. first[n] + window[n] - 1`` (long
    tensors; indices outside ``[0, lengths[n] - 1]`` are mirror-reflected with the edge frame
    repeated, which is the same as padding NumPy-``symmetric`` frames). The ``clip_len`` output
    frames are spaced evenly over the window, its first and last frames included (the
    ``align_corners=True`` convention, used everywhere in ssal: preprocessing, evaluation), and
    interpolated linearly between neighbouring frames; when ``window == clip_len`` the window is
    copied exactly.
    """
    n, c, _, v = x.shape
    i = torch.arange(clip_len, device=x.device, dtype=torch.float32).view(1, -1)
    span = (window - 1).to(torch.float32).view(-1, 1)
    if clip_len > 1:
        rel = i * (span / (clip_len - 1))
    else:
        rel = (span / 2).expand(n, 1)
    rel_floor = rel.floor()
    frac = (rel - rel_floor).to(x.dtype)
    base = first.view(-1, 1) + rel_floor.to(torch.long)
    i0 = reflect_index(base, lengths)
    i1 = reflect_index(base + 1, lengths)
    # Frames as rows of a (N*T, C*V) table: picking frames is then one index_select of whole
    # rows (contiguous copies), about 3x faster on CPU than a gather with an expanded index.
    t = x.shape[2]
    rows = x.transpose(1, 2).reshape(n * t, c * v)
    offset = (torch.arange(n, device=x.device) * t).view(-1, 1)
    a = rows.index_select(0, (i0 + offset).reshape(-1)).view(n, clip_len, c, v)
    b = rows.index_select(0, (i1 + offset).reshape(-1)).view(n, clip_len, c, v)
    out = a + frac.view(n, clip_len, 1, 1) * (b - a)
    return out.transpose(1, 2).contiguous()


class TemporalCropResize(Augmentation):
    """Random temporal crop of a mirror-padded sequence, resized to ``clip_len`` frames.

    For a sequence of L valid frames (``lengths``, default T): pad ``P = floor(L * pad_ratio)``
    mirrored frames at both ends, the edge frame repeated (at most ``L - 1``), draw a window of
    ``W = round(r * L)`` frames with ``r ~ U(crop_ratio)`` (clamped to ``[1, L + 2P]``) at a
    uniformly random integer start in ``[0, L + 2P - W]``, and resize it to ``clip_len`` frames
    by linear interpolation (:func:`resample`; an exact copy when ``W == clip_len``).

    The default ``crop_ratio = (1, 1)`` is SkeletonCLR/AimCLR's ``temperal_crop``: ``P = L // 6``,
    a window of the original length at a start in ``0 .. 2P``, no resize (with
    ``clip_len == L``; otherwise every view is resized by the same factor ``clip_len / L``, as
    evaluation resizes whole sequences). ``crop_ratio`` below 1 is the crop-and-resize variant
    (later work, e.g. CMD): it changes the apparent walking speed, itself an emotion cue, so it
    is a setting, not the default. Always applied (no probability).

    Args:
        clip_len: output frames (50 as in AimCLR).
        pad_ratio: mirrored frames padded at each end, as a fraction of L (SkeletonCLR: 1/6).
        crop_ratio: ``(min, max)`` window length as a fraction of L.
    """

    uses_lengths = True

    def __init__(
        self, clip_len: int = _T.clip_len, pad_ratio: float = _T.pad_ratio,
        crop_ratio: Sequence[float] = (1.0, 1.0),  # GeneralAugmentConfig.crop_ratio
    ) -> None:
        super().__init__(p=1.0)
        self.clip_len = check_int("clip_len", clip_len, minimum=1)
        self.pad_ratio = check_non_negative("pad_ratio", pad_ratio)
        self.crop_ratio = check_range("crop_ratio", crop_ratio, low=1e-6)

    def forward(
        self, x: torch.Tensor, generator: torch.Generator, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Crop and resize every sample; ``lengths`` are the optional valid frame counts."""
        check_batch(x)
        n, _, t, _ = x.shape
        lens = valid_lengths(lengths, n, t, x.device)
        lf = lens.to(torch.float32)
        # floor(L * ratio), robust to the ratio's rounding (0.1666666667 * 48 = 8.000000002).
        pad = torch.minimum(torch.floor(lf * self.pad_ratio + 1e-6), lf - 1).to(torch.long)
        padded = lens + 2 * pad
        lo, hi = self.crop_ratio
        ratio = uniform((n,), generator, lf, lo, hi)
        window = torch.round(ratio * lf).to(torch.long)
        window = torch.minimum(window.clamp(min=1), padded)
        slack = (padded - window).to(torch.float32)
        u = torch.rand(n, generator=generator, device=x.device, dtype=torch.float32)
        start = torch.minimum(torch.floor(u * (slack + 1)), slack).to(torch.long)
        return resample(x, start - pad, window, lens, self.clip_len)

    def extra_repr(self) -> str:
        return (
            f"clip_len={self.clip_len}, pad_ratio={self.pad_ratio:.4g}, "
            f"crop_ratio={self.crop_ratio}"
        )


class TemporalResize(Augmentation):
    """Deterministic resize of the valid frames of each sequence to ``clip_len`` frames.

    Used in place of :class:`TemporalCropResize` when the temporal crop is switched off, so every
    view still has ``clip_len`` frames. Draws nothing from the generator.
    """

    uses_lengths = True

    def __init__(self, clip_len: int = _T.clip_len) -> None:
        super().__init__(p=1.0)
        self.clip_len = check_int("clip_len", clip_len, minimum=1)

    def forward(
        self, x: torch.Tensor, generator: torch.Generator, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Resize frames ``0 .. lengths[n] - 1`` of each sample to ``clip_len`` frames."""
        check_batch(x)
        n, _, t, _ = x.shape
        lens = valid_lengths(lengths, n, t, x.device)
        return resample(x, torch.zeros_like(lens), lens, lens, self.clip_len)

    def extra_repr(self) -> str:
        return f"clip_len={self.clip_len}"


class Shear(Augmentation):
    """Random 3D shear per sample: ``xyz' = S @ xyz`` with ``S`` unit-diagonal and off-diagonal
    entries ``U(-amplitude, amplitude)`` (SkeletonCLR; amplitude 0.5). ``amplitude=0`` is the
    identity.
    """

    def __init__(self, amplitude: float = _T.shear_amplitude, p: float = 1.0) -> None:
        super().__init__(p)
        self.amplitude = check_non_negative("shear_amplitude", amplitude)

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = x.shape[0]
        a = self.amplitude
        off = uniform((n, 3, 3), generator, x, -a, a)
        eye = torch.eye(3, dtype=x.dtype, device=x.device)
        matrix = torch.where(eye.bool(), eye, off)
        return torch.einsum("nij,njtv->nitv", matrix, x)

    def extra_repr(self) -> str:
        return f"amplitude={self.amplitude}, p={self.p}"
