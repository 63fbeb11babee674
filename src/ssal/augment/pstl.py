"""PSTL's two masked views (Zhou et al., AAAI 2023; reference: YujieOuO/PSTL ``model.py``).

* :func:`motion_attention_temporal_mask` (MATM): keep the ``T - mask_frame`` frames that move
  least (squared frame-to-frame motion, averaged over coordinates and joints: the reference's
  ``topk`` of ``-motion**2``), in time order, then drop ``mask_frame`` of those at random:
  ``T - 2 * mask_frame`` frames remain, per batch the same frames for every sequence of one
  row. The reference draws the random frames with Python's ``random`` for the whole batch;
  here a ``torch.Generator`` draws them, also once per batch.
* :func:`central_spatial_mask_joints` (CSM): ``mask_joint`` joints to hide, drawn as the
  reference's ``random.sample`` over a list in which every joint appears as often as its
  degree in the skeleton graph (so central joints are hidden more often; a joint may be drawn
  twice, and then fewer distinct joints are hidden). The reference's degree list is NTU's; here
  the degrees come from the layout's edges.

Batches are ``(N, C, T, V)`` as everywhere in ssal (the reference's person axis ``M`` is
absent).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..skeleton import SkeletonLayout


def motion_attention_temporal_mask(x: Tensor, mask_frame: int, generator: torch.Generator | None = None) -> Tensor:
    """``(N, C, T, V)`` -> ``(N, C, T - 2 mask_frame, V)`` (module docstring)."""
    n, c, t, v = x.shape
    remain = t - mask_frame
    if mask_frame < 0 or remain - mask_frame < 1:
        raise ValueError(f"mask_frame must leave at least one of {t} frames after two masks, got {mask_frame}")
    motion = torch.zeros_like(x)
    motion[:, :, :-1] = x[:, :, 1:] - x[:, :, :-1]
    attention = (-(motion ** 2)).mean(dim=(1, 3))                    # (N, T): least motion is largest
    kept = torch.topk(attention, remain, dim=1).indices.sort(dim=1).values  # (N, remain), time order
    resampled = x.gather(2, kept[:, None, :, None].expand(n, c, remain, v))
    chosen = torch.randperm(remain, generator=generator, device=generator.device if generator else "cpu")
    chosen = chosen[: remain - mask_frame].sort().values.to(x.device)
    return resampled[:, :, chosen]


def joint_degrees(layout: SkeletonLayout) -> list[int]:
    """The degree of every joint in the layout's graph (its number of bones)."""
    degree = [0] * layout.num_joints
    for a, b in layout.edges:
        degree[a] += 1
        degree[b] += 1
    return degree


def central_spatial_mask_joints(layout: SkeletonLayout, mask_joint: int,
                                generator: torch.Generator | None = None) -> list[int]:
    """The joints to hide (sorted, distinct), drawn by degree (module docstring)."""
    pool = [j for j, d in enumerate(joint_degrees(layout)) for _ in range(d)]
    if not 0 <= mask_joint <= len(pool):
        raise ValueError(f"mask_joint must be from 0 to {len(pool)}, got {mask_joint}")
    device = generator.device if generator is not None else "cpu"
    order = torch.randperm(len(pool), generator=generator, device=device)[:mask_joint].tolist()
    return sorted({pool[i] for i in order})


__all__ = ["central_spatial_mask_joints", "joint_degrees", "motion_attention_temporal_mask"]
