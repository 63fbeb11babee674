"""A cache of the cut benchmark corpora (``ssal benchmark``), as canonical ``.ssal`` corpora.

Reading a spec's BVH folders and cutting them into clips takes about a minute for
``bandai-affect``; every run read them again. Each folder read of a benchmark (the evaluation
clips, and each source of the pretraining corpus) is now kept as one canonical corpus
(:mod:`ssal.data.canonical`: clips, labels, classes, names, recording ids, lengths and the
reading's provenance) in the cache folder, and read back on the next run when its key matches.

The key is the SHA-256 of a JSON record of everything the read depends on:

* :data:`CACHE_VERSION` (bumped when the reader's output changes), the canonical format
  version and ssal's version;
* the reading settings: the folder (relative to the data root), the labels (the spec's
  ``pattern``, ``label``, ``rename``, ``classes``; none for the pretraining corpus), ``window``
  and ``stride``, the preprocessing defaults, layout and frame rate;
* the selected files, each as ``(path relative to the data root, size, mtime_ns)``, in order,
  and the folder's ``labels.csv`` when there is one. The spec's filters (``where``,
  ``where_not``, the pattern's matches), ``pretrain_limit`` and the held-out test recordings
  act on the corpus only through which files they select, so they enter the key through that
  list: a changed filter that selects other files is another key, and a touched or resized
  source file is another key.

Where: ``--cache DIR``, else ``$SSAL_CACHE_DIR``, else ``$XDG_CACHE_HOME/ssal/corpora``, else
``~/.cache/ssal/corpora`` (:func:`default_cache_dir`); never inside the data root (refused).
An entry is ``<folder>-<key>.ssal``; it is written by :func:`ssal.data.canonical.write_canonical`
into a temporary directory beside it and renamed into place, never replacing an entry another
process published first, so a reader sees a whole entry or none. An entry that cannot be read
(truncated, damaged, another key inside) is logged in one line, removed and rebuilt; a cache
folder that cannot be written is logged in one line and the run goes on without it. Entries
are never evicted: delete the folder to reclaim the space.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..data.canonical import FORMAT_VERSION, read_canonical, write_canonical
from ..data.dataset import GaitDataset
from ..errors import SsalInputError, display_path

#: Version of the cache's entries: bump it when what a folder read produces changes, so older
#: entries are never read again.
CACHE_VERSION = 1
#: The environment variable naming the cache folder.
CACHE_ENV = "SSAL_CACHE_DIR"
#: The key of the provenance record an entry carries in its ``meta`` (checked on reading).
ENTRY_META = "corpus_cache"


def default_cache_dir() -> Path:
    """``$SSAL_CACHE_DIR``, else ``$XDG_CACHE_HOME/ssal/corpora``, else ``~/.cache/ssal/corpora``
    (an empty or relative ``XDG_CACHE_HOME`` is ignored, as the XDG specification says)."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "ssal" / "corpora"


def file_stamp(root: Path, path: Path) -> list[Any]:
    """``[path relative to root, size, mtime_ns]`` of one source file."""
    st = path.stat()
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        rel = path.as_posix()
    return [rel, int(st.st_size), int(st.st_mtime_ns)]


@dataclass
class CorpusCache:
    """The cache folder of cut corpora and what it logs (module docstring)."""

    folder: Path
    log: Callable[[str], None] = print

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        self._unwritable = False

    def key(self, settings: Mapping[str, Any], root: Path, files: Sequence[Path]) -> str:
        """The hex SHA-256 key of a folder read: ``settings`` (JSON-able) and the files' stamps."""
        from .. import __version__
        from ..data.preprocess import PreprocessConfig

        record = {"cache_version": CACHE_VERSION, "canonical_version": FORMAT_VERSION, "ssal": __version__,
                  "preprocess": PreprocessConfig().to_dict(), "settings": settings,
                  "files": [file_stamp(root, p) for p in files]}
        text = json.dumps(record, sort_keys=True, separators=(",", ":"), default=list)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def entry(self, key: str, label: str) -> Path:
        """The entry path of ``key``: ``<label>-<key[:32]>.ssal`` (label made file-name safe)."""
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-.")[:60] or "corpus"
        return self.folder / f"{slug}-{key[:32]}.ssal"

    def load(self, key: str, label: str, what: str) -> GaitDataset | None:
        """The cached dataset of ``key`` in memory, or ``None`` (absent, or unreadable: then
        logged, removed and left to be rebuilt). Its ``meta`` is the reader's, without the
        cache's own record."""
        path = self.entry(key, label)
        if not path.exists():
            return None
        try:
            ds = read_canonical(path, mmap=True)
            meta = dict(ds.meta)
            stamp = meta.pop(ENTRY_META, None)
            if not isinstance(stamp, dict) or stamp.get("key") != key:
                raise SsalInputError(display_path(path), "holds another corpus than its name says")
            meta.pop("canonical_path", None)
            x = np.array(ds.x)  # in memory, writable: as the BVH reader gives it
            loaded = replace(ds, x=x, meta=meta)
        except (SsalInputError, OSError, ValueError, TypeError, KeyError) as exc:
            problem = exc.one_line() if isinstance(exc, SsalInputError) else f"{type(exc).__name__}: {exc}"
            self.log(f"corpus cache: {what}: ignoring an unreadable entry ({problem[:300]}); rebuilding it")
            self._remove(path)
            return None
        self.log(f"corpus cache: read the cached {what} ({len(loaded)} clips) from {display_path(path)}")
        return loaded

    def store(self, key: str, label: str, what: str, ds: GaitDataset) -> None:
        """Write ``ds`` as the entry of ``key`` (atomically; an entry another process published
        first is kept). A folder that cannot be written is logged once and skipped."""
        if self._unwritable:
            return
        path = self.entry(key, label)
        meta = {**ds.meta, ENTRY_META: {"key": key, "version": CACHE_VERSION}}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_canonical(replace(ds, meta=meta), path, dtype=ds.x.dtype, overwrite=False)
        except SsalInputError as exc:
            if path.is_dir():  # another process published the same entry first: fine
                return
            self._give_up(exc.one_line())
            return
        except OSError as exc:
            if path.is_dir():
                return
            self._give_up(f"{display_path(self.folder)}: {exc.strerror or exc}")
            return
        self.log(f"corpus cache: wrote the {what} to {display_path(path)}")

    def _give_up(self, problem: str) -> None:
        self._unwritable = True
        self.log(f"corpus cache: cannot write ({problem[:300]}); going on without the cache")

    def _remove(self, path: Path) -> None:
        """Move a bad entry aside (atomic) and delete it; failures are ignored."""
        aside = path.with_name(f".{path.name}.bad-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            os.replace(path, aside)
        except OSError:
            return
        shutil.rmtree(aside, ignore_errors=True)


def open_cache(folder: str | os.PathLike[str] | None, root: Path,
               log: Callable[[str], None] = print) -> CorpusCache:
    """The cache in ``folder`` (``None``: :func:`default_cache_dir`), refused (one line, naming
    the folder) when it is, contains or lies inside the data root ``root``."""
    from ..outputs import check_not_input

    path = Path(folder).expanduser() if folder is not None else default_cache_dir()
    check_not_input(path, [root], what="corpus cache (--cache, $SSAL_CACHE_DIR)")
    return CorpusCache(path, log)


__all__ = ["CACHE_ENV", "CACHE_VERSION", "CorpusCache", "default_cache_dir", "file_stamp", "open_cache"]
