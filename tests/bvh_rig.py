"""A small E-Gait-named BVH rig for tests: joint names, parents, offsets and a motion whose
positions are computed by hand in ``tests/data/test_data_bvh.py``."""

from __future__ import annotations

import numpy as np

# A small E-Gait-named rig (BVH names), parents first.
RIG = [
    ("Hips", -1, (0, 0, 0)), ("Spine", 0, (0, 10, 0)), ("Neck", 1, (0, 10, 0)), ("Head", 2, (0, 5, 0)),
    ("LeftArm", 2, (6, 0, 0)), ("LeftForeArm", 4, (10, 0, 0)), ("LeftHand", 5, (8, 0, 0)),
    ("RightArm", 2, (-6, 0, 0)), ("RightForeArm", 7, (-10, 0, 0)), ("RightHand", 8, (-8, 0, 0)),
    ("LeftUpLeg", 0, (4, 0, 0)), ("LeftLeg", 10, (0, -18, 0)), ("LeftFoot", 11, (0, -17, 0)),
    ("RightUpLeg", 0, (-4, 0, 0)), ("RightLeg", 13, (0, -18, 0)), ("RightFoot", 14, (0, -17, 0)),
]
NAMES = [r[0] for r in RIG]
PARENTS = [r[1] for r in RIG]
OFFSETS = np.array([r[2] for r in RIG], dtype=float)


def rig_motion(frames: int) -> np.ndarray:
    """Root translation moves along z; spine rotates 90 deg about z at odd frames; the left
    elbow (LeftForeArm) rotates 90 deg about y."""
    m = np.zeros((frames, 6 + 3 * (len(RIG) - 1)))
    m[:, 0:3] = [1.0, 40.0, 0.0]
    m[:, 2] = np.arange(frames) * 2.0
    m[1::2, 6] = 90.0  # Spine Zrotation (ZYX order: first channel of joint 1)
    m[:, 6 + 3 * 4 + 1] = 90.0  # LeftForeArm Yrotation
    return m
