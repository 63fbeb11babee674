"""Frozen-feature probes of the real-data benchmarks: raw-pose features, a logistic regression on
standardised features, a cosine kNN, and the recording-level vote.

These are the probes ``ssal benchmark`` runs on every representation (raw pose, random-init
encoder, pretrained encoder) with the same settings, so that their differences are the
representations', not the probes'. Choices, fixed before any result was looked at:

* **Logistic regression** as scikit-learn's default: L2 penalty with ``C = 1`` on the summed
  log-loss, i.e. ``mean CE + ||W||^2 / (2 C N)`` (bias not penalised), on features standardised
  with the training clips' mean and std; full-batch L-BFGS to convergence. No setting is tuned
  on test data.
* **kNN**: cosine similarity on standardised features, ``k`` nearest training clips, each class
  scored by its share of the ``k`` votes.
* **Recording vote**: a recording's class is the arg-max of the mean clip probability over its
  clips (the issue's "mean clip probability per recording").
* **Raw pose**: every ``step``-th frame of the clip, flattened (no encoder).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def raw_pose_features(x: np.ndarray, step: int = 4) -> np.ndarray:
    """``(N, C, T, V)`` clips -> ``(N, C * ceil(T / step) * V)``: every ``step``-th frame, flattened."""
    a = np.asarray(x, dtype=np.float32)
    if a.ndim != 4:
        raise ValueError(f"raw_pose_features: expected (N, C, T, V), got shape {a.shape}")
    if step < 1:
        raise ValueError("raw_pose_features: step must be >= 1")
    return a[:, :, ::step, :].reshape(a.shape[0], -1)


def standardize(train: np.ndarray, *others: np.ndarray, eps: float = 1e-6) -> list[np.ndarray]:
    """Standardise ``train`` and ``others`` with the training rows' per-dimension mean and std
    (dimensions with std below ``eps`` are only centred)."""
    mu = train.mean(axis=0, keepdims=True)
    sd = train.std(axis=0, keepdims=True)
    sd = np.where(sd < eps, 1.0, sd)
    return [((a - mu) / sd).astype(np.float32) for a in (train, *others)]


def fit_logistic(x: np.ndarray, y: np.ndarray, num_classes: int, *, c: float = 1.0,
                 max_iter: int = 300) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression (weights ``(K, D)``, bias ``(K,)``); see module docstring."""
    xt = torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float64)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.long)
    n, d = xt.shape
    w = torch.zeros(num_classes, d, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-7, tolerance_change=1e-10,
                            history_size=20, line_search_fn="strong_wolfe")
    reg = 1.0 / (2.0 * c * n)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(xt @ w.T + b, yt) + reg * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def logistic_proba(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, num_classes: int, *,
                   c: float = 1.0) -> np.ndarray:
    """Standardise, fit on the training clips, return the test clips' class probabilities."""
    tr, te = standardize(train_x, test_x)
    w, b = fit_logistic(tr, train_y, num_classes, c=c)
    logits = torch.as_tensor(te, dtype=torch.float64) @ w.T + b
    return torch.softmax(logits, dim=1).numpy()


def knn_proba(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, num_classes: int, *,
              k: int = 10) -> np.ndarray:
    """Share of each class among the ``k`` nearest training clips (cosine, standardised features)."""
    tr, te = standardize(train_x, test_x)
    tr_t = F.normalize(torch.as_tensor(tr), dim=1)
    te_t = F.normalize(torch.as_tensor(te), dim=1)
    kk = min(int(k), tr_t.shape[0])
    nearest = (te_t @ tr_t.T).topk(kk, dim=1).indices
    votes = torch.as_tensor(np.asarray(train_y), dtype=torch.long)[nearest]
    return F.one_hot(votes, num_classes).double().mean(dim=1).numpy()


def recording_vote(clip_proba: np.ndarray, groups: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Mean clip probability per recording (first-seen order) -> ``(recordings, (R, K) probabilities)``."""
    order = list(dict.fromkeys(groups))
    pos = {g: i for i, g in enumerate(order)}
    idx = np.array([pos[g] for g in groups])
    sums = np.zeros((len(order), clip_proba.shape[1]))
    np.add.at(sums, idx, clip_proba)
    counts = np.bincount(idx, minlength=len(order))[:, None]
    return order, sums / counts


__all__ = ["raw_pose_features", "standardize", "fit_logistic", "logistic_proba", "knn_proba", "recording_vote"]
