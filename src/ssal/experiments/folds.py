"""Folds of a benchmark spec: which recordings train and which test, per task block, and the
seeded few-label draws (the same for every representation, so comparisons are paired)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SsalInputError
from .corpus import EvalData
from .spec import SplitSpec


@dataclass(frozen=True)
class Fold:
    """One train/test split of one task block.

    Attributes:
        name: ``<block>/<held-out value>`` (``block`` is ``all`` without ``split.within``).
        part: ``"test"`` (headline) or ``"val"`` (folds for choosing settings).
        classes: the global class indices of this block, in order (local label = position).
        train: clip indices of the training recordings; test: of the test recordings.
    """

    name: str
    part: str
    classes: tuple[int, ...]
    train: np.ndarray
    test: np.ndarray

    def local(self, y: np.ndarray) -> np.ndarray:
        """Global labels -> this block's label indices."""
        lut = {c: i for i, c in enumerate(self.classes)}
        return np.array([lut[int(v)] for v in y], dtype=np.int64)


def _matches(values: dict[str, np.ndarray], sel: dict[str, tuple[str, ...]], n: int) -> np.ndarray:
    keep = np.ones(n, bool)
    for k, allowed in sel.items():
        keep &= np.isin(values[k], list(allowed))
    return keep


def make_folds(data: EvalData, split: SplitSpec, keep_test: tuple[str, ...] | None = None) -> list[Fold]:
    """Folds of ``split`` over ``data`` (module docstring). ``keep_test``: only these held-out
    values among the test folds (a quick schedule); validation folds are always kept."""
    ds = data.dataset
    n = len(ds)
    names = set().union(*(r.fields for r in data.recordings.values()))
    needed = {split.by} | ({split.within} if split.within else set()) | set(split.train) | set(split.test)
    missing = sorted(needed - names)
    if missing:
        raise SsalInputError("split", f"unknown field(s) {', '.join(missing)}; the recordings have {', '.join(sorted(names))}")
    values = {k: data.field_of_clips(k) for k in needed}
    blocks = sorted(set(values[split.within])) if split.within else ["all"]
    folds: list[Fold] = []
    for block in blocks:
        in_block = values[split.within] == block if split.within else np.ones(n, bool)
        classes = tuple(sorted({int(v) for v in ds.y[in_block]}))
        if len(classes) < 2:
            continue
        if split.scheme == "leave-one-out":
            held = sorted(set(values[split.by][in_block]))
            for v in held:
                part = "val" if v in split.validation else "test"
                if part == "test" and keep_test is not None and v not in keep_test:
                    continue
                te = np.flatnonzero(in_block & (values[split.by] == v))
                tr = np.flatnonzero(in_block & (values[split.by] != v))
                folds.append(Fold(f"{block}/{v}", part, classes, tr, te))
        else:
            tr = np.flatnonzero(in_block & _matches(values, split.train, n))
            te = np.flatnonzero(in_block & _matches(values, split.test, n))
            folds.append(Fold(f"{block}/fixed", "test", classes, tr, te))
    for f in folds:
        groups = ds.recording_ids
        shared = {groups[i] for i in f.train} & {groups[i] for i in f.test}
        assert not shared, f"fold {f.name}: recordings on both sides {sorted(shared)[:3]}"
        if not len(f.train) or not len(f.test):
            raise SsalInputError("split", f"fold {f.name} has an empty training or test part")
    if not folds:
        raise SsalInputError("split", "the split makes no fold with two or more classes")
    return folds


def few_label_draw(data: EvalData, fold: Fold, fold_index: int, per_class: int, draw: int, seed: int = 0
                   ) -> np.ndarray:
    """Clip indices of ``per_class`` training recordings per class, drawn with a seed of
    ``(seed, fold, per_class, draw)`` (every representation sees the same draw)."""
    rng = np.random.default_rng([seed, fold_index, per_class, draw])
    groups = np.asarray(data.dataset.recording_ids)
    y = data.dataset.y
    chosen: list[np.ndarray] = []
    for c in fold.classes:
        idx = fold.train[y[fold.train] == c]
        recs = sorted(set(groups[idx]))
        pick = set(rng.choice(recs, size=min(per_class, len(recs)), replace=False).tolist())
        chosen.append(idx[np.isin(groups[idx], list(pick))])
    return np.concatenate(chosen)


__all__ = ["Fold", "make_folds", "few_label_draw"]
