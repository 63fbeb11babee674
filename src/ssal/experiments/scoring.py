"""Per-recording scores of one representation on a benchmark's folds.

A representation is either frozen features (raw pose, a random or pretrained encoder: probed
by logistic regression and kNN, :mod:`ssal.evaluation.probes`) or a model trained end to end per
fold (the from-scratch reference). Either way each fold yields clip probabilities of its test
clips, and every test recording gets a score per protocol:

* ``logistic``: 1 if the recording vote of the logistic probe is right, else 0;
* ``logistic_clip``: the fraction of its clips the logistic probe gets right;
* ``knn``: the recording vote of the kNN probe;
* ``few<n>``: the mean over draws of the recording vote of a logistic probe trained on ``n``
  labelled recordings per class (:func:`~ssal.experiments.folds.few_label_draw`).

``pred`` keeps the logistic vote's class (macro-F1) and ``part`` the fold part of each recording.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..evaluation.probes import knn_proba, logistic_proba, recording_vote
from .corpus import EvalData
from .folds import Fold, few_label_draw

#: ``fit(fold, train_clip_indices) -> test clip probabilities (len(fold.test), K)``.
ProbaFn = Callable[[Fold, np.ndarray], np.ndarray]


def _vote(data: EvalData, fold: Fold, proba: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(recordings, voted local class, true local class) of a fold's test clips."""
    groups = np.asarray(data.dataset.recording_ids)[fold.test]
    recs, rp = recording_vote(proba, list(groups))
    y_local = fold.local(data.dataset.y[fold.test])
    truth = {g: t for g, t in zip(groups, y_local)}
    return recs, rp.argmax(axis=1), np.array([truth[g] for g in recs])


def score_folds(data: EvalData, folds: list[Fold], fit: ProbaFn, *, per_class: tuple[int, ...], draws: int,
                knn: ProbaFn | None = None, seed: int = 0, full: bool = True) -> dict[str, Any]:
    """Scores of every test recording of every fold (module docstring).

    ``fit`` trains on the given clips of a fold and returns its test clips' probabilities;
    ``knn`` likewise for the kNN protocol (frozen features only); ``full``: also the protocols
    on every training recording (``logistic``, ``logistic_clip``, ``knn``).
    """
    out: dict[str, dict[str, Any]] = defaultdict(dict)
    y = data.dataset.y
    for fi, fold in enumerate(folds):
        groups = np.asarray(data.dataset.recording_ids)[fold.test]
        for g in groups:
            out["part"][g] = fold.part
        if full:
            p = fit(fold, fold.train)
            recs, vote, truth = _vote(data, fold, p)
            clip_right = p.argmax(axis=1) == fold.local(y[fold.test])
            for r, v, t in zip(recs, vote, truth):
                out["logistic"][r] = float(v == t)
                out["pred"][r] = int(fold.classes[v])
                out["truth"][r] = int(fold.classes[t])
                out["logistic_clip"][r] = float(clip_right[groups == r].mean())
            if knn is not None:
                recs, vote, truth = _vote(data, fold, knn(fold, fold.train))
                for r, v, t in zip(recs, vote, truth):
                    out["knn"][r] = float(v == t)
        for n in per_class:
            hits: dict[str, list[float]] = defaultdict(list)
            for d in range(draws):
                idx = few_label_draw(data, fold, fi, n, d, seed)
                recs, vote, truth = _vote(data, fold, fit(fold, idx))
                for r, v, t in zip(recs, vote, truth):
                    hits[r].append(float(v == t))
            for r, h in hits.items():
                out[f"few{n}"][r] = float(np.mean(h))
    return {k: dict(v) for k, v in out.items()}


def shared_units(part: str, proto: str, *scores: dict[str, Any]) -> list[str]:
    """The recordings of fold part ``part`` (``"test"`` or ``"val"``) that every one of ``scores``
    scored under ``proto``, sorted: the units of an interval, or of a paired difference."""
    first = scores[0]
    return sorted(r for r, p in first.get("part", {}).items()
                  if p == part and all(r in sc.get(proto, {}) for sc in scores))


def frozen_probes(features: np.ndarray, data: EvalData, knn_k: int = 10) -> tuple[ProbaFn, ProbaFn]:
    """The logistic and kNN probe functions of frozen ``features`` (one row per clip)."""
    y = data.dataset.y

    def fit(fold: Fold, idx: np.ndarray) -> np.ndarray:
        return logistic_proba(features[idx], fold.local(y[idx]), features[fold.test], len(fold.classes))

    def knn(fold: Fold, idx: np.ndarray) -> np.ndarray:
        return knn_proba(features[idx], fold.local(y[idx]), features[fold.test], len(fold.classes), k=knn_k)

    return fit, knn


def scratch_fit(init: Path, data: EvalData, epochs: int, seed: int) -> ProbaFn:
    """End-to-end training from the random initialisation ``init`` (an epoch-0 snapshot) on the
    given clips; no augmentation, the finetune protocol's SGD schedule, the last epoch kept."""
    from ..evaluation.classifier import ClassifierSettings, train_classifier
    from ..inference import load_encoder

    encoder0, ck = load_encoder(init)
    clip_len = ck.get("clip_len")

    def fit(fold: Fold, idx: np.ndarray) -> np.ndarray:
        train = data.dataset.subset(idx)
        train.y = fold.local(train.y)
        train.classes = [data.dataset.classes[c] for c in fold.classes]
        settings = ClassifierSettings.for_mode("supervised", epochs=epochs, clip_len=clip_len, select="last",
                                               seed=seed, batch_size=min(64, len(idx)))
        model, _ = train_classifier(copy.deepcopy(encoder0), None, train, None, settings)
        x = torch.from_numpy(np.ascontiguousarray(data.dataset.x[fold.test], dtype=np.float32))
        return model.predict_proba(x).double().numpy()

    return fit


__all__ = ["score_folds", "frozen_probes", "scratch_fit", "shared_units", "ProbaFn"]
