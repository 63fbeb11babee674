"""The canonical on-disk format: a ``NAME.ssal/`` directory.

Contents:

* ``meta.json``: ``format`` (``"ssal-canonical"``), ``version`` (:data:`FORMAT_VERSION`),
  ``layout`` (a built-in layout name), ``classes``, ``fps``, ``names``, ``shape``
  ``[N, C, T, V]``, ``dtype`` (``float32`` or ``float16``), ``preprocess`` (the settings
  used) and ``meta`` (other provenance);
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
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import SsalInputError, display_path
from ..skeleton import EGAIT16, SkeletonLayout, get_layout
from .dataset import UNLABELLED, GaitDataset

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
    names: Sequence[str], meta: dict[str, Any] | None,
) -> dict[str, Any]:
    meta = dict(meta or {})
    return {
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
        meta = _meta_dict(n, t, v, dt, ds.classes, ds.layout, ds.fps, ds.names, ds.meta)
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

    def __enter__(self) -> "CanonicalWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """Finalise on a clean exit (unless done already); abort when the block raised."""
        if exc_type is not None:
            self.abort()
        elif not self.done:
            self.finalize()


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
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SsalInputError(display_path(meta_path), f"unreadable JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise SsalInputError(display_path(meta_path), f"format is not {FORMAT_NAME!r}")
    version = meta.get("version")
    if version != FORMAT_VERSION:
        raise SsalInputError(
            display_path(meta_path), f"format version {version!r} is not supported (this ssal reads {FORMAT_VERSION})"
        )
    try:
        shape = tuple(int(s) for s in meta["shape"])
        dtype = str(meta["dtype"])
        names = [str(s) for s in meta["names"]]
        classes = [str(c) for c in meta["classes"]]
        fps = float(meta["fps"])
        layout_name = str(meta["layout"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SsalInputError(display_path(meta_path), f"missing or invalid field ({exc})") from None
    if layout is None:
        layout = get_layout(layout_name)
    elif layout.name != layout_name:
        raise SsalInputError(where, f"stored layout {layout_name!r} differs from the requested {layout.name!r}")
    arrays = {}
    for name in ("x", "y", "lengths"):
        f = root / f"{name}.npy"
        if not f.is_file():
            raise SsalInputError(where, f"missing {name}.npy")
        try:
            arrays[name] = np.load(f, mmap_mode="r" if (mmap and name == "x") else None, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise SsalInputError(display_path(f), f"unreadable array ({exc})") from None
    x, y, lengths = arrays["x"], arrays["y"], arrays["lengths"]
    if x.shape != shape or len(shape) != 4 or shape[1] != 3:
        raise SsalInputError(where, f"x.npy has shape {x.shape}, meta.json says {list(shape)}")
    if x.dtype.name != dtype or dtype not in DTYPES:
        raise SsalInputError(where, f"x.npy has dtype {x.dtype.name}, meta.json says {dtype}")
    if shape[3] != layout.num_joints:
        raise SsalInputError(where, f"x has {shape[3]} joints, layout {layout.name} has {layout.num_joints}")
    n = shape[0]
    if y.shape != (n,) or lengths.shape != (n,) or len(names) != n:
        raise SsalInputError(
            where, f"{n} sequences in x.npy but y {y.shape}, lengths {lengths.shape}, {len(names)} names"
        )
    if not np.issubdtype(y.dtype, np.integer) or (n and (y.min() < UNLABELLED or y.max() >= len(classes))):
        raise SsalInputError(where, f"y.npy holds labels outside -1..{len(classes) - 1}")
    info = dict(meta.get("meta") or {})
    info["preprocess"] = meta.get("preprocess")
    info["canonical_path"] = where
    return GaitDataset(
        x=x, y=np.asarray(y, dtype=np.int64), names=names, lengths=np.asarray(lengths, dtype=np.int64),
        classes=classes, layout=layout, fps=fps, meta=info,
    )
