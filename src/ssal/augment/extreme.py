"""AimCLR's extreme augmentation set (the strong view of the AimCLR baseline, SPEC section 2):
left/right flip, rotation, Gaussian noise, Gaussian blur along time and axis mask. AimCLR
applies each with probability 0.5 after the general set.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from ..skeleton import SkeletonLayout
from .base import (
    zero_where,
    Augmentation, check_batch, check_int, check_non_negative, check_range, normal, setting_error,
    uniform,
)


class Flip(Augmentation):
    """Left/right mirror: swap mirrored joints and negate the lateral coordinate.

    Joint ``j`` of the output is joint ``layout.mirror_permutation()[j]`` of the input, with
    coordinate ``lateral_axis`` (default 0, x) negated. Swapping left and right labels alone
    (AimCLR's flip) gives a skeleton whose left side moves like the old right side but sits on
    the old right-hand side of the body, an impossible pose; the reflection puts it back, so the
    result is the mirror image of the walker. Any horizontal axis gives a valid mirror image (the
    walking path is mirrored too); the up axis is refused. Flipping twice is the identity.
    """

    def __init__(self, layout: SkeletonLayout, p: float = 0.5, lateral_axis: int = 0) -> None:
        super().__init__(p)
        if lateral_axis not in (0, 1, 2) or lateral_axis == layout.up_axis:
            raise setting_error(
                f"augmentation setting flip_axis must be a horizontal axis (0, 1 or 2, not the "
                f"up axis {layout.up_axis}), got {lateral_axis!r}"
            )
        self.layout = layout
        self.lateral_axis = int(lateral_axis)
        perm = torch.as_tensor(layout.mirror_permutation(), dtype=torch.long)
        sign = torch.ones(3)
        sign[self.lateral_axis] = -1.0
        self.register_buffer("perm", perm, persistent=False)
        self.register_buffer("sign", sign, persistent=False)

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        check_batch(x, self.layout)
        sign = self.sign.to(device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return x.index_select(3, self.perm.to(x.device)) * sign

    def extra_repr(self) -> str:
        return f"lateral_axis={self.lateral_axis}, p={self.p}"


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

    One main axis is drawn per sample and rotated by ``U(-max_degrees, max_degrees)``; the other
    two axes by ``U(-minor_degrees, minor_degrees)``. The three rotations are composed in the
    order x, y, z.
    """

    def __init__(
        self, max_degrees: float = 30.0, minor_degrees: float = 1.0, p: float = 0.5
    ) -> None:
        super().__init__(p)
        self.max_degrees = check_non_negative("rotate_degrees", max_degrees)
        self.minor_degrees = check_non_negative("rotate_minor_degrees", minor_degrees)

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = x.shape[0]
        main = torch.randint(0, 3, (n,), generator=generator, device=x.device)
        u = uniform((n, 3), generator, x, -1.0, 1.0)
        is_main = F.one_hot(main, 3).bool()
        degrees = torch.where(is_main, u * self.max_degrees, u * self.minor_degrees)
        angles = degrees * (math.pi / 180.0)
        matrix = axis_rotation(angles[:, 0], 0)
        matrix = torch.bmm(axis_rotation(angles[:, 1], 1), matrix)
        matrix = torch.bmm(axis_rotation(angles[:, 2], 2), matrix)
        return torch.einsum("nij,njtv->nitv", matrix, x)

    def extra_repr(self) -> str:
        return f"max_degrees={self.max_degrees}, minor_degrees={self.minor_degrees}, p={self.p}"


class GaussianNoise(Augmentation):
    """Add i.i.d. ``N(0, std^2)`` noise to every coordinate (AimCLR: std 0.01)."""

    def __init__(self, std: float = 0.01, p: float = 0.5) -> None:
        super().__init__(p)
        self.std = check_non_negative("noise_std", std)

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x + normal(x.shape, generator, x, self.std)

    def extra_repr(self) -> str:
        return f"std={self.std}, p={self.p}"


class GaussianBlur(Augmentation):
    """Gaussian smoothing along time with a per-sample width ``sigma ~ U(sigma)`` (frames).

    A normalised kernel of ``kernel`` taps (odd) is applied to every joint coordinate as one
    depthwise ``conv1d`` over the whole batch. Ends are padded by repeating the edge frame (AimCLR
    pads zeros, which drags the first and last frames towards the origin), so a constant signal
    stays constant.
    """

    def __init__(
        self, kernel: int = 15, sigma: Sequence[float] = (0.1, 2.0), p: float = 0.5
    ) -> None:
        super().__init__(p)
        self.kernel = check_int("blur_kernel", kernel, minimum=1)
        if self.kernel % 2 == 0:
            raise setting_error(f"augmentation setting blur_kernel must be odd, got {kernel!r}")
        self.sigma = check_range("blur_sigma", sigma, low=1e-6)

    def kernels(self, n: int, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
        """Normalised Gaussian kernels ``(N, kernel)`` with random widths."""
        sigma = uniform((n, 1), generator, like, *self.sigma)
        half = self.kernel // 2
        taps = torch.arange(-half, half + 1, device=like.device, dtype=like.dtype).view(1, -1)
        w = torch.exp(-(taps**2) / (2 * sigma**2))
        return w / w.sum(dim=1, keepdim=True)

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, c, t, v = x.shape
        w = self.kernels(n, generator, x)
        half = self.kernel // 2
        rows = x.permute(0, 1, 3, 2).reshape(1, n * c * v, t)
        rows = F.pad(rows, (half, half), mode="replicate")
        weight = w.repeat_interleave(c * v, dim=0).unsqueeze(1)
        out = F.conv1d(rows, weight, groups=n * c * v)
        return out.view(n, c, v, t).permute(0, 1, 3, 2).contiguous()

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, sigma={self.sigma}, p={self.p}"


class AxisMask(Augmentation):
    """Zero one random coordinate axis (x, y or z) of the whole sequence, per sample."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p)

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = x.shape[0]
        axis = torch.randint(0, 3, (n,), generator=generator, device=x.device)
        mask = F.one_hot(axis, 3).bool()
        return zero_where(x, mask.view(n, 3, 1, 1))
