"""Classification metrics: confusion matrix, top-1, macro-F1, per-class accuracy, reports.

All functions take integer class indices as NumPy arrays (or anything ``np.asarray`` accepts)
and return plain Python / NumPy values. Conventions:

* ``confusion[i, j]`` counts samples of true class ``i`` predicted as class ``j``.
* A class with no true sample has an undefined per-class accuracy (recall): ``nan`` in
  :func:`per_class_accuracy`, ``None`` in the JSON-ready :func:`classification_report`.
* Macro-F1 averages the F1 of the classes that occur in the truth *or* in the predictions.
  A class absent from both has F1 = 0/0 and is left out of the mean (it says nothing about the
  classifier); a class that occurs in the truth but is never predicted, or that is predicted
  but never occurs, has F1 = 0 and counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np


def _as_labels(y: Any, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """Counts ``(num_classes, num_classes)`` int64: row = true class, column = predicted class."""
    t = _as_labels(y_true, "y_true")
    p = _as_labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.shape[0]} vs {p.shape[0]}")
    for arr, name in ((t, "y_true"), (p, "y_pred")):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"{name} holds a class index outside [0, {num_classes})")
    flat = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Top-1 accuracy in [0, 1]; ``nan`` for empty input."""
    t = _as_labels(y_true, "y_true")
    p = _as_labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.shape[0]} vs {p.shape[0]}")
    if t.size == 0:
        return float("nan")
    return float(np.mean(t == p))


def per_class_accuracy(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """Recall of each class ``(num_classes,)`` float64; ``nan`` for a class with no true sample."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    support = cm.sum(axis=1)
    out = np.full(num_classes, np.nan)
    has = support > 0
    out[has] = np.diag(cm)[has] / support[has]
    return out


def f1_per_class(cm: np.ndarray) -> np.ndarray:
    """F1 of each class from a confusion matrix; ``nan`` where the class is in neither truth
    nor prediction (0/0)."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    denom = cm.sum(axis=0) + cm.sum(axis=1)  # 2 tp + fp + fn
    out = np.full(cm.shape[0], np.nan)
    ok = denom > 0
    out[ok] = 2.0 * tp[ok] / denom[ok]
    return out


def macro_f1(y_true: Any, y_pred: Any, num_classes: int) -> float:
    """Unweighted mean F1 over the classes present in the truth or the predictions.

    Classes absent from both are excluded (see the module docstring); ``nan`` for empty input.
    """
    f1 = f1_per_class(confusion_matrix(y_true, y_pred, num_classes))
    if np.all(np.isnan(f1)):
        return float("nan")
    return float(np.nanmean(f1))


def _nan_to_none(v: float) -> float | None:
    return None if not np.isfinite(v) else float(v)


def classification_report(y_true: Any, y_pred: Any, classes: Sequence[str]) -> dict[str, Any]:
    """A JSON-ready summary of a classifier's predictions.

    Returns:
        ``{"n": int, "top1": float, "macro_f1": float, "per_class": {name: recall or None},
        "support": {name: int}, "classes": [names], "confusion": [[int]] (row = truth)}``.
        Undefined values (empty input, classes without samples) are ``None``.
    """
    k = len(classes)
    cm = confusion_matrix(y_true, y_pred, k)
    pca = per_class_accuracy(y_true, y_pred, k)
    support = cm.sum(axis=1)
    return {
        "n": int(cm.sum()),
        "top1": _nan_to_none(accuracy(y_true, y_pred)),
        "macro_f1": _nan_to_none(macro_f1(y_true, y_pred, k)),
        "per_class": {c: _nan_to_none(a) for c, a in zip(classes, pca)},
        "support": {c: int(s) for c, s in zip(classes, support)},
        "classes": list(classes),
        "confusion": cm.tolist(),
    }


def mean_std(values: Iterable[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value) ignoring ``None``."""
    vals = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if vals.size == 0:
        return None, None
    std = float(vals.std(ddof=1)) if vals.size > 1 else 0.0
    return float(vals.mean()), std


def summarize_runs(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean +- std of ``top1`` and ``macro_f1`` over runs (seeds, folds).

    Each run is a mapping holding a ``"report"`` (a :func:`classification_report`) or the
    report's keys directly. Returns ``{"mean", "std"}`` (top-1), ``{"macro_f1_mean",
    "macro_f1_std"}`` and ``"runs"`` (the runs as given). The standard deviation is the sample
    standard deviation over runs (ddof=1).
    """
    reports = [r.get("report", r) for r in runs]
    m, s = mean_std(r.get("top1") for r in reports)
    fm, fs = mean_std(r.get("macro_f1") for r in reports)
    return {"mean": m, "std": s, "macro_f1_mean": fm, "macro_f1_std": fs, "runs": list(runs)}
