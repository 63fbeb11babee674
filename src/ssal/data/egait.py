"""E-Gait (STEP) HDF5 reader and writer.

The release format (SPEC section 1): a flat HDF5 file, one dataset per gait, key = sample
name, value = ``(T, 3V)`` floats, joint-major (column ``3*j + c``). Labels live in a second
flat file with the same keys, one scalar int each, and are matched **by key**. Synthetic CVAE
files have no label file: the emotion is the key's suffix (``00003_Happy``).

The numbering of the label values is a setting (:data:`LABEL_MAPS`): ``"egait"`` (default,
0 happy, 1 angry, 2 sad, 3 neutral, what a cross-tabulation of the released ``labels.h5``
against the emotions named in its keys shows, see ``docs/data.md``), ``"step"`` (0 angry,
1 neutral, 2 happy, 3 sad, as STEP's code names them) or an explicit list of class names
(e.g. the six classes of ``labels4DCVAEGCN.h5``).
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SsalInputError, display_path, stat_input
from ..skeleton import EGAIT16, SkeletonLayout
from .dataset import EGAIT_EMOTIONS, UNLABELLED, GaitDataset
from .preprocess import (
    PreprocessConfig,
    check_bytes,
    check_frame_count,
    check_value_count,
    dataset_bytes,
    sequences_to_dataset,
)

#: Named index-to-emotion maps of E-Gait label files.
LABEL_MAPS: dict[str, tuple[str, ...]] = {
    "egait": tuple(EGAIT_EMOTIONS),
    "step": ("angry", "neutral", "happy", "sad"),
}

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def resolve_label_map(label_map: str | Sequence[str] | None) -> list[str]:
    """Class names for a label map preset name or an explicit list of names.

    A string with commas is a list of names (``"happy,angry,sad,neutral"``), as the command
    line's ``--label-map`` and the config's ``data.label_map`` give it; ``None`` is the E-Gait
    order (:data:`~ssal.data.dataset.EGAIT_EMOTIONS`), the default of every reader.
    """
    if label_map is None:
        return list(EGAIT_EMOTIONS)
    if isinstance(label_map, str) and "," in label_map:
        label_map = label_map.split(",")
    if isinstance(label_map, str):
        try:
            return list(LABEL_MAPS[label_map.lower()])
        except KeyError:
            raise SsalInputError(
                "label_map",
                f"unknown preset {label_map!r}; use one of {', '.join(LABEL_MAPS)} or a list of class names",
            ) from None
    names = [str(n).strip().lower() for n in label_map]
    if not names or len(set(names)) != len(names) or not all(names):
        raise SsalInputError("label_map", f"class names must be non-empty and unique, got {list(label_map)}")
    return names


def check_hdf5_file(path: str | os.PathLike[str]) -> Path:
    """Raise :class:`SsalInputError` unless ``path`` is an existing, non-empty HDF5 file.

    The HDF5 signature is looked for at offset 0 and at the user-block offsets 512, 1024, ...
    """
    p = Path(path)
    where = display_path(p)
    st = stat_input(p, where)
    if stat.S_ISDIR(st.st_mode):
        raise SsalInputError(where, "is a directory, expected an HDF5 file")
    if not stat.S_ISREG(st.st_mode):
        raise SsalInputError(where, "not a regular file (a FIFO, socket or device?)")
    size = st.st_size
    if size == 0:
        raise SsalInputError(where, "file is empty")
    offsets = [0] + [512 * 2**k for k in range(12) if 512 * 2**k + 8 <= size]
    try:
        with open(p, "rb") as fh:
            for off in offsets:
                fh.seek(off)
                if fh.read(8) == HDF5_MAGIC:
                    return p
    except OSError as exc:
        raise SsalInputError(where, f"cannot read file ({exc.strerror or exc})") from None
    raise SsalInputError(where, "not an HDF5 file (no HDF5 signature)")


def key_name(key: str | bytes) -> str:
    """An HDF5 key as text: h5py returns non-UTF-8 names as bytes, shown with ``\\x`` escapes."""
    return key.decode("utf-8", "backslashreplace") if isinstance(key, bytes) else str(key)


def _numeric_dtype(item: Any) -> bool:
    """True for an HDF5 dataset of plain integers or floats (no strings, compounds, enums...)."""
    try:
        return np.dtype(item.dtype).kind in "iuf"
    except TypeError:
        return False


#: Most HDF5 chunks one file may declare over all its datasets: HDF5 keeps bookkeeping per
#: chunk while reading, so a tiny file of (1, 1) chunks could otherwise take gigabytes.
MAX_HDF5_CHUNKS = 100_000


def plain_dataset(f: Any, key: Any, where: str) -> Any:
    """``f[key]`` if it is a dataset stored in this file, else :class:`SsalInputError`.

    Refused before anything is read: external links (they open another file), soft links,
    virtual datasets (their data come from other files) and datasets with external storage
    (their bytes live in any named file: ``/etc/passwd``, a FIFO that blocks forever), so a
    read can neither block nor reach a file other than the one given.
    """
    import h5py

    name = key_name(key)
    raw = key if isinstance(key, bytes) else str(key).encode("utf-8", "surrogateescape")
    kind = f.id.links.get_info(raw).type
    if kind == h5py.h5l.TYPE_EXTERNAL:
        raise SsalInputError(f"{where} [{name}]", "is an external link to another file; refused")
    if kind != h5py.h5l.TYPE_HARD:
        raise SsalInputError(f"{where} [{name}]", "is a soft or user-defined link; only datasets stored under "
                                                  "their own name are read")
    item = f[key]
    if isinstance(item, h5py.Dataset):
        if item.is_virtual:
            raise SsalInputError(f"{where} [{name}]", "is a virtual dataset (data from other files); refused")
        if item.id.get_create_plist().get_external_count() > 0:
            raise SsalInputError(f"{where} [{name}]", "keeps its data in an external file; refused")
    return item


def chunk_count(item: Any) -> int:
    """Number of chunks of a chunked dataset's declared shape (0 when contiguous)."""
    chunks = getattr(item, "chunks", None)
    if not chunks or item.shape is None:
        return 0
    return math.prod(-(-int(s) // max(1, int(c))) for s, c in zip(item.shape, chunks))


# h5py/HDF5 errors on corrupt files (SsalInputError, a ValueError, is re-raised before these).
_H5_ERRORS = (OSError, KeyError, RuntimeError, TypeError, ValueError, AttributeError, OverflowError)


def _open_h5(path: Path):
    import h5py

    try:
        return h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise SsalInputError(display_path(path), f"cannot open as HDF5 ({exc})") from None


def _scalar_int(value: Any, where: str) -> int:
    arr = np.asarray(value)
    if arr.size != 1 or not np.issubdtype(arr.dtype, np.number):
        raise SsalInputError(where, f"label must be one integer, got {arr.dtype} array of shape {arr.shape}")
    v = arr.reshape(()).item()
    if not float(v).is_integer():
        raise SsalInputError(where, f"label {v} is not an integer")
    return int(v)


def read_label_file(path: str | os.PathLike[str]) -> dict[str, int]:
    """Read an E-Gait label file: ``{key: int label}``."""
    p = check_hdf5_file(path)
    where = display_path(p)
    out: dict[str, int] = {}
    with _open_h5(p) as f:
        try:
            chunks = 0
            for key in f.keys():
                item = plain_dataset(f, key, where)
                name = key_name(key)
                if not hasattr(item, "shape"):
                    raise SsalInputError(where, f"entry {name!r} is a group; expected a flat label file")
                shape = item.shape
                # check the declared size before reading anything
                if shape is None or int(np.prod(shape, dtype=np.float64)) != 1 or not _numeric_dtype(item):
                    raise SsalInputError(
                        f"{where} [{name}]",
                        f"label must be one integer, got {item.dtype} array of shape {shape}",
                    )
                chunks += chunk_count(item)
                if chunks > MAX_HDF5_CHUNKS or len(out) >= MAX_HDF5_CHUNKS:
                    raise SsalInputError(where, f"declares more than {MAX_HDF5_CHUNKS} labels or chunks")
                out[name] = _scalar_int(item[()], f"{where} [{name}]")
        except SsalInputError:
            raise
        except _H5_ERRORS as exc:
            raise SsalInputError(where, f"corrupt HDF5 content ({exc})") from None
    return out


def label_from_key(key: str, classes: Sequence[str]) -> int | None:
    """Class index named by a key's last ``_``-separated token (``00003_Happy`` -> happy)."""
    token = re.split(r"[_\-\s]", key.strip())[-1].lower()
    lowered = [c.lower() for c in classes]
    return lowered.index(token) if token in lowered else None


def read_egait_raw(
    features_path: str | os.PathLike[str],
    labels_path: str | os.PathLike[str] | None = None,
    *,
    label_map: str | Sequence[str] | None = None,
    layout: SkeletonLayout = EGAIT16,
    config: PreprocessConfig | None = None,
) -> tuple[list[np.ndarray], list[int], list[str], list[str], str]:
    """Read E-Gait files into raw sequences.

    Returns:
        ``(sequences, labels, names, classes, label_source)``: ``(T_i, V, 3)`` float64 arrays in
        the features file's key order, labels (-1 = unlabelled), keys, class names and how the
        labels were found (``"file"``, ``"key suffix"`` or ``"none"``).

    Labels: from ``labels_path`` matched by key when given (a missing key is an error);
    otherwise from key suffixes when every key has one naming a class; all unlabelled when no
    key has one; a mix is an error.
    """
    cfg = config or PreprocessConfig()
    classes = resolve_label_map(label_map)
    fpath = check_hdf5_file(features_path)
    where = display_path(fpath)
    v = layout.num_joints
    sequences: list[np.ndarray] = []
    names: list[str] = []
    with _open_h5(fpath) as f:
        try:
            keys = list(f.keys())
            # First pass: declared shapes and types only; nothing is read before all are checked.
            total = nbytes = chunks = 0
            items = []
            for key in keys:
                item = plain_dataset(f, key, where)
                name = key_name(key)
                if not hasattr(item, "shape"):
                    raise SsalInputError(where, f"entry {name!r} is a group; expected a flat E-Gait file")
                shape = tuple(item.shape) if item.shape is not None else ()
                if len(shape) != 2 or shape[1] != 3 * v:
                    raise SsalInputError(
                        f"{where} [{name}]",
                        f"expected (T, {3 * v}) values ({v} joints x xyz, joint-major), got shape {shape}"
                        f" (wrong joint count for layout {layout.name})",
                    )
                if not _numeric_dtype(item):
                    raise SsalInputError(f"{where} [{name}]", f"holds {item.dtype} values, expected numbers")
                check_frame_count(shape[0], where, name, cfg)
                total += shape[0] * shape[1]
                check_value_count(total, where, "the file")
                chunks += chunk_count(item)
                if chunks > MAX_HDF5_CHUNKS:
                    raise SsalInputError(
                        where, f"declares more than {MAX_HDF5_CHUNKS} storage chunks (ssal.data.egait.MAX_HDF5_CHUNKS)"
                    )
                # as stored, plus the float64 copy
                nbytes += shape[0] * shape[1] * (np.dtype(item.dtype).itemsize + 8)
                items.append(item)
            check_bytes(nbytes + dataset_bytes(len(keys), cfg, v), where, "reading and preprocessing the file")
            for key, item in zip(keys, items):
                shape = tuple(item.shape)
                data = np.asarray(item[()], dtype=np.float64)
                sequences.append(data.reshape(shape[0], v, 3))
                names.append(key_name(key))
        except SsalInputError:
            raise
        except _H5_ERRORS as exc:
            msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise SsalInputError(where, f"corrupt HDF5 content ({msg})") from None
    if not names:
        raise SsalInputError(where, "holds no gait sequences")

    labels: list[int]
    if labels_path is not None:
        table = read_label_file(labels_path)
        lwhere = display_path(labels_path)
        labels = []
        for key in names:
            if key not in table:
                raise SsalInputError(lwhere, f"no label for key {key!r} of {where}")
            value = table[key]
            if not (0 <= value < len(classes)):
                raise SsalInputError(
                    f"{lwhere} [{key}]",
                    f"label {value} outside the label map {classes}; give a label map of {value + 1}+ class names "
                    f"(--label-map name0,name1,... or data.label_map)",
                )
            labels.append(value)
        source = "file"
    else:
        found = [label_from_key(k, classes) for k in names]
        if all(lab is None for lab in found):
            labels, source = [UNLABELLED] * len(names), "none"
        elif any(lab is None for lab in found):
            bad = names[found.index(None)]
            raise SsalInputError(
                where,
                f"key {bad!r} has no emotion suffix among {classes} and no label file was given "
                f"(give the label file, or a label_map naming every suffix)",
            )
        else:
            labels, source = [int(lab) for lab in found], "key suffix"  # type: ignore[arg-type]
    return sequences, labels, names, classes, source


def read_egait(
    features_path: str | os.PathLike[str],
    labels_path: str | os.PathLike[str] | None = None,
    *,
    label_map: str | Sequence[str] | None = None,
    layout: SkeletonLayout = EGAIT16,
    preprocess: PreprocessConfig | None = None,
    fps: float = 30.0,
) -> GaitDataset:
    """Read E-Gait HDF5 files (see :func:`read_egait_raw`) into a preprocessed dataset."""
    cfg = preprocess or PreprocessConfig()
    seqs, labels, names, classes, source = read_egait_raw(
        features_path, labels_path, label_map=label_map, layout=layout, config=cfg
    )
    meta = {
        "format": "egait-hdf5",
        "labels_path": display_path(labels_path) if labels_path is not None else None,
        "label_source": source,
        "label_map": label_map if isinstance(label_map, str) else list(classes),
    }
    return sequences_to_dataset(
        seqs, labels, names, classes, layout=layout, fps=fps, config=cfg,
        source=display_path(features_path), meta=meta,
    )


def write_egait(
    features_path: str | os.PathLike[str],
    labels_path: str | os.PathLike[str] | None,
    sequences: Sequence[np.ndarray],
    labels: Sequence[int] | None,
    names: Sequence[str],
    *,
    dtype: Any = np.float64,
    label_dtype: Any = np.int64,
) -> None:
    """Write sequences ``(T_i, V, 3)`` in STEP's layout: one ``(T_i, 3V)`` dataset per key and,
    when ``labels_path`` is given, a label file with one scalar int per key."""
    import h5py

    if len(sequences) != len(names) or (labels is not None and len(labels) != len(names)):
        raise ValueError("sequences, labels and names must have the same length")
    with h5py.File(features_path, "w") as f:
        for name, seq in zip(names, sequences):
            arr = np.asarray(seq)
            f.create_dataset(str(name), data=arr.reshape(arr.shape[0], int(np.prod(arr.shape[1:]))).astype(dtype))
    if labels_path is not None and labels is not None:
        with h5py.File(labels_path, "w") as f:
            for name, lab in zip(names, labels):
                f.create_dataset(str(name), data=np.asarray(lab, dtype=label_dtype))
