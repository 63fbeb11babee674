"""Seeded, stratified data splits, label fractions and k-fold cross-validation.

E-Gait has no official split (prior work used an unseeded random 9:1 split), so every split
here is drawn from a seeded :class:`numpy.random.Generator`, stratified by class, and can be
saved to (and reloaded from) a JSON file that a run directory keeps next to its results.

Labels are ``int`` class indices with ``-1`` for unlabelled sequences. :func:`stratified_split`
treats the unlabelled sequences as one more stratum (they are divided among train/val/test in
the same proportions); :func:`label_fraction` and :func:`kfold` ignore them.

Clips of one recording (``GaitDataset.groups``) must not straddle a split: given ``groups``
(one recording id per index) every function draws *recordings* (stratified by the recording's
label) and hands out all of a recording's clips together; fractions and fold counts are then
counts of recordings. Groups may also be larger units that hold several labels (an actor, a
capture session: ``data.group_by``): then splits and folds draw whole groups without
stratification (a class balance per group does not exist), and :func:`label_fraction`, which
only picks labelled examples inside a training part, draws per index.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SsalInputError, display_path, escape_text, stat_input
from .dataset import UNLABELLED

SPLIT_FORMAT = "ssal-split"
SPLIT_VERSION = 1
#: Parts every split file must hold (a list of indices, not empty).
REQUIRED_PARTS = ("train",)
#: Parts read as empty when a split file leaves them out.
OPTIONAL_PARTS = ("val", "test")


def _labels(y: Any) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise SsalInputError("labels", f"expected a 1-D label array, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise SsalInputError("labels", "labels must be integers (-1 for unlabelled)")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < UNLABELLED:
        raise SsalInputError("labels", f"labels must be >= -1, got {int(arr.min())}")
    return arr


def _allocate(n: int, fractions: tuple[float, float]) -> tuple[int, int]:
    """Sizes of the val and test parts of an ``n``-member stratum.

    Rounded to the nearest count; a part with a positive fraction gets at least one member as
    long as the train part keeps at least one.
    """
    counts = [int(round(f * n)) for f in fractions]
    for k, f in enumerate(fractions):
        if f > 0 and counts[k] == 0 and n - sum(counts) > 1:
            counts[k] = 1
    while sum(counts) > n - 1 and sum(counts) > 0 and n > 0:
        k = int(np.argmax(counts))
        counts[k] -= 1
    return counts[0], counts[1]


def _group_labels(labels: np.ndarray, groups: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(group index of each entry, label of each group)`` for recording ids ``groups``."""
    g = np.asarray([str(v) for v in groups])
    if g.shape != labels.shape:
        raise SsalInputError("groups", f"expected one recording id per label ({labels.shape[0]}), got {g.shape[0]}")
    uniq, inv = np.unique(g, return_inverse=True)
    glab = np.full(len(uniq), UNLABELLED, dtype=np.int64)
    mixed = False
    for k in range(len(uniq)):
        vals = np.unique(labels[inv == k])
        vals = vals[vals != UNLABELLED]
        mixed = mixed or len(vals) > 1
        if len(vals):
            glab[k] = vals[0]
    if mixed:  # groups of several labels: one stratum (module docstring)
        glab[:] = 0
    return inv.astype(np.int64), glab


def _mixed(labels: np.ndarray, groups: Any) -> bool:
    """Whether some group holds two different labels."""
    seen: dict[str, int] = {}
    for g, lab in zip(groups, labels):
        if lab != UNLABELLED and seen.setdefault(str(g), int(lab)) != lab:
            return True
    return False


def _members(inv: np.ndarray, picked_groups: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.isin(inv, picked_groups)).astype(np.int64)


def stratified_split(y: Any, val: float = 0.1, test: float = 0.1, seed: int = 0,
                     groups: Any = None) -> dict[str, np.ndarray]:
    """Split indices into ``train``/``val``/``test``, stratified by class.

    Each class (and the unlabelled sequences, as one stratum) is shuffled with ``seed`` and
    divided in the proportions ``1 - val - test : val : test``; every class gets at least one
    member in each part with a positive fraction where it has enough members (>= 3).

    Args:
        y: ``(N,)`` class indices, -1 for unlabelled.
        val: fraction for validation (0 allowed: empty ``val``).
        test: fraction for test (0 allowed: empty ``test``).
        seed: random seed.
        groups: recording id per index; recordings are split, not indices (module docstring).

    Returns:
        ``{"train": idx, "val": idx, "test": idx}``, sorted int64 index arrays that together
        hold each index exactly once.

    Raises:
        SsalInputError: fractions outside ``[0, 1)`` or summing to 1 or more.
    """
    labels = _labels(y)
    if groups is not None:
        inv, glab = _group_labels(labels, groups)
        parts_g = stratified_split(glab, val=val, test=test, seed=seed)
        return {k: _members(inv, v) for k, v in parts_g.items()}
    for name, f in (("val", val), ("test", test)):
        if not (0.0 <= float(f) < 1.0):
            raise SsalInputError(f"split.{name}", f"fraction must be in [0, 1), got {f}")
    if val + test >= 1.0:
        raise SsalInputError("split", f"val + test must be below 1, got {val} + {test}")
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n_val, n_test = _allocate(len(members), (float(val), float(test)))
        parts["val"].append(members[:n_val])
        parts["test"].append(members[n_val : n_val + n_test])
        parts["train"].append(members[n_val + n_test :])
    return {k: np.sort(np.concatenate(v)).astype(np.int64) if v else np.zeros(0, np.int64) for k, v in parts.items()}


def label_fraction(y: Any, fraction: float, seed: int = 0, min_per_class: int = 1, groups: Any = None) -> np.ndarray:
    """A class-balanced random subset of the labelled indices (for semi-supervised training).

    From each class, ``max(min_per_class, round(fraction * n_c))`` members are drawn (all of
    them if the class is smaller). For one ``seed`` the subsets are nested: the indices picked
    for a smaller fraction are contained in those for a larger one.

    Args:
        y: ``(N,)`` class indices; -1 (unlabelled) entries are never picked.
        fraction: share of each class to keep, in ``(0, 1]``.
        seed: random seed.
        min_per_class: least number kept per class.
        groups: recording id per index: whole recordings are drawn (``fraction`` and
            ``min_per_class`` count recordings) and all their labelled clips returned; groups
            of several labels are ignored (module docstring).

    Returns:
        Sorted int64 indices into ``y``.
    """
    labels = _labels(y)
    if not (0.0 < float(fraction) <= 1.0):
        raise SsalInputError("label_fraction", f"fraction must be in (0, 1], got {fraction}")
    if min_per_class < 0:
        raise SsalInputError("label_fraction", f"min_per_class must be >= 0, got {min_per_class}")
    if groups is not None and not _mixed(labels, groups):
        inv, glab = _group_labels(labels, groups)
        picked_g = label_fraction(glab, fraction, seed=seed, min_per_class=min_per_class)
        idx = _members(inv, picked_g)
        return idx[labels[idx] != UNLABELLED]
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels[labels != UNLABELLED]):
        members = rng.permutation(np.flatnonzero(labels == c))
        k = min(len(members), max(int(min_per_class), int(round(fraction * len(members)))))
        picked.append(members[:k])
    if not picked:
        return np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate(picked)).astype(np.int64)


def kfold(y: Any, k: int = 10, seed: int = 0, groups: Any = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold cross-validation over the labelled indices.

    Each class is shuffled and dealt round-robin onto the folds (starting at a running offset
    so fold sizes differ by at most one); unlabelled entries appear in no fold. With ``groups``
    the recordings are dealt onto the folds (``k`` at most the number of labelled recordings).

    Returns:
        ``k`` pairs ``(train_idx, test_idx)`` of sorted int64 arrays; the test parts are
        disjoint and together cover every labelled index once.

    Raises:
        SsalInputError: ``k < 2`` or more folds than labelled sequences.
    """
    labels = _labels(y)
    if groups is not None:
        inv, glab = _group_labels(labels, groups)
        if int(k) > int(np.sum(glab != UNLABELLED)) and int(k) >= 2:
            raise SsalInputError("kfold", f"k = {k} folds need at least {k} labelled recordings, "
                                          f"got {int(np.sum(glab != UNLABELLED))}")
        out = []
        for tr_g, te_g in kfold(glab, k=k, seed=seed):
            tr, te = _members(inv, tr_g), _members(inv, te_g)
            out.append((tr[labels[tr] != UNLABELLED], te[labels[te] != UNLABELLED]))
        return out
    labelled = np.flatnonzero(labels != UNLABELLED)
    if int(k) < 2:
        raise SsalInputError("kfold", f"k must be at least 2, got {k}")
    if int(k) > len(labelled):
        raise SsalInputError("kfold", f"k = {k} folds need at least {k} labelled sequences, got {len(labelled)}")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(labels), dtype=np.int64)
    offset = 0
    for c in np.unique(labels[labelled]):
        members = rng.permutation(np.flatnonzero(labels == c))
        fold_of[members] = (offset + np.arange(len(members))) % k
        offset += len(members)
    folds = []
    for f in range(int(k)):
        test_idx = labelled[fold_of[labelled] == f]
        train_idx = labelled[fold_of[labelled] != f]
        folds.append((train_idx.astype(np.int64), test_idx.astype(np.int64)))
    return folds


# --------------------------------------------------------------------------------------
# JSON files
# --------------------------------------------------------------------------------------


def save_split(split: Mapping[str, Any], path: str | os.PathLike[str], meta: Mapping[str, Any] | None = None,
               groups: Any = None) -> Path:
    """Write a split (``name -> indices``) as JSON, atomically (temp file + ``os.replace``).

    ``meta`` (e.g. seed, fractions, dataset name) is stored alongside and ignored on load.
    With ``groups`` (recording id per dataset index) the file also lists, under ``"groups"``,
    the recordings of each part, so a reader can check that none is on two sides.
    """
    path = Path(path)
    doc = {
        "format": SPLIT_FORMAT,
        "version": SPLIT_VERSION,
        "parts": {str(k): [int(i) for i in np.asarray(v).ravel()] for k, v in split.items()},
        "meta": dict(meta or {}),
    }
    if groups is not None:
        g = [str(v) for v in groups]
        doc["groups"] = {str(k): sorted({g[int(i)] for i in np.asarray(v).ravel()}) for k, v in split.items()}
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise SsalInputError(path, "the folder to write the split into does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_split(path: str | os.PathLike[str], n: int | None = None) -> dict[str, np.ndarray]:
    """Read a split written by :func:`save_split`.

    Args:
        path: the JSON file.
        n: if given, the dataset size the indices must fit (``0 <= i < n``).

    Raises:
        SsalInputError: missing or unreadable file, not a split file, non-integer, negative,
            out-of-range or repeated indices.
    """
    from .preprocess import check_json_size

    where = display_path(path)
    p = Path(path)
    st = stat_input(p, where)
    if not stat.S_ISREG(st.st_mode):
        raise SsalInputError(where, "split file is not a regular file")
    check_json_size(st.st_size, where)
    try:
        with open(p, "rb") as fh:
            raw = fh.read(st.st_size + 1)
        doc = json.loads(raw.decode("utf-8-sig"))
    except OSError as exc:
        raise SsalInputError(where, f"cannot read split file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise SsalInputError(where, "cannot read split file (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise SsalInputError(where, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise SsalInputError(where, "not a split file (JSON nested too deeply)") from None
    except ValueError as exc:  # e.g. an integer literal with too many digits
        raise SsalInputError(where, f"not valid JSON ({str(exc)[:100]})") from None
    if not isinstance(doc, dict) or doc.get("format") != SPLIT_FORMAT or not isinstance(doc.get("parts"), dict):
        raise SsalInputError(where, f"not an ssal split file (expected format {SPLIT_FORMAT!r} with 'parts')")
    version = doc.get("version", SPLIT_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= SPLIT_VERSION:
        shown = version if isinstance(version, (int, float)) and abs(version) < 1e12 else str(version)[:20]
        raise SsalInputError(where, f"split file version {shown!r} is not supported (this ssal reads 1..{SPLIT_VERSION})")
    missing = [k for k in REQUIRED_PARTS if k not in doc["parts"]]
    if missing:
        raise SsalInputError(where, f"split file has no part {missing[0]!r} (needs {', '.join(REQUIRED_PARTS)})")
    if len(doc["parts"]) > 100:
        raise SsalInputError(where, f"split file has {len(doc['parts'])} parts, more than 100")
    limit = np.iinfo(np.int64).max
    out: dict[str, np.ndarray] = {}
    seen: set[int] = set()
    for name, values in doc["parts"].items():
        shown = escape_text(name, 40)
        if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise SsalInputError(where, f"part {shown!r} must be a list of integer indices")
        if values and (min(values) < 0 or max(values) > limit):
            bad = min(values) if min(values) < 0 else max(values)
            raise SsalInputError(where, f"part {shown!r} holds an index out of range ({str(bad)[:30]})")
        idx = np.asarray(values, dtype=np.int64)
        if n is not None and idx.size and idx.max() >= n:
            raise SsalInputError(where, f"part {shown!r} holds index {int(idx.max())}, the dataset has {n} sequences")
        overlap = seen.intersection(values)
        if overlap or len(set(values)) != len(values):
            raise SsalInputError(where, f"part {shown!r} repeats indices or shares them with another part")
        seen.update(values)
        out[str(name)] = idx
    if out["train"].size == 0:
        raise SsalInputError(where, "part 'train' is empty")
    for name in OPTIONAL_PARTS:
        out.setdefault(name, np.zeros(0, dtype=np.int64))
    return out
