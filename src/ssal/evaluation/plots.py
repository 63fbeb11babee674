"""Figures for reports: confusion matrix, training curves, embedding map, label-fraction curve.

Figures are drawn with matplotlib's object API on an Agg canvas (no pyplot, no global
backend switch, no display needed) and written atomically: a temporary file in the target
folder is renamed onto ``path`` once complete.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    FigureCanvasAgg(fig)
    try:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def plot_confusion(
    cm: np.ndarray | Sequence[Sequence[int]],
    classes: Sequence[str],
    path: str | os.PathLike[str],
    title: str = "Confusion matrix",
) -> Path:
    """Confusion matrix as a heat map (colour = row-normalised rate, text = count / rate).

    Rows are true classes, columns predicted classes.
    """
    cm = np.asarray(cm, dtype=np.int64)
    k = len(classes)
    if cm.shape != (k, k):
        raise ValueError(f"confusion matrix shape {cm.shape} does not match {k} classes")
    support = cm.sum(axis=1, keepdims=True)
    rate = np.divide(cm, support, out=np.zeros(cm.shape, dtype=np.float64), where=support > 0)
    fig = Figure(figsize=(1.2 * k + 2.0, 1.1 * k + 1.5))
    ax = fig.add_subplot()
    im = ax.imshow(rate, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    ax.set_xticks(range(k), labels=list(classes), rotation=45, ha="right")
    ax.set_yticks(range(k), labels=list(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{cm[i, j]}\n{rate[i, j]:.0%}", ha="center", va="center",
                    color="white" if rate[i, j] > 0.5 else "black", fontsize=9)
    ax.set_title(title)
    return save_figure(fig, path)


def plot_curves(
    records: Mapping[str, Sequence[Mapping[str, Any]]],
    key: str,
    path: str | os.PathLike[str],
    title: str | None = None,
    x_key: str = "epoch",
) -> Path:
    """One line per method of ``record[key]`` against ``record[x_key]``.

    ``records`` maps a method name to its per-epoch records (e.g. metrics JSON lines or a
    classifier history's ``"epochs"``); records without ``key`` (or with ``None``) are skipped.
    """
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    drawn = 0
    for name, recs in records.items():
        pts = [(r[x_key], r[key]) for r in recs if r.get(key) is not None and x_key in r]
        if not pts:
            continue
        xs, ys = zip(*pts)
        ax.plot(xs, ys, marker="o" if len(pts) < 30 else None, markersize=3, label=name)
        drawn += 1
    if drawn == 0:
        ax.text(0.5, 0.5, f"no '{key}' values", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend()
    ax.set_xlabel(x_key)
    ax.set_ylabel(key)
    ax.grid(alpha=0.3)
    ax.set_title(title or f"{key} against {x_key}")
    return save_figure(fig, path)


def pca_2d(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project ``(N, D)`` onto the first two principal components.

    Returns the ``(N, 2)`` coordinates and the fraction of variance each component explains.
    """
    f = np.asarray(features, dtype=np.float64)
    f = f - f.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(f, full_matrices=False)
    comps = vt[:2]
    coords = f @ comps.T
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    var = s**2
    explained = var[:2] / var.sum() if var.sum() > 0 else np.zeros(2)
    return coords, np.pad(explained, (0, 2 - len(explained)))


def plot_embedding(
    features: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[str],
    path: str | os.PathLike[str],
    title: str | None = None,
) -> Path:
    """2-D PCA map of features, one colour per class (unlabelled -1 in grey)."""
    feats = np.asarray(features)
    labels = np.asarray(labels)
    if feats.ndim != 2 or feats.shape[0] != labels.shape[0]:
        raise ValueError(f"features {feats.shape} and labels {labels.shape} do not match")
    coords, explained = pca_2d(feats)
    fig = Figure(figsize=(6.0, 5.0))
    ax = fig.add_subplot()
    unl = labels < 0
    if unl.any():
        ax.scatter(coords[unl, 0], coords[unl, 1], s=8, c="lightgrey", label="unlabelled")
    cmap = _colors(len(classes))
    for c, name in enumerate(classes):
        sel = labels == c
        if sel.any():
            ax.scatter(coords[sel, 0], coords[sel, 1], s=12, color=cmap[c], label=name, alpha=0.8)
    ax.legend(markerscale=1.5)
    ax.set_xlabel(f"PC1 ({explained[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({explained[1]:.0%} of variance)")
    ax.set_title(title or "Feature embedding (PCA)")
    return save_figure(fig, path)


def _colors(k: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if k <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(k)]


def plot_fraction_curve(
    results: Mapping[str, Any],
    path: str | os.PathLike[str],
    title: str = "Semi-supervised accuracy against label fraction",
) -> Path:
    """Test top-1 (mean, error bar = std over seeds) against label fraction, one line per method.

    ``results`` maps a method to its semi-supervised summary ``{fraction_key: {"mean",
    "std", ...}}`` (:func:`ssal.evaluation.semi.semi_supervised`); a full results dict with a
    ``"methods"`` key (see :mod:`ssal.evaluation.report`) is accepted too.
    """
    if "methods" in results:
        results = {m: r["semi"] for m, r in results["methods"].items() if r.get("semi")}
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    all_fracs: set[float] = set()
    for name, semi in results.items():
        pts = sorted(
            (float(k), v["mean"], v.get("std") or 0.0) for k, v in semi.items() if v.get("mean") is not None
        )
        if not pts:
            continue
        fr, mean, std = (np.asarray(a) for a in zip(*pts))
        all_fracs.update(fr.tolist())
        ax.errorbar(fr * 100, mean * 100, yerr=std * 100, marker="o", capsize=4, label=name)
    if all_fracs:
        ticks = sorted(all_fracs)
        ax.set_xscale("log")
        ax.set_xticks([t * 100 for t in ticks], labels=[f"{t * 100:g}%" for t in ticks])
        ax.minorticks_off()
        ax.legend()
    ax.set_xlabel("labelled fraction of the training set")
    ax.set_ylabel("test top-1 accuracy (%)")
    ax.grid(alpha=0.3)
    ax.set_title(title)
    return save_figure(fig, path)
