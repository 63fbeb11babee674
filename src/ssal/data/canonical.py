"""The canonical on-disk format: a ``NAME.ssal/`` directory.

Contents:

* ``meta.json``: ``format`` (``"ssal-canonical"``), ``version`` (:data:`FORMAT_VERSION`),
  ``layout`` (a built-in layout name), ``classes``, ``fps``, ``names``, ``shape``
  ``[N, C, T, V]``, ``dtype`` (``float32`` or ``float16``), ``preprocess`` (the settings
  used), ``meta`` (other provenance) and, for corpora of clips, ``groups`` (the recording, or
  the ``meta.group_by`` unit, of each sequence: splits keep a group on one side);
* ``x.npy``: ``(N, C=3, T, V)`` positions; ``y.npy``: ``(N,)`` int64 labels (-1 unlabelled);
  ``lengths.npy``: ``(N,)`` int64 original frame counts.

Writes are atomic: everything goes into a temporary directory beside the target, each file
is fsynced, then the directory is renamed into place (an existing target is moved aside first
and removed after). Reads memory-map ``x.npy`` (``mmap_mode="r"``), so corpora larger than
RAM stream; a float16 corpus stays float16 on disk and in the memmap (convert per batch).
:class:`CanonicalWriter` fills ``x.npy`` chunk by chunk for corpora that never fit in memory.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import shutil
import stat
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SsalInputError, display_path
from ..skeleton import EGAIT16, SkeletonLayout, get_layout
from .dataset import UNLABELLED, GaitDataset
from .preprocess import PreprocessConfig, check_fps, check_json_size, check_value_count

FORMAT_NAME = "ssal-canonical"
FORMAT_VERSION = 1
DTYPES = ("float32", "float16")


def _json_safe(value: Any) -> Any:
    """``value`` with NumPy scalars/arrays and paths turned into JSON types."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _temp_beside(path: Path) -> Path:
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=False)
    return tmp


def _publish(tmp: Path, path: Path, overwrite: bool) -> None:
    """Fsync ``tmp``'s files and rename it to ``path`` (replacing an existing one)."""
    for f in tmp.iterdir():
        _fsync_file(f)
    _fsync_dir(tmp)
    old = None
    if path.exists():
        if not overwrite:
            shutil.rmtree(tmp, ignore_errors=True)
            raise SsalInputError(display_path(path), "already exists")
        old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(path, old)
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _meta_dict(
    n: int, t: int, v: int, dtype: str, classes: Sequence[str], layout: SkeletonLayout, fps: float,
    names: Sequence[str], meta: dict[str, Any] | None, groups: Sequence[str] | None = None,
) -> dict[str, Any]:
    meta = dict(meta or {})
    out = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "layout": layout.name,
        "classes": [str(c) for c in classes],
        "fps": float(fps),
        "shape": [int(n), 3, int(t), int(v)],
        "dtype": dtype,
        "names": [str(s) for s in names],
        "preprocess": _json_safe(meta.pop("preprocess", None)),
        "meta": _json_safe(meta),
    }
    if groups is not None:
        out["groups"] = [str(g) for g in groups]
    return out


def _check_dtype(dtype: Any) -> str:
    name = np.dtype(dtype).name
    if name not in DTYPES:
        raise SsalInputError("dtype", f"canonical x must be one of {DTYPES}, got {name}")
    return name


def write_canonical(
    ds: GaitDataset, path: str | os.PathLike[str], dtype: Any = "float32", overwrite: bool = True
) -> Path:
    """Write ``ds`` as a canonical ``.ssal`` directory, atomically. Returns the path."""
    target = Path(path)
    dt = _check_dtype(dtype)
    n, c, t, v = ds.x.shape
    tmp = _temp_beside(target)
    try:
        np.save(tmp / "x.npy", np.asarray(ds.x, dtype=dt))
        np.save(tmp / "y.npy", np.asarray(ds.y, dtype=np.int64))
        np.save(tmp / "lengths.npy", np.asarray(ds.lengths, dtype=np.int64))
        meta = _meta_dict(n, t, v, dt, ds.classes, ds.layout, ds.fps, ds.names, ds.meta, ds.groups)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        _publish(tmp, target, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


class CanonicalWriter:
    """Write a canonical corpus chunk by chunk without holding it in memory.

    ``x.npy`` is created with :func:`numpy.lib.format.open_memmap` in a temporary directory;
    :meth:`append` fills it in order; :meth:`finalize` checks all ``n`` rows were written,
    writes ``y``, ``lengths`` and ``meta.json`` and renames the directory into place. Used as
    a context manager, the temporary directory is removed if the block raises.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        n: int,
        T: int,
        V: int | None = None,
        dtype: Any = "float32",
        classes: Sequence[str] = (),
        layout: SkeletonLayout = EGAIT16,
        fps: float = 30.0,
        meta: dict[str, Any] | None = None,
        overwrite: bool = True,
    ) -> None:
        self.path = Path(path)
        self.n, self.T = int(n), int(T)
        self.V = int(V) if V is not None else layout.num_joints
        if self.V != layout.num_joints:
            raise SsalInputError("V", f"{self.V} joints do not match layout {layout.name} ({layout.num_joints})")
        self.dtype = _check_dtype(dtype)
        self.classes, self.layout, self.fps = list(classes), layout, float(fps)
        self.meta, self.overwrite = dict(meta or {}), overwrite
        self.tmp = _temp_beside(self.path)
        self.x = np.lib.format.open_memmap(
            self.tmp / "x.npy", mode="w+", dtype=self.dtype, shape=(self.n, 3, self.T, self.V)
        )
        self.y = np.full(self.n, UNLABELLED, dtype=np.int64)
        self.lengths = np.zeros(self.n, dtype=np.int64)
        self.names: list[str] = []
        self.count = 0
        self.done = False

    def append(
        self, x: np.ndarray, y: Sequence[int] | np.ndarray, names: Sequence[str], lengths: Sequence[int] | np.ndarray | None = None
    ) -> None:
        """Write the next ``k`` sequences: ``x`` ``(k, 3, T, V)``, ``y`` and ``names`` of length k."""
        x = np.asarray(x)
        k = x.shape[0]
        if x.shape[1:] != (3, self.T, self.V):
            raise ValueError(f"chunk shape {x.shape} does not match (k, 3, {self.T}, {self.V})")
        if len(y) != k or len(names) != k:
            raise ValueError("x, y and names must have the same length")
        if self.count + k > self.n:
            raise ValueError(f"more than the declared {self.n} sequences")
        y_arr = np.asarray(y, dtype=np.int64)
        bad = y_arr[(y_arr < UNLABELLED) | (y_arr >= len(self.classes))]
        if bad.size:
            raise ValueError(f"label {int(bad[0])} outside the {len(self.classes)} classes")
        sl = slice(self.count, self.count + k)
        self.x[sl] = x
        self.y[sl] = y_arr
        self.lengths[sl] = np.asarray(lengths if lengths is not None else np.full(k, self.T), dtype=np.int64)
        self.names.extend(str(s) for s in names)
        self.count += k

    def finalize(self) -> Path:
        """Flush, write the small arrays and ``meta.json``, publish atomically."""
        if self.count != self.n:
            raise ValueError(f"{self.count} of {self.n} sequences written")
        self.x.flush()
        del self.x
        np.save(self.tmp / "y.npy", self.y)
        np.save(self.tmp / "lengths.npy", self.lengths)
        meta = _meta_dict(self.n, self.T, self.V, self.dtype, self.classes, self.layout, self.fps, self.names, self.meta)
        (self.tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        _publish(self.tmp, self.path, self.overwrite)
        self.done = True
        return self.path

    def abort(self) -> None:
        """Drop the temporary directory."""
        if hasattr(self, "x"):
            del self.x
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> CanonicalWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """Finalise on a clean exit (unless done already); abort when the block raised."""
        if exc_type is not None:
            self.abort()
        elif not self.done:
            self.finalize()


_INT_DTYPES = tuple(np.dtype(t) for t in ("<i8", "<i4", "<i2", "|i1", "<u8", "<u4", "<u2", "|u1"))
#: Sequences checked per chunk by the finiteness scan of ``x`` (bounded memory on memmaps).
_SCAN_VALUES = 1 << 22


def _read_array(f: Path, where: str, shape: tuple[int, ...], dtypes: tuple[np.dtype, ...], mmap: bool) -> np.ndarray:
    """Read ``f`` after checking its header declares ``shape`` and one of ``dtypes`` and that
    the file holds the data (no allocation from an untrusted size)."""
    from .npz import read_npy_header

    fwhere = display_path(f)
    name = f.name
    try:
        st = f.stat()
    except (OSError, ValueError):
        raise SsalInputError(where, f"missing {name}") from None
    if not stat.S_ISREG(st.st_mode):
        raise SsalInputError(where, f"missing {name} (not a regular file)")
    try:
        with open(f, "rb") as fh:
            declared, fortran, dtype = read_npy_header(fh, fwhere)
            offset = fh.tell()
            if declared != shape:
                raise SsalInputError(where, f"{name} has shape {declared}, meta.json says {list(shape)}")
            if dtype not in dtypes:
                raise SsalInputError(where, f"{name} has dtype {dtype}, expected {' or '.join(map(str, dtypes))}")
            nbytes = math.prod(shape) * dtype.itemsize
            if offset + nbytes > st.st_size:
                raise SsalInputError(fwhere, f"truncated: {nbytes} bytes of data declared, {st.st_size - offset} found")
            if nbytes == 0:
                return np.zeros(shape, dtype=dtype)
            if mmap:
                return np.memmap(f, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")
            check_value_count(math.prod(shape), fwhere, name)
            data = fh.read(nbytes)
    except OSError as exc:
        raise SsalInputError(fwhere, f"unreadable array ({exc.strerror or exc})") from None
    if len(data) != nbytes:
        raise SsalInputError(fwhere, "truncated array")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()


def release_pages(x: np.ndarray) -> None:
    """Drop the resident file pages of a read-only memmap (no-op for in-memory arrays).

    Pages of a read-only file mapping are page cache: the kernel may keep them, and they count
    in the process's resident size. ``MADV_DONTNEED`` drops them from this mapping; a later
    access simply reads the file again. Streaming readers call this after each chunk so that
    the resident size stays bounded by one chunk whatever the corpus size.
    """
    mm = getattr(x, "_mmap", None)
    advice = getattr(mmap, "MADV_DONTNEED", None)
    if mm is None or advice is None or not hasattr(mm, "madvise"):
        return
    try:
        mm.madvise(advice)
    except (OSError, ValueError):  # pragma: no cover - platform without madvise support
        pass


def _check_finite(x: np.ndarray, where: str, names: Sequence[str]) -> None:
    """Refuse a corpus holding NaN or inf, scanning ``x`` in chunks (memmaps stay streamed)."""
    n = x.shape[0]
    per = max(1, int(np.prod(x.shape[1:])))
    step = max(1, _SCAN_VALUES // per)
    for i in range(0, n, step):
        chunk = np.asarray(x[i : i + step])
        ok = np.isfinite(chunk).reshape(chunk.shape[0], -1).all(axis=1)
        if not ok.all():
            j = i + int(np.flatnonzero(~ok)[0])
            raise SsalInputError(where, f"x.npy holds NaN or inf values (first: sequence {j}, {names[j]!r})")
        del chunk
        release_pages(x)


def read_canonical(path: str | os.PathLike[str], layout: SkeletonLayout | None = None, mmap: bool = True) -> GaitDataset:
    """Read a canonical ``.ssal`` directory; ``x`` is a read-only memmap when ``mmap``.

    ``layout`` is needed only when the stored layout is not built in.

    Raises:
        SsalInputError: missing files, unknown format or version, arrays that disagree with
            ``meta.json`` or with each other.
    """
    root = Path(path)
    where = display_path(root)
    if not root.is_dir():
        raise SsalInputError(where, "canonical dataset directory not found")
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        raise SsalInputError(where, "no meta.json (not a canonical .ssal dataset)")
    mwhere = display_path(meta_path)
    try:
        size = meta_path.stat().st_size
        check_json_size(size, mwhere)
        meta = json.loads(meta_path.read_bytes().decode("utf-8-sig"))
    except SsalInputError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise SsalInputError(mwhere, f"unreadable JSON ({str(exc)[:200]})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise SsalInputError(mwhere, f"format is not {FORMAT_NAME!r}")
    version = meta.get("version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise SsalInputError(
            mwhere, f"format version {version!r} is not supported (this ssal reads {FORMAT_VERSION})"
        )
    try:
        if not all(isinstance(meta[k], list) for k in ("shape", "names", "classes")):
            raise TypeError("'shape', 'names' and 'classes' must be lists")
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in meta["shape"]):
            raise TypeError("'shape' must hold integers")
        shape = tuple(int(s) for s in meta["shape"])
        dtype = str(meta["dtype"])
        if not all(isinstance(v, str) for v in meta["names"]) or not all(isinstance(v, str) for v in meta["classes"]):
            raise TypeError("'names' and 'classes' must be lists of texts")
        names = list(meta["names"])
        classes = list(meta["classes"])
        if isinstance(meta["fps"], bool) or not isinstance(meta["fps"], (int, float)):
            raise TypeError(f"fps must be a number, got {str(meta['fps'])[:40]!r}")
        fps = check_fps(meta["fps"], mwhere)
        if not isinstance(meta["layout"], str) or not isinstance(meta["dtype"], str):
            raise TypeError("'layout' and 'dtype' must be texts")
        layout_name = str(meta["layout"])
        if not isinstance(meta.get("meta") or {}, dict):
            raise TypeError("'meta' must be an object")
    except SsalInputError:
        raise
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise SsalInputError(mwhere, f"missing or invalid field ({str(exc)[:200]})") from None
    if len(shape) != 4 or shape[1] != 3 or min(shape) < 0:
        raise SsalInputError(mwhere, f"shape {list(shape)} is not [N, 3, T, V]")
    if dtype not in DTYPES:
        raise SsalInputError(mwhere, f"dtype {dtype!r} is not one of {DTYPES}")
    if layout is None:
        try:
            layout = get_layout(layout_name)
        except SsalInputError as exc:
            raise SsalInputError(mwhere, f"field 'layout': {exc.problem}") from None
    elif layout.name != layout_name:
        raise SsalInputError(where, f"stored layout {layout_name!r} differs from the requested {layout.name!r}")
    if shape[3] != layout.num_joints:
        raise SsalInputError(where, f"x has {shape[3]} joints, layout {layout.name} has {layout.num_joints}")
    n = shape[0]
    if len(names) != n:
        raise SsalInputError(where, f"{n} sequences in meta.json but {len(names)} names")
    groups = meta.get("groups")
    if groups is not None and (not isinstance(groups, list) or len(groups) != n
                               or not all(isinstance(g, str) for g in groups)):
        raise SsalInputError(mwhere, f"'groups' must be a list of {n} texts (one per sequence)")
    x = _read_array(root / "x.npy", where, shape, (np.dtype(dtype),), mmap)
    y = _read_array(root / "y.npy", where, (n,), _INT_DTYPES, False)
    lengths = _read_array(root / "lengths.npy", where, (n,), _INT_DTYPES, False)
    if n and (y.min() < UNLABELLED or y.max() >= len(classes)):
        raise SsalInputError(where, f"y.npy holds labels outside -1..{len(classes) - 1}")
    if n and lengths.min() < 0:
        raise SsalInputError(where, "lengths.npy holds negative frame counts")
    _check_finite(x, where, names)
    if meta.get("preprocess") is not None:  # the settings the corpus was made with: checked, named
        try:
            PreprocessConfig.from_dict(meta["preprocess"])
        except (SsalInputError, TypeError) as exc:
            problem = exc.one_line() if isinstance(exc, SsalInputError) else str(exc)[:200]
            raise SsalInputError(mwhere, f"field 'preprocess': {problem}") from None
    info = dict(meta.get("meta") or {})
    info["preprocess"] = meta.get("preprocess")
    info["canonical_path"] = where
    return GaitDataset(
        x=x, y=np.asarray(y, dtype=np.int64), names=names, lengths=np.asarray(lengths, dtype=np.int64),
        classes=classes, layout=layout, fps=fps, meta=info, groups=groups,
    )
