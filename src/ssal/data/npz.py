"""NumPy ``.npz`` datasets: ``x`` plus ``y`` and optional ``names``, ``lengths``, ``classes``.

``x`` may be ``(N, C, T, V)`` (ST-GCN order, ``"NCTV"``) or ``(N, T, V, C)`` (``"NTVC"``); the
order is detected from where the size-3 coordinate axis and the layout's joint count sit, and
must be given as ``order=`` when that is ambiguous. Five-dimensional arrays with a person axis
``M`` (``"NMCTV"``, ``"NMTVC"`` as in pyskl, or ``"NCTVM"`` as in ST-GCN's feeders) are
accepted too: **person 0** is taken, the others dropped. When ``lengths`` is present, frames
beyond each sequence's length are padding and are dropped before preprocessing.
"""

from __future__ import annotations

import math
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..errors import SsalInputError, display_path
from ..skeleton import EGAIT16, SkeletonLayout
from .dataset import UNLABELLED, GaitDataset
from .egait import resolve_label_map
from .preprocess import (
    PreprocessConfig,
    check_bytes,
    check_frame_count,
    check_value_count,
    dataset_bytes,
    sequences_to_dataset,
)

ORDERS = ("NCTV", "NTVC", "NMCTV", "NMTVC", "NCTVM")

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
#: Most arrays read from one ``.npz`` archive.
MAX_ARRAYS = 100_000
#: dtype kinds read: booleans, integers, floats, complex (refused later with a clear message),
#: byte strings and text. Datetimes/timedeltas (``M``/``m``, which NumPy counts as integers),
#: void/structured, sub-array and object dtypes are refused in the header.
ALLOWED_KINDS = "biufcSU"


def array_bytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Working memory of reading an array: its bytes as stored plus its float64 copy (numbers)
    or the Python strings made from it (text, about 64 bytes of overhead per item)."""
    count = math.prod(shape)
    if dtype.kind in "SU":
        return count * (2 * dtype.itemsize + 64)
    return count * (dtype.itemsize + 8)

# Errors the zipfile and zlib modules raise on corrupt archives (besides OSError/ValueError).
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, OSError,
               ValueError, struct.error, OverflowError, KeyError, IndexError)


def read_npy_header(fh: IO[bytes], where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Parse a ``.npy`` header from ``fh`` (positioned at its start): ``(shape, fortran, dtype)``.

    Only format versions 1.0 and 2.0 are read; object dtypes (which need pickle) and
    zero-size items are refused. Any malformed header becomes :class:`SsalInputError`.
    """
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise SsalInputError(where, f".npy format version {version} is not supported (1.0 or 2.0)")
    except SsalInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - numpy's header parser raises many types (TokenError, ...)
        msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise SsalInputError(where, f"malformed .npy header ({msg})") from None
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        raise SsalInputError(where, "the array holds Python objects (would need pickle); refused")
    if dtype.subdtype is not None or dtype.names is not None or dtype.kind not in ALLOWED_KINDS:
        raise SsalInputError(
            where, f"the array has dtype {str(dtype)[:60]}; only plain numbers, booleans and strings are read"
        )
    if dtype.itemsize == 0:
        raise SsalInputError(where, f"the array has a zero-size dtype {dtype}")
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise SsalInputError(where, f"invalid array shape {shape}")
    return tuple(shape), bool(fortran), dtype


def _read_npy_data(fh: IO[bytes], shape: tuple[int, ...], fortran: bool, dtype: np.dtype, where: str) -> np.ndarray:
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    data = fh.read(nbytes)
    if len(data) < nbytes:
        raise SsalInputError(where, f"truncated array: {nbytes} bytes of data declared, {len(data)} found")
    arr = np.frombuffer(data, dtype=dtype, count=count)
    return arr.reshape(shape, order="F" if fortran else "C")


def load_arrays(
    path: str | os.PathLike[str], max_values: int | None = None, npz_only: bool = False,
    plan: Callable[[dict[str, tuple[tuple[int, ...], np.dtype]]], None] | None = None,
) -> dict[str, np.ndarray]:
    """Read a ``.npy`` file (``{stem: array}``) or an ``.npz`` archive (``{name: array}``)
    without pickle and without trusting declared sizes.

    Every header is parsed first and the declared values are summed and checked against
    :data:`ssal.data.preprocess.MAX_VALUES` (or ``max_values``) before any data are read; a
    member whose data would exceed the archive's declared member size is refused as
    truncated. The bytes reading takes (:func:`array_bytes`) are summed and checked against
    :data:`ssal.data.preprocess.MAX_BYTES` too; ``plan``, when given, is called with every
    array's ``(shape, dtype)`` before any data are read (a reader adds what it will allocate
    next, e.g. padding). With ``npz_only`` a single ``.npy`` array is refused. Raises
    :class:`SsalInputError` for anything that is not a readable NumPy file.
    """
    p = Path(path)
    where = display_path(p)
    try:
        st = p.stat()
    except (OSError, ValueError) as exc:
        raise SsalInputError(where, f"cannot read file ({getattr(exc, 'strerror', None) or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise SsalInputError(where, "is a directory, expected a NumPy file")
    if not stat.S_ISREG(st.st_mode):
        raise SsalInputError(where, "not a regular file")
    if st.st_size == 0:
        raise SsalInputError(where, "file is empty")

    def budget(count: int, what: str) -> None:
        if max_values is not None and count > max_values:
            raise SsalInputError(where, f"{what} declares {count} values, more than the limit of {max_values}")
        check_value_count(count, where, what)

    try:
        with open(p, "rb") as fh:
            magic = fh.read(6)
            fh.seek(0)
            if magic == NPY_MAGIC:
                if npz_only:
                    raise SsalInputError(where, "not an .npz archive (a single .npy array?)")
                shape, fortran, dtype = read_npy_header(fh, where)
                count = math.prod(shape)
                budget(count, "the array")
                check_bytes(array_bytes(shape, dtype), where, "reading the array")
                if plan is not None:
                    plan({p.stem: (shape, dtype)})
                if fh.tell() + count * dtype.itemsize > st.st_size:
                    raise SsalInputError(
                        where, f"truncated .npy: shape {shape} of {dtype} needs more data than the file holds"
                    )
                return {p.stem: _read_npy_data(fh, shape, fortran, dtype, where)}
            if magic[:4] not in ZIP_MAGICS:
                raise SsalInputError(where, "not a NumPy .npy or .npz file (unknown signature)")
    except OSError as exc:
        raise SsalInputError(where, f"cannot read file ({exc.strerror or exc})") from None

    arrays: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(p) as zf:
            infos = [i for i in zf.infolist() if not i.filename.endswith("/")]
            if len(infos) > MAX_ARRAYS:
                raise SsalInputError(where, f"archive holds {len(infos)} members, more than {MAX_ARRAYS}")
            headers = []
            total = nbytes = 0
            declared: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
            for info in infos:
                name = info.filename
                if not name.endswith(".npy"):
                    raise SsalInputError(where, f"archive member {name!r} is not a .npy array")
                mwhere = f"{where} [{name[:-4]}]"
                with zf.open(info) as member:
                    shape, fortran, dtype = read_npy_header(member, mwhere)
                    offset = member.tell()
                count = math.prod(shape)
                total += count
                budget(total, "the archive")
                nbytes += array_bytes(shape, dtype)
                check_bytes(nbytes, where, "reading the archive")
                declared[name[:-4]] = (shape, dtype)
                if offset + count * dtype.itemsize > info.file_size:
                    raise SsalInputError(
                        mwhere, f"truncated array: shape {shape} of {dtype} needs more data than the member holds"
                    )
                headers.append((info, name[:-4], mwhere))
            if plan is not None:
                plan(declared)
            for info, key, mwhere in headers:
                with zf.open(info) as member:
                    shape, fortran, dtype = read_npy_header(member, mwhere)
                    arrays[key] = _read_npy_data(member, shape, fortran, dtype, mwhere)
    except SsalInputError:
        raise
    except _ZIP_ERRORS as exc:
        msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise SsalInputError(where, f"not a readable .npz archive ({msg})") from None
    return arrays


def detect_order(shape: tuple[int, ...], num_joints: int) -> list[str]:
    """Axis orders of :data:`ORDERS` consistent with ``shape`` (C = 3, V = ``num_joints``)."""
    hits = []
    for order in ORDERS:
        if len(order) != len(shape):
            continue
        if shape[order.index("C")] == 3 and shape[order.index("V")] == num_joints:
            hits.append(order)
    return hits


def to_ntvc(x: np.ndarray, order: str, where: str = "order") -> np.ndarray:
    """Reorder ``x`` from ``order`` to ``(N, T, V, C)``, taking person 0 of an ``M`` axis."""
    if not isinstance(order, str):
        raise SsalInputError(where, f"axis order must be a text, got {type(order).__name__}")
    order = order.upper()
    if order not in ORDERS:
        raise SsalInputError(where, f"unknown axis order {order[:20]!r}; use one of {', '.join(ORDERS)}")
    if x.ndim != len(order):
        raise SsalInputError(where, f"array of shape {x.shape} does not fit order {order}")
    if "M" in order:
        if x.shape[order.index("M")] == 0:
            raise SsalInputError(where, f"the person axis M of 'x' {x.shape} is empty (no person 0 to take)")
        x = np.take(x, 0, axis=order.index("M"))
        order = order.replace("M", "")
    return np.transpose(x, [order.index(a) for a in "NTVC"])


def _load_npz(path: Path, plan=None) -> dict[str, np.ndarray]:
    where = display_path(path)
    if not path.exists():
        raise SsalInputError(where, "file not found")
    if path.is_dir():
        raise SsalInputError(where, "is a directory, expected an .npz file")
    return load_arrays(path, npz_only=True, plan=plan)


def npz_member_names(path: str | os.PathLike[str]) -> list[str] | None:
    """Array names of an ``.npz`` archive from its directory (no data read); ``None`` when
    ``path`` is not a readable regular zip file."""
    p = Path(path)
    try:
        if not stat.S_ISREG(p.stat().st_mode):
            return None
        with zipfile.ZipFile(p) as zf:
            return [n[:-4] if n.endswith(".npy") else n for n in zf.namelist()]
    except _ZIP_ERRORS:
        return None


def _string_list(data: dict[str, np.ndarray], key: str, where: str) -> list[str]:
    arr = data[key]
    if arr.ndim != 1 or arr.dtype.kind not in "USiu":
        raise SsalInputError(where, f"'{key}' must be a 1-D array of strings, got {arr.dtype} {arr.shape}")
    return [str(s) for s in arr.tolist()]


def read_npz_raw(
    path: str | os.PathLike[str],
    *,
    order: str | None = None,
    layout: SkeletonLayout = EGAIT16,
    label_map: str | Sequence[str] | None = None,
    config: PreprocessConfig | None = None,
) -> tuple[list[np.ndarray], np.ndarray, list[str], list[str]]:
    """Read an ``.npz`` dataset into ``(sequences (T_i, V, 3), y, names, classes)``."""
    cfg = config or PreprocessConfig()
    p = Path(path)
    where = display_path(p)
    v = layout.num_joints

    def plan(declared: dict[str, tuple[tuple[int, ...], np.dtype]]) -> None:
        # padding/cutting every sequence to the working length, before any data are read
        shape = declared.get("x", ((0,), None))[0]
        n = shape[0] if shape else 0
        check_bytes(sum(array_bytes(s, d) for s, d in declared.values()) + dataset_bytes(n, cfg, v),
                    where, f"reading and padding {n} sequences to {cfg.length} frames")

    data = _load_npz(p, plan)
    if "x" not in data:
        raise SsalInputError(where, f"no array 'x' in the archive (arrays: {', '.join(sorted(data)) or 'none'})")
    x = data["x"]
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise SsalInputError(where, f"'x' holds {x.dtype} values, expected real numbers")
    if order is None and "order" in data and data["order"].ndim == 0 and data["order"].dtype.kind == "U":
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
    ntvc = to_ntvc(x, order, where)
    n, t = ntvc.shape[0], ntvc.shape[1]
    if ntvc.shape[3] != 3:
        raise SsalInputError(where, f"'x' in order {order} has {ntvc.shape[3]} coordinates, expected 3")
    if ntvc.shape[2] != layout.num_joints:
        raise SsalInputError(
            where, f"'x' has {ntvc.shape[2]} joints, layout {layout.name} expects {layout.num_joints}"
        )

    if n == 0:
        raise SsalInputError(where, "'x' holds no sequences")
    classes = _string_list(data, "classes", where) if "classes" in data else resolve_label_map(label_map)
    y = np.asarray(data["y"]).reshape(-1) if "y" in data else np.full(n, UNLABELLED)
    if len(y) != n:
        raise SsalInputError(where, f"'y' has {len(y)} entries for {n} sequences")
    if not np.issubdtype(y.dtype, np.integer):
        raise SsalInputError(where, f"'y' must hold integers, got {y.dtype}")
    bad = (y < UNLABELLED) | (y >= len(classes))
    if bad.any():
        raise SsalInputError(where, f"label {int(y[bad][0])} outside 0..{len(classes) - 1} (classes {classes})")
    names = _string_list(data, "names", where) if "names" in data else [f"{p.stem}_{i:06d}" for i in range(n)]
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
    label_map: str | Sequence[str] | None = None,
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
