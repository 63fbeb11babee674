"""NumPy ``.npz`` datasets: ``x`` plus ``y`` and optional ``names``, ``lengths``, ``classes``.

``x`` may be ``(N, C, T, V)`` (ST-GCN order, ``"NCTV"``) or ``(N, T, V, C)`` (``"NTVC"``); the
order is detected from where the size-3 coordinate axis and the layout's joint count sit, and
must be given as ``order=`` when that is ambiguous. Five-dimensional arrays with a person axis
``M`` (``"NMCTV"``, ``"NMTVC"`` as in pyskl, or ``"NCTVM"`` as in ST-GCN's feeders) are
accepted too: **person 0** is taken, the others dropped. When ``lengths`` is present, frames
beyond each sequence's length are padding and are dropped before preprocessing.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import SsalInputError, display_path
from ..skeleton import EGAIT16, SkeletonLayout
from .dataset import UNLABELLED, GaitDataset
from .egait import resolve_label_map
from .preprocess import PreprocessConfig, check_frame_count, sequences_to_dataset

ORDERS = ("NCTV", "NTVC", "NMCTV", "NMTVC", "NCTVM")


def detect_order(shape: tuple[int, ...], num_joints: int) -> list[str]:
    """Axis orders of :data:`ORDERS` consistent with ``shape`` (C = 3, V = ``num_joints``)."""
    hits = []
    for order in ORDERS:
        if len(order) != len(shape):
            continue
        if shape[order.index("C")] == 3 and shape[order.index("V")] == num_joints:
            hits.append(order)
    return hits


def to_ntvc(x: np.ndarray, order: str) -> np.ndarray:
    """Reorder ``x`` from ``order`` to ``(N, T, V, C)``, taking person 0 of an ``M`` axis."""
    order = order.upper()
    if order not in ORDERS:
        raise SsalInputError("order", f"unknown axis order {order!r}; use one of {', '.join(ORDERS)}")
    if "M" in order:
        x = np.take(x, 0, axis=order.index("M"))
        order = order.replace("M", "")
    if x.ndim != len(order):
        raise SsalInputError("order", f"array of shape {x.shape} does not fit order {order}")
    return np.transpose(x, [order.index(a) for a in "NTVC"])


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    where = display_path(path)
    if not path.exists():
        raise SsalInputError(where, "file not found")
    if path.is_dir():
        raise SsalInputError(where, "is a directory, expected an .npz file")
    if path.stat().st_size == 0:
        raise SsalInputError(where, "file is empty")
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise SsalInputError(where, "not an .npz archive (a single .npy array?)")
            return {k: data[k] for k in data.files}
    except SsalInputError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise SsalInputError(where, f"not a readable .npz archive ({exc})") from None


def read_npz_raw(
    path: str | os.PathLike[str],
    *,
    order: str | None = None,
    layout: SkeletonLayout = EGAIT16,
    label_map: str | Sequence[str] = "egait",
    config: PreprocessConfig | None = None,
) -> tuple[list[np.ndarray], np.ndarray, list[str], list[str]]:
    """Read an ``.npz`` dataset into ``(sequences (T_i, V, 3), y, names, classes)``."""
    cfg = config or PreprocessConfig()
    p = Path(path)
    where = display_path(p)
    data = _load_npz(p)
    if "x" not in data:
        raise SsalInputError(where, f"no array 'x' in the archive (arrays: {', '.join(sorted(data)) or 'none'})")
    x = data["x"]
    if not np.issubdtype(x.dtype, np.number):
        raise SsalInputError(where, f"'x' holds {x.dtype} values, expected numbers")
    if order is None and "order" in data and data["order"].ndim == 0:
        order = str(data["order"])
    if order is None:
        hits = detect_order(x.shape, layout.num_joints)
        if len(hits) != 1:
            why = "ambiguous" if hits else "not recognised"
            raise SsalInputError(
                where,
                f"axis order of 'x' with shape {x.shape} is {why} for {layout.num_joints} joints; "
                f"pass order= one of {', '.join(ORDERS)}",
            )
        order = hits[0]
    if x.ndim != len(order):
        raise SsalInputError(where, f"'x' has shape {x.shape}, which does not fit order {order}")
    ntvc = to_ntvc(x, order)
    n, t = ntvc.shape[0], ntvc.shape[1]
    if ntvc.shape[3] != 3:
        raise SsalInputError(where, f"'x' in order {order} has {ntvc.shape[3]} coordinates, expected 3")
    if ntvc.shape[2] != layout.num_joints:
        raise SsalInputError(
            where, f"'x' has {ntvc.shape[2]} joints, layout {layout.name} expects {layout.num_joints}"
        )

    classes = [str(c) for c in data["classes"].tolist()] if "classes" in data else resolve_label_map(label_map)
    y = np.asarray(data["y"]).reshape(-1) if "y" in data else np.full(n, UNLABELLED)
    if len(y) != n:
        raise SsalInputError(where, f"'y' has {len(y)} entries for {n} sequences")
    if not np.issubdtype(y.dtype, np.integer):
        raise SsalInputError(where, f"'y' must hold integers, got {y.dtype}")
    bad = (y < UNLABELLED) | (y >= len(classes))
    if bad.any():
        raise SsalInputError(where, f"label {int(y[bad][0])} outside 0..{len(classes) - 1} (classes {classes})")
    names = [str(s) for s in data["names"].tolist()] if "names" in data else [f"{p.stem}_{i:06d}" for i in range(n)]
    if len(names) != n:
        raise SsalInputError(where, f"'names' has {len(names)} entries for {n} sequences")
    if "lengths" in data:
        lengths = np.asarray(data["lengths"]).reshape(-1)
        if len(lengths) != n or not np.issubdtype(lengths.dtype, np.integer):
            raise SsalInputError(where, f"'lengths' must hold {n} integers")
        if (lengths > t).any() or (lengths < 0).any():
            raise SsalInputError(where, f"'lengths' must lie in 0..{t}")
    else:
        lengths = np.full(n, t)
    for i in range(n):
        check_frame_count(int(lengths[i]), where, names[i], cfg)
    seqs = [ntvc[i, : int(lengths[i])] for i in range(n)]
    return seqs, y.astype(np.int64), names, classes


def read_npz(
    path: str | os.PathLike[str],
    *,
    order: str | None = None,
    layout: SkeletonLayout = EGAIT16,
    label_map: str | Sequence[str] = "egait",
    preprocess: PreprocessConfig | None = None,
    fps: float = 30.0,
) -> GaitDataset:
    """Read an ``.npz`` dataset (see module doc) and preprocess it."""
    cfg = preprocess or PreprocessConfig()
    seqs, y, names, classes = read_npz_raw(path, order=order, layout=layout, label_map=label_map, config=cfg)
    return sequences_to_dataset(
        seqs, y, names, classes, layout=layout, fps=fps, config=cfg,
        source=display_path(path), meta={"format": "npz"},
    )


def write_npz(
    path: str | os.PathLike[str],
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    names: Sequence[str] | None = None,
    lengths: np.ndarray | None = None,
    classes: Sequence[str] | None = None,
    order: str = "NCTV",
    compressed: bool = True,
) -> None:
    """Write an ``.npz`` dataset; ``x`` is stored as given (``order`` only documents it)."""
    arrays: dict[str, Any] = {"x": np.asarray(x)}
    if y is not None:
        arrays["y"] = np.asarray(y, dtype=np.int64)
    if names is not None:
        arrays["names"] = np.asarray([str(s) for s in names], dtype=str)
    if lengths is not None:
        arrays["lengths"] = np.asarray(lengths, dtype=np.int64)
    if classes is not None:
        arrays["classes"] = np.asarray([str(c) for c in classes], dtype=str)
    arrays["order"] = np.asarray(order)
    save = np.savez_compressed if compressed else np.savez
    with open(path, "wb") as fh:
        save(fh, **arrays)


def write_dataset_npz(ds: GaitDataset, path: str | os.PathLike[str]) -> None:
    """Write a :class:`GaitDataset` as ``.npz`` (``x`` in ``(N, C, T, V)``)."""
    write_npz(path, np.asarray(ds.x), ds.y, names=ds.names, lengths=ds.lengths, classes=ds.classes)
