"""AimCLR's extreme augmentation set (the strong view of the AimCLR baseline, SPEC section 2).

AimCLR's ``Feeder_triple._strong_aug`` (``feeder/ntu_feeder.py``, ``feeder/tools.py``) applies,
after the general set: left/right flip (p 0.5), rotation (always), time flip (p 0.5), Gaussian
noise (p 0.5), Gaussian blur along time (p 0.5) and axis mask (p 0.5), in that order. The
defaults here are that arithmetic; ssal's earlier variants are settings (``Flip(mirror=True)``,
``Rotate(symmetric=True, p=0.5)``, ``GaussianBlur(normalize=True)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..config.schema import ExtremeConfig as _X  # the defaults
from ..skeleton import SkeletonLayout
from .base import (
    Augmentation,
    check_batch,
    check_int,
    check_non_negative,
    check_range,
    normal,
    setting_error,
    uniform,
    zero_where,
)


class Flip(Augmentation):
    """Left/right flip: swap the mirrored joints (AimCLR's ``random_spatial_flip``).

    Joint ``j`` of the output is joint ``layout.mirror_permutation()[j]`` of the input. That is
    AimCLR's flip: a permutation of the joints, coordinates untouched, so the left limbs take
    the right limbs' positions and motion (an implausible body, which is part of what makes the
    set "extreme"). With ``mirror=True`` the coordinate ``lateral_axis`` (default 0, x) is
    negated too, which gives the mirror image of the walker (ssal 0.1's flip; any horizontal
    axis works, the up axis is refused). Flipping twice is the identity either way.
    """

    perm: torch.Tensor  # buffers (register_buffer in __init__)
    sign: torch.Tensor

    def __init__(
        self, layout: SkeletonLayout, p: float = _X.flip_p, lateral_axis: int = _X.flip_axis,
        mirror: bool = _X.flip_mirror,
    ) -> None:
        super().__init__(p)
        if lateral_axis not in (0, 1, 2) or lateral_axis == layout.up_axis:
            raise setting_error(
                f"augmentation setting flip_axis must be a horizontal axis (0, 1 or 2, not the "
                f"up axis {layout.up_axis}), got {lateral_axis!r}"
            )
        self.layout = layout
        self.lateral_axis = int(lateral_axis)
        self.mirror = bool(mirror)
        perm = torch.as_tensor(layout.mirror_permutation(), dtype=torch.long)
        sign = torch.ones(3)
        if self.mirror:
            sign[self.lateral_axis] = -1.0
        self.register_buffer("perm", perm, persistent=False)
        self.register_buffer("sign", sign, persistent=False)

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        check_batch(x, self.layout)
        swapped = x.index_select(3, self.perm.to(x.device))
        if not self.mirror:
            return swapped
        return swapped * self.sign.to(device=x.device, dtype=x.dtype).view(1, 3, 1, 1)

    def extra_repr(self) -> str:
        return f"mirror={self.mirror}, lateral_axis={self.lateral_axis}, p={self.p}"


class TimeFlip(Augmentation):
    """Reverse the frame order (AimCLR's ``random_time_flip``, p 0.5)."""

    def __init__(self, p: float = _X.time_flip_p) -> None:
        super().__init__(p)

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x.flip(2)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def axis_rotation(angle: torch.Tensor, axis: int) -> torch.Tensor:
    """Rotation matrices ``(N, 3, 3)`` by ``angle`` (radians, ``(N,)``) about ``axis``."""
    n = angle.shape[0]
    c, s = torch.cos(angle), torch.sin(angle)
    i, j = [a for a in range(3) if a != axis]
    if axis == 1:  # keep the right-handed sense: about y, z -> x
        i, j = j, i
    r = torch.zeros(n, 3, 3, dtype=angle.dtype, device=angle.device)
    r[:, axis, axis] = 1.0
    r[:, i, i] = c
    r[:, j, j] = c
    r[:, i, j] = -s
    r[:, j, i] = s
    return r


class Rotate(Augmentation):
    """Random 3D rotation about the origin, per sample (AimCLR's ``random_rotate``).

    One main axis is drawn per sample and rotated by an angle ``U(0, max_degrees)``; the other
    two axes by ``U(0, minor_degrees)``; the three rotations are composed in the order x, y,
    z. AimCLR's matrices (``feeder/tools.py``) turn a point by ``-angle`` about each axis in the
    right-handed sense, and so do these; AimCLR applies the rotation to every sample (``p=1``).
    ``symmetric=True`` draws the angles from ``U(-max, max)`` / ``U(-minor, minor)`` instead
    (ssal 0.1's variant, then with ``p=0.5``).
    """

    def __init__(
        self, max_degrees: float = _X.rotate_degrees, minor_degrees: float = _X.rotate_minor_degrees,
        p: float = _X.rotate_p, symmetric: bool = _X.rotate_symmetric,
    ) -> None:
        super().__init__(p)
        self.max_degrees = check_non_negative("rotate_degrees", max_degrees)
        self.minor_degrees = check_non_negative("rotate_minor_degrees", minor_degrees)
        self.symmetric = bool(symmetric)

    def angles(self, n: int, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
        """Rotation angles ``(N, 3)`` in degrees about x, y, z (before the sign convention)."""
        main = torch.randint(0, 3, (n,), generator=generator, device=like.device)
        u = uniform((n, 3), generator, like, -1.0 if self.symmetric else 0.0, 1.0)
        is_main = F.one_hot(main, 3).bool()
        return torch.where(is_main, u * self.max_degrees, u * self.minor_degrees)

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        # AimCLR's R for angle a is the right-handed rotation by -a.
        angles = -self.angles(x.shape[0], generator, x) * (math.pi / 180.0)
        matrix = axis_rotation(angles[:, 0], 0)
        matrix = torch.bmm(axis_rotation(angles[:, 1], 1), matrix)
        matrix = torch.bmm(axis_rotation(angles[:, 2], 2), matrix)
        return torch.einsum("nij,njtv->nitv", matrix, x)

    def extra_repr(self) -> str:
        return (f"max_degrees={self.max_degrees}, minor_degrees={self.minor_degrees}, "
                f"symmetric={self.symmetric}, p={self.p}")


class GaussianNoise(Augmentation):
    """Add i.i.d. ``N(0, std^2)`` noise to every coordinate (AimCLR: std 0.01)."""

    def __init__(self, std: float = _X.noise_std, p: float = _X.noise_p) -> None:
        super().__init__(p)
        self.std = check_non_negative("noise_std", std)

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x + normal(x.shape, generator, x, self.std)

    def extra_repr(self) -> str:
        return f"std={self.std}, p={self.p}"


class GaussianBlur(Augmentation):
    """Gaussian smoothing along time with a per-sample width ``sigma ~ U(sigma)`` (frames).

    A kernel of ``kernel`` taps (odd), ``w_k = exp(-k^2 / (2 sigma^2))``, is applied to every
    joint coordinate as one depthwise ``conv1d`` over the whole batch.

    By default this is AimCLR's ``GaussianBlurConv`` exactly: the kernel is **not** normalised
    and the ends are zero-padded. The taps sum to ``1.0`` at ``sigma = 0.1``, ``2.5`` at
    ``sigma = 1`` and ``5.0`` at ``sigma = 2``, so besides smoothing the blur scales the whole
    skeleton by 1-5x (mean about 3x over ``U(0.1, 2)``), and zero padding pulls the end frames
    towards the origin. We keep that because the AimCLR baseline must be AimCLR's view: its
    published accuracy was measured with this scale jitter, and "extreme" is its point.
    ``normalize=True`` divides the kernel by its sum and pads by repeating the edge frame, so a
    constant signal stays constant (a pure smoothing; ssal 0.1's blur).
    """

    def __init__(
        self, kernel: int = _X.blur_kernel, sigma: Sequence[float] = (0.1, 2.0), p: float = _X.blur_p,
        normalize: bool = _X.blur_normalize,  # sigma: ExtremeConfig.blur_sigma
    ) -> None:
        super().__init__(p)
        self.kernel = check_int("blur_kernel", kernel, minimum=1)
        if self.kernel % 2 == 0:
            raise setting_error(f"augmentation setting blur_kernel must be odd, got {kernel!r}")
        self.sigma = check_range("blur_sigma", sigma, low=1e-6)
        self.normalize = bool(normalize)

    def kernels(self, n: int, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
        """Gaussian kernels ``(N, kernel)`` with random widths (normalised if ``normalize``)."""
        sigma = uniform((n, 1), generator, like, *self.sigma)
        half = self.kernel // 2
        taps = torch.arange(-half, half + 1, device=like.device, dtype=like.dtype).view(1, -1)
        w = torch.exp(-(taps**2) / (2 * sigma**2))
        return w / w.sum(dim=1, keepdim=True) if self.normalize else w

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, c, t, v = x.shape
        w = self.kernels(n, generator, x)
        half = self.kernel // 2
        rows = x.permute(0, 1, 3, 2).reshape(1, n * c * v, t)
        rows = F.pad(rows, (half, half), mode="replicate" if self.normalize else "constant")
        weight = w.repeat_interleave(c * v, dim=0).unsqueeze(1)
        out = F.conv1d(rows, weight, groups=n * c * v)
        return out.view(n, c, v, t).permute(0, 1, 3, 2).contiguous()

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, sigma={self.sigma}, normalize={self.normalize}, p={self.p}"


class AxisMask(Augmentation):
    """Zero one random coordinate axis (x, y or z) of the whole sequence, per sample."""

    def __init__(self, p: float = _X.axis_mask_p) -> None:
        super().__init__(p)

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = x.shape[0]
        axis = torch.randint(0, 3, (n,), generator=generator, device=x.device)
        mask = F.one_hot(axis, 3).bool()
        return zero_where(x, mask.view(n, 3, 1, 1))
