"""Reading a benchmark spec's files: the labelled evaluation clips and the unlabelled
pretraining corpus, with the fields (name fields, ``session`` from the header, ``file``) of
every recording.

With a :class:`~.corpus_cache.CorpusCache` each folder read (the evaluation clips, each source
of the pretraining corpus) is read back from the cache when its key matches (same reading
settings, same selected files with the same sizes and modification times) and written there
after a read from BVH; the datasets are the same either way, array for array."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.bvh import read_bvh_folder
from ..data.bvh_header import session_of
from ..data.dataset import UNLABELLED, GaitDataset
from ..data.names import NameLabels
from ..errors import SsalInputError, display_path
from .corpus_cache import CorpusCache
from .spec import EvaluationSpec, FileSelection, PretrainingSpec


@dataclass
class Recording:
    """One file: its path and fields."""

    path: Path
    fields: dict[str, str]


@dataclass
class EvalData:
    """The labelled clips of a benchmark and the fields of their recordings."""

    dataset: GaitDataset
    recordings: dict[str, Recording]  # recording id (file name) -> recording

    @property
    def clip_recordings(self) -> list[str]:
        return self.dataset.recording_ids

    def field_of_clips(self, name: str) -> np.ndarray:
        """The value of field ``name`` for every clip."""
        return np.array([self.recordings[g].fields.get(name, "") for g in self.clip_recordings])


def list_recordings(root: Path, sel: FileSelection) -> list[Recording]:
    """The files of ``sel.folder`` whose fields pass its filters (sorted by name); a name that does
    not match the pattern, or an empty selection, is an error naming the file or folder."""
    folder = root / sel.folder
    where = display_path(folder)
    if not folder.is_dir():
        raise SsalInputError(where, "folder not found (check --data and the spec's folder)")
    spec = NameLabels(sel.pattern, label_field=_any_field(sel.pattern))
    out: list[Recording] = []
    for p in sorted(q for q in folder.iterdir() if q.suffix.lower() == ".bvh" and q.is_file()):
        f = spec.fields(p.stem)
        if f is None:
            raise SsalInputError(display_path(p), f"file name does not match the spec's pattern {sel.pattern!r}")
        f = {**f, "file": p.stem}
        f["session"] = session_of(p)
        if sel.keeps(f):
            out.append(Recording(p, f))
    if not out:
        raise SsalInputError(where, f"no file matches the spec's filters (pattern {sel.pattern!r})")
    return out


def _any_field(pattern: str) -> str | None:
    """A field of a template pattern (NameLabels needs one as the label; regexes pick their own)."""
    m = re.search(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", pattern)
    return m.group(1) if m else None


def read_evaluation(root: Path, ev: EvaluationSpec, cache: CorpusCache | None = None) -> EvalData:
    """The labelled clips of the spec (``window`` / ``stride``), labels from ``ev.label``;
    through ``cache`` when given (module docstring)."""
    recs = list_recordings(root, ev)
    settings = {"folder": ev.folder, "labels": {"pattern": ev.pattern, "label": ev.label, "rename": dict(ev.rename),
                                                "classes": list(ev.classes) if ev.classes else None},
                "window": ev.window, "stride": ev.stride}

    def read() -> GaitDataset:
        labels = NameLabels(ev.pattern, label_field=ev.label, rename=dict(ev.rename),
                            classes=list(ev.classes) if ev.classes else None)
        return read_bvh_folder(root / ev.folder, name_labels=labels, window=ev.window, stride=ev.stride,
                               only=[r.path.name for r in recs])

    ds = _cached_read(cache, root, ev.folder, recs, settings, "evaluation clips", read)
    by_name = {r.path.name: r for r in recs}
    return EvalData(ds, {g: by_name[g] for g in dict.fromkeys(ds.recording_ids)})


def read_pretraining(root: Path, pre: PretrainingSpec, held_out: Sequence[str], limit: int | None = None,
                     cache: CorpusCache | None = None) -> tuple[GaitDataset, list[Recording]]:
    """The unlabelled pretraining clips: every source's files minus ``held_out`` recordings
    (file names), at most ``limit`` files per source (evenly spaced over the sorted list);
    each source through ``cache`` when given (module docstring)."""
    held = set(held_out)
    parts: list[GaitDataset] = []
    used: list[Recording] = []
    for sel in pre.sources:
        recs = [r for r in list_recordings(root, sel) if r.path.name not in held]
        if limit is not None and len(recs) > limit:
            pick = np.linspace(0, len(recs) - 1, limit).round().astype(int)
            recs = [recs[i] for i in dict.fromkeys(pick.tolist())]
        if not recs:
            continue
        settings = {"folder": sel.folder, "labels": None, "window": pre.window, "stride": pre.stride}

        def read(sel: FileSelection = sel, recs: list[Recording] = recs) -> GaitDataset:
            return read_bvh_folder(root / sel.folder, window=pre.window, stride=pre.stride,
                                   only=[r.path.name for r in recs], labels=None)

        ds = _cached_read(cache, root, sel.folder, recs, settings, "pretraining clips", read)
        ds.y[:] = UNLABELLED
        parts.append(ds)
        used.extend(recs)
    if not parts:
        raise SsalInputError(display_path(root), "the pretraining corpus is empty")
    clash = held & {r.path.name for r in used}
    assert not clash, f"evaluation recordings in the pretraining corpus: {sorted(clash)[:3]}"
    return concat_datasets(parts, display_path(root)), used


def _cached_read(cache: CorpusCache | None, root: Path, folder: str, recs: Sequence[Recording],
                 settings: dict[str, Any], what: str, read: Callable[[], GaitDataset]) -> GaitDataset:
    """``read()`` of the files ``recs`` of ``root / folder``, or its cached result.

    The key holds ``settings``, the files (and the folder's ``labels.csv``, which a reader
    without name labels takes its labels from). The paths in the dataset's ``meta`` are those
    of this read, whichever run wrote the entry."""
    if cache is None:
        return read()
    files = [r.path for r in recs]
    csv = root / folder / "labels.csv"
    key = cache.key(settings, root, files + ([csv] if csv.is_file() else []))
    label = f"{folder}-{what.split()[0]}"
    ds = cache.load(key, label, f"{what} of {folder}")
    if ds is not None:
        where = root / folder
        ds.meta["source"] = display_path(where)
        if ds.meta.get("labels_path") is not None:
            ds.meta["labels_path"] = display_path(csv)
        return ds
    ds = read()
    cache.store(key, label, f"{what} of {folder}", ds)
    return ds


def concat_datasets(parts: Sequence[GaitDataset], source: str) -> GaitDataset:
    """Stack datasets of one layout and clip length (classes of the first)."""
    return GaitDataset(
        x=np.concatenate([p.x for p in parts]), y=np.concatenate([p.y for p in parts]),
        names=[n for p in parts for n in p.names], lengths=np.concatenate([p.lengths for p in parts]),
        classes=list(parts[0].classes), layout=parts[0].layout, fps=parts[0].fps,
        meta={**parts[0].meta, "source": source}, groups=[g for p in parts for g in p.recording_ids],
    )


__all__ = ["EvalData", "Recording", "list_recordings", "read_evaluation", "read_pretraining", "concat_datasets"]
