"""One entry point for every dataset source: :func:`load_dataset` and :func:`save_dataset`.

Dispatch of ``source``:

==========================  ==========================================================
``"builtin"``               the built-in synthetic corpus (``ssal.data.synthetic``)
``*.h5`` / ``*.hdf5``       E-Gait HDF5; labels from ``labels=``, else the STEP-named file
                            beside it (``features*.h5`` -> ``labels*.h5``), else key suffixes
directory ``*.ssal``        the canonical format (memory-mapped)
directory of ``*.bvh``      BVH folder, labels from ``labels=`` or ``labels.csv`` inside
``*.bvh``                   one unlabelled BVH sequence
``*.npz`` with ``x``        NumPy dataset (``order=`` when the axis order is ambiguous)
``*.npz`` without ``x``     pose-estimator output, one ``(T, 17, 3)`` array per sequence
``*.npy``                   one pose-estimator sequence ``(T, 17, 3)``
``*.mp4``, ``*.avi``, ...   a video: BlazePose landmarks, one sequence per stretch
                            (``ssal.data.video``; needs the ``video`` extra)
==========================  ==========================================================
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import SsalInputError, display_path, stat_input
from ..skeleton import EGAIT16, SkeletonLayout
from .dataset import UNLABELLED, GaitDataset
from .preprocess import PreprocessConfig, sequences_to_dataset

HDF5_SUFFIXES = (".h5", ".hdf5")


def egait_labels_beside(features: Path) -> Path | None:
    """STEP's label file for a features file (``features_ELMD.h5`` -> ``labels_ELMD.h5``), if
    it exists."""
    stem = features.stem
    if not stem.lower().startswith("features"):
        return None
    candidate = features.with_name("labels" + stem[len("features") :] + features.suffix)
    return candidate if candidate.is_file() else None


def _npz_has_x(path: Path) -> bool | None:
    from .npz import npz_member_names

    names = npz_member_names(path)
    return None if names is None else "x" in names


def load_dataset(
    source: str | os.PathLike[str],
    *,
    layout: SkeletonLayout = EGAIT16,
    preprocess: PreprocessConfig | None = None,
    label_map: str | Sequence[str] | None = None,
    labels: str | os.PathLike[str] | None = None,
    order: str | None = None,
    fps: float = 30.0,
    units_to_metres: float | None = None,
    units: str | float | None = None,
    joint_map: Any = None,
    name_labels: Any = None,
    window: int | None = None,
    stride: int | None = None,
) -> GaitDataset:
    """Load a dataset from any supported source (see the module table).

    Args:
        source: ``"builtin"`` or a path.
        layout: skeleton layout to map onto / expect.
        preprocess: preprocessing switches for raw sources; of the built-in corpus only
            ``center`` applies; ignored for ``.ssal`` (stored preprocessed).
        label_map: class names of label values: ``"egait"``, ``"step"`` or a list; ``None``:
            the E-Gait order (:data:`~ssal.data.dataset.EGAIT_EMOTIONS`) for numeric labels.
        labels: explicit label file (E-Gait ``.h5`` or BVH-folder CSV).
        order: axis order of an ``.npz`` ``x`` (``"NCTV"``, ``"NTVC"``, ...).
        fps: the working frame rate (BVH files are resampled to it).
        units_to_metres: metres per BVH file unit (default: ``units``).
        units: BVH length units, ``auto`` (default: guessed from the skeleton's height), ``m``,
            ``cm``, ``mm``, ``in``, ``cmu`` or metres per unit.
        joint_map: BVH joint map (target joint -> source joint name) or the path of its YAML
            file; overrides the rule-based matching for the joints it names.
        name_labels: a :class:`ssal.data.names.NameLabels` (labels and filters from the file
            names of a BVH folder).
        window, stride: cut each recording of a BVH folder into clips (``groups`` = file).

    Raises:
        SsalInputError: missing or unreadable source, unknown extension, malformed content.
    """
    if isinstance(source, str) and source == "builtin":
        from .synthetic import load_builtin

        return load_builtin(center=(preprocess or PreprocessConfig()).center)
    if isinstance(source, (bytes, bytearray)):
        source = os.fsdecode(bytes(source))  # non-UTF-8 names become surrogate escapes
    try:
        path = Path(source)
    except TypeError:
        raise SsalInputError(None, f"a dataset source must be a path or 'builtin', got {type(source).__name__}") from None
    try:
        if isinstance(joint_map, (str, os.PathLike)):
            from ..jointmatch import load_joint_map

            joint_map = load_joint_map(joint_map, layout.joints)
        return _load_path(
            path, layout=layout, preprocess=preprocess, label_map=label_map, labels=labels, order=order,
            fps=fps, units_to_metres=units_to_metres, bvh=dict(units=units, joint_map=joint_map),
            folder=dict(name_labels=name_labels, window=window, stride=stride),
        )
    except MemoryError:
        raise SsalInputError(display_path(path), "not enough memory to load this source") from None


def _load_path(
    path: Path, *, layout: SkeletonLayout, preprocess: PreprocessConfig | None,
    label_map: str | Sequence[str] | None,
    labels: str | os.PathLike[str] | None, order: str | None, fps: float, units_to_metres: float | None,
    bvh: dict[str, Any] | None = None, folder: dict[str, Any] | None = None,
) -> GaitDataset:
    where = display_path(path)
    suffix = path.suffix.lower()
    st = stat_input(path, where)
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
        raise SsalInputError(where, "not a regular file or directory (a FIFO, socket or device?)")
    if labels is not None and isinstance(labels, (bytes, bytearray)):
        labels = os.fsdecode(bytes(labels))
    if stat.S_ISDIR(st.st_mode):
        if suffix == ".ssal" or (path / "meta.json").is_file():
            from .canonical import read_canonical

            return read_canonical(path, layout=layout if layout is not EGAIT16 else None)
        from .bvh import read_bvh_folder

        return read_bvh_folder(
            path, labels, label_map=label_map, layout=layout, fps=fps,
            units_to_metres=units_to_metres, preprocess=preprocess, **(bvh or {}), **(folder or {}),
        )
    if suffix in HDF5_SUFFIXES:
        from .egait import read_egait

        label_path = Path(labels) if labels is not None else egait_labels_beside(path)
        return read_egait(path, label_path, label_map=label_map, layout=layout, preprocess=preprocess, fps=fps)
    if suffix == ".bvh":
        from .bvh import read_bvh
        from .egait import resolve_label_map

        cfg = preprocess or PreprocessConfig()
        seq = read_bvh(path, layout=layout, fps=fps, units_to_metres=units_to_metres, config=cfg, **(bvh or {}))
        return sequences_to_dataset(
            [seq], [UNLABELLED], [path.name], resolve_label_map(label_map), layout=layout, fps=fps,
            config=cfg, source=where, meta={"format": "bvh"},
        )
    if suffix == ".npz":
        if _npz_has_x(path) is False:
            from .pose import read_pose

            return read_pose(path, layout=layout, label_map=label_map, preprocess=preprocess, fps=fps)
        from .npz import read_npz

        return read_npz(path, order=order, layout=layout, label_map=label_map, preprocess=preprocess, fps=fps)
    if suffix == ".npy":
        from .pose import read_pose

        return read_pose(path, layout=layout, label_map=label_map, preprocess=preprocess, fps=fps)
    from .video import VIDEO_SUFFIXES

    if suffix in VIDEO_SUFFIXES:
        from .video import read_video

        return read_video(path, layout=layout, preprocess=preprocess, label_map=label_map, fps=fps)
    raise SsalInputError(
        where,
        f"unknown dataset type {suffix or '(no extension)'!r}; expected .h5/.hdf5, .bvh, a folder of .bvh, "
        ".npz, .npy, a .ssal directory, a video (.mp4, .avi, ...) or 'builtin'",
    )


def save_dataset(ds: GaitDataset, path: str | os.PathLike[str], **options: Any) -> Path:
    """Save ``ds`` by extension: ``.ssal`` (canonical; ``dtype=``, ``overwrite=``) or ``.npz``."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".ssal":
        from .canonical import write_canonical

        return write_canonical(ds, p, **options)
    if suffix == ".npz":
        from .npz import write_dataset_npz

        write_dataset_npz(ds, p)
        return p
    raise SsalInputError(display_path(p), f"cannot save as {suffix or '(no extension)'!r}; use .ssal or .npz")
