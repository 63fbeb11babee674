"""SSAL's selective strong augmentation (SSA) operations (SPEC section 2).

SSA = the general set T followed by

* :class:`UpperBodyJitter`: random offsets on the upper-limb joints (optionally the trunk above
  the hips), the lower body left bit-identical;
* :class:`PartMask`: one or two of the five body parts zeroed (random spatial mask);
* :class:`TemporalMask`: several whole frames zeroed (random temporal mask).

The magnitudes are not given by the paper (*inferred*); the defaults below are chosen for
metre-scale skeletons and are settings (see :data:`ssal.augment.DEFAULT_SSA`).
"""

from __future__ import annotations

import torch

from ..config.schema import SSAConfig as _SSA  # the defaults
from ..skeleton import SkeletonLayout
from .base import (
    Augmentation,
    check_batch,
    check_int,
    check_non_negative,
    normal,
    random_subset_mask,
    setting_error,
    zero_where,
)


def jitter_joints(layout: SkeletonLayout, include_trunk: bool = False) -> tuple[int, ...]:
    """Joints moved by :class:`UpperBodyJitter`: ``layout.upper_body``, plus with
    ``include_trunk`` the trunk joints other than the centre (root) joint."""
    joints = set(layout.upper_body)
    if include_trunk:
        joints |= set(layout.parts["trunk"]) - {layout.center}
    return tuple(sorted(joints))


class UpperBodyJitter(Augmentation):
    """Move the upper-limb joints to irregular positions; the lower body stays untouched.

    Each selected joint of each sample gets its own displacement ``N(0, offset_std^2)`` per
    coordinate, constant over the sequence (a distorted posture that keeps the arm-swing
    dynamics), plus independent per-frame jitter ``N(0, frame_std^2)``. Joints not selected
    (legs, hips, root) are copied bit-identically.

    Args:
        layout: the skeleton layout (joint sets from :func:`jitter_joints`).
        offset_std: per-sequence offset, metres (default 0.1 m: about a third of a forearm).
        frame_std: per-frame jitter, metres (default 0.01 m; 0 switches it off).
        include_trunk: also move the trunk above the hips (spine, neck, head).
        p: probability of applying to each sample.
    """

    joints: torch.Tensor  # buffer (register_buffer in __init__)

    def __init__(
        self, layout: SkeletonLayout, offset_std: float = _SSA.jitter_offset_std,
        frame_std: float = _SSA.jitter_frame_std, include_trunk: bool = _SSA.jitter_trunk, p: float = _SSA.jitter_p,
    ) -> None:
        super().__init__(p)
        self.layout = layout
        self.offset_std = check_non_negative("jitter_offset_std", offset_std)
        self.frame_std = check_non_negative("jitter_frame_std", frame_std)
        self.include_trunk = bool(include_trunk)
        joints = jitter_joints(layout, self.include_trunk)
        self.register_buffer("joints", torch.tensor(joints, dtype=torch.long), persistent=False)

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        check_batch(x, self.layout)
        n, c, t, _ = x.shape
        idx = self.joints.to(x.device)
        j = idx.numel()
        offset = normal((n, c, 1, j), generator, x, self.offset_std)
        if self.frame_std > 0:
            offset = offset + normal((n, c, t, j), generator, x, self.frame_std)
        moved = x.index_select(3, idx) + offset
        return x.index_copy(3, idx, moved)

    def extra_repr(self) -> str:
        return (
            f"offset_std={self.offset_std}, frame_std={self.frame_std}, "
            f"include_trunk={self.include_trunk}, p={self.p}"
        )


class PartMask(Augmentation):
    """Random spatial mask: zero ``k ~ U{min_parts..max_parts}`` distinct body parts per sample.

    Parts are ``layout.parts`` (trunk, left arm, right arm, left leg, right leg); every joint of
    a chosen part is set to zero in all frames and coordinates, the other joints are copied
    bit-identically.
    """

    membership: torch.Tensor  # buffer (register_buffer in __init__)

    def __init__(
        self, layout: SkeletonLayout, min_parts: int = _SSA.spatial_mask_min_parts,
        max_parts: int = _SSA.spatial_mask_max_parts, p: float = _SSA.spatial_mask_p,
    ) -> None:
        super().__init__(p)
        num_parts = len(layout.parts)
        min_parts = check_int("spatial_mask_min_parts", min_parts)
        max_parts = check_int("spatial_mask_max_parts", max_parts)
        if not min_parts <= max_parts <= num_parts:
            raise setting_error(
                f"augmentation settings spatial_mask_min_parts/max_parts must satisfy "
                f"0 <= min <= max <= {num_parts}, got ({min_parts}, {max_parts})"
            )
        self.layout = layout
        self.min_parts = int(min_parts)
        self.max_parts = int(max_parts)
        membership = torch.zeros(num_parts, layout.num_joints)
        for i, joints in enumerate(layout.parts.values()):
            membership[i, list(joints)] = 1.0
        self.register_buffer("membership", membership, persistent=False)

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        check_batch(x, self.layout)
        n = x.shape[0]
        membership = self.membership.to(x.device)
        count = torch.randint(
            self.min_parts, self.max_parts + 1, (n,), generator=generator, device=x.device
        )
        chosen = random_subset_mask((n, membership.shape[0]), count, generator, x.device)
        joint_mask = (chosen.to(membership.dtype) @ membership) > 0
        return zero_where(x, joint_mask.view(n, 1, 1, -1))

    def extra_repr(self) -> str:
        return f"min_parts={self.min_parts}, max_parts={self.max_parts}, p={self.p}"


class TemporalMask(Augmentation):
    """Random temporal mask: zero ``k`` distinct whole frames per sample (all joints, all xyz).

    ``k = num_frames`` if given, else ``round(ratio * T)`` (default ratio 0.15: 8 of 50 frames),
    at most T. Frames are drawn uniformly without replacement, independently per sample.
    """

    def __init__(self, ratio: float = _SSA.temporal_mask_ratio, num_frames: int | None = _SSA.temporal_mask_frames,
                 p: float = _SSA.temporal_mask_p) -> None:
        super().__init__(p)
        self.ratio = check_non_negative("temporal_mask_ratio", ratio)
        if self.ratio > 1:
            raise setting_error(
                f"augmentation setting temporal_mask_ratio must be <= 1, got {ratio}"
            )
        self.num_frames = (
            None if num_frames is None else check_int("temporal_mask_frames", num_frames)
        )

    def frames_to_mask(self, t: int) -> int:
        """Number of frames zeroed in a sequence of ``t`` frames."""
        k = self.num_frames if self.num_frames is not None else round(self.ratio * t)
        return min(int(k), t)

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, t, _ = x.shape
        k = self.frames_to_mask(t)
        if k == 0:
            return x
        count = torch.full((n,), k, dtype=torch.long, device=x.device)
        frames = random_subset_mask((n, t), count, generator, x.device)
        return zero_where(x, frames.view(n, 1, t, 1))

    def extra_repr(self) -> str:
        return f"ratio={self.ratio}, num_frames={self.num_frames}, p={self.p}"
