"""The frozen-feature probes of the benchmarks: raw pose, logistic regression, kNN, recording vote."""

from __future__ import annotations

import numpy as np
import pytest

from ssal.evaluation.probes import (
    fit_logistic,
    knn_proba,
    logistic_proba,
    raw_pose_features,
    recording_vote,
    standardize,
)


def test_raw_pose_takes_every_fourth_frame_in_order():
    x = np.arange(2 * 3 * 9 * 4, dtype=np.float32).reshape(2, 3, 9, 4)
    f = raw_pose_features(x, step=4)
    assert f.shape == (2, 3 * 3 * 4)
    assert np.array_equal(f[1], x[1][:, [0, 4, 8], :].reshape(-1))


def test_standardize_uses_training_statistics_only():
    tr = np.array([[0.0, 5.0], [2.0, 5.0]])
    te = np.array([[4.0, 7.0]])
    a, b = standardize(tr, te)
    assert np.allclose(a, [[-1.0, 0.0], [1.0, 0.0]]) and np.allclose(b, [[3.0, 2.0]])  # constant column: centred


def test_logistic_optimum_has_zero_gradient_written_out():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4))
    y = rng.integers(0, 3, size=30)
    c = 0.5
    w, b = (t.numpy() for t in fit_logistic(x, y, 3, c=c))
    # gradient of mean CE + ||W||^2 / (2 C N), by hand
    logits = x @ w.T + b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    onehot = np.eye(3)[y]
    g_w = (p - onehot).T @ x / 30 + w / (c * 30)
    g_b = (p - onehot).mean(0)
    assert np.abs(g_w).max() < 1e-5 and np.abs(g_b).max() < 1e-5


def test_logistic_separates_separable_classes():
    rng = np.random.default_rng(1)
    x = np.r_[rng.normal(-3, 1, (20, 2)), rng.normal(3, 1, (20, 2))]
    y = np.r_[np.zeros(20, int), np.ones(20, int)]
    p = logistic_proba(x, y, np.array([[-3.0, -3.0], [3.0, 3.0]]), 2)
    assert p.shape == (2, 2) and np.allclose(p.sum(1), 1) and p[0, 0] > 0.9 and p[1, 1] > 0.9


def test_knn_votes_by_hand():
    tr = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.2, 1.0]])
    y = np.array([0, 0, 1, 1, 1])
    te = np.array([[1.0, 0.05]])
    # standardised with the training rows, cosine: the two class-0 rows are nearest, then a class-1 row
    p = knn_proba(tr, y, te, 2, k=3)
    assert p == pytest.approx(np.array([[2 / 3, 1 / 3]]))


def test_recording_vote_averages_clip_probabilities():
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    recs, rp = recording_vote(proba, ["a", "a", "b", "b"])
    assert recs == ["a", "b"] and np.allclose(rp, [[0.55, 0.45], [0.45, 0.55]])
