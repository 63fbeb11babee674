"""3D pose-estimator output (VideoPose3D, MotionBERT): Human3.6M-17 joints -> a layout.

Input: a ``.npy`` holding one ``(T, 17, 3)`` sequence, or an ``.npz`` whose arrays are each one
``(T, 17, 3)`` sequence (key = sequence name). Joints are mapped by name onto the target layout
(:func:`ssal.skeleton.map_to_layout`; E-Gait-16 drops the nose joint).

Camera-space outputs are often **y-down** (image convention). A sequence whose head lies below
its feet on average is turned upright by a 180 degree rotation about the x axis (y -> -y and
z -> -z), which keeps left and right (a flip of y alone would mirror the body). The number of
flipped sequences is recorded in ``meta["flipped_y_down"]``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import SsalInputError, display_path
from ..skeleton import EGAIT16, H36M17, SkeletonLayout, map_to_layout
from .dataset import UNLABELLED, GaitDataset
from .egait import resolve_label_map
from .preprocess import PreprocessConfig, check_frame_count, sequences_to_dataset


def is_y_down(seq: np.ndarray, layout: SkeletonLayout) -> bool:
    """True when the head (last trunk joint) is below the feet (last leg joints) on average
    along the layout's up axis."""
    up = layout.up_axis
    head = layout.parts["trunk"][-1]
    feet = [layout.parts["left_leg"][-1], layout.parts["right_leg"][-1]]
    return bool(seq[:, head, up].mean() < seq[:, feet, up].mean())


def make_upright(seq: np.ndarray, layout: SkeletonLayout) -> tuple[np.ndarray, bool]:
    """Rotate a y-down ``(T, V, 3)`` sequence 180 degrees about the axis before the up axis
    (x for y-up); returns the sequence and whether it was turned."""
    if not is_y_down(seq, layout):
        return seq, False
    out = seq.copy()
    up = layout.up_axis
    other = (up + 1) % 3
    out[..., up] *= -1.0
    out[..., other] *= -1.0
    return out, True


def _load_pose_arrays(path: Path, layout: SkeletonLayout, config: PreprocessConfig) -> dict[str, np.ndarray]:
    from .npz import array_bytes, load_arrays
    from .preprocess import check_bytes, dataset_bytes

    where = display_path(path)
    if not path.exists():
        raise SsalInputError(where, "file not found")

    def plan(declared) -> None:
        # each array is one sequence: raw bytes, its float64 copy and mapping, then padding
        raw = sum(array_bytes(s, d) + 2 * 8 * int(np.prod(s)) for s, d in declared.values())
        check_bytes(raw + dataset_bytes(len(declared), config, layout.num_joints), where,
                    f"reading and padding {len(declared)} sequences")

    return load_arrays(path, plan=plan)


def read_pose(
    path: str | os.PathLike[str],
    *,
    source_layout: SkeletonLayout = H36M17,
    layout: SkeletonLayout = EGAIT16,
    label_map: str | Sequence[str] | None = None,
    preprocess: PreprocessConfig | None = None,
    fps: float = 30.0,
    fix_y_down: bool = True,
) -> GaitDataset:
    """Read pose-estimator output (see module doc) as an unlabelled dataset on ``layout``."""
    cfg = preprocess or PreprocessConfig()
    p = Path(path)
    where = display_path(p)
    arrays = _load_pose_arrays(p, layout, cfg)
    if not arrays:
        raise SsalInputError(where, "holds no arrays")
    seqs: list[np.ndarray] = []
    names: list[str] = []
    flipped = 0
    j = source_layout.num_joints
    for name, arr in arrays.items():
        w = f"{where} [{name}]"
        if (arr.ndim != 3 or arr.shape[1:] != (j, 3) or not np.issubdtype(arr.dtype, np.number)
                or np.issubdtype(arr.dtype, np.complexfloating)):
            raise SsalInputError(
                w, f"expected a ({'T'}, {j}, 3) {source_layout.name} pose sequence, got {arr.dtype} {arr.shape}"
            )
        check_frame_count(arr.shape[0], where, name, cfg)
        a = arr.astype(np.float64)
        if not np.isfinite(a).all():
            bad = int(np.flatnonzero(~np.isfinite(a).all(axis=(1, 2)))[0])
            raise SsalInputError(w, f"NaN or inf values (first: frame {bad})")
        mapped = map_to_layout(a, source_layout, layout, where=w)
        if fix_y_down:
            mapped, turned = make_upright(mapped, layout)
            flipped += int(turned)
        seqs.append(mapped)
        names.append(name)
    classes = resolve_label_map(label_map)
    meta = {"format": "pose", "source_layout": source_layout.name, "flipped_y_down": flipped}
    return sequences_to_dataset(
        seqs, [UNLABELLED] * len(seqs), names, classes, layout=layout, fps=fps, config=cfg, source=where, meta=meta
    )
