"""Weighted cosine kNN: hand-computed votes and a two-cluster toy with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ssal.data import GaitDataset
from ssal.evaluation.knn import KnnSettings, knn_evaluate, knn_predict, knn_scores
from ssal.skeleton import EGAIT16


def test_scores_are_temperature_weighted_cosine_votes() -> None:
    # query along x; one class-0 neighbour at cosine 1, two class-1 neighbours at cosine 0.8.
    train = np.array([[2.0, 0.0], [0.8, 0.6], [0.8, -0.6], [-1.0, 0.0]], dtype=np.float32)
    y = np.array([0, 1, 1, 0])
    q = np.array([[5.0, 0.0]], dtype=np.float32)
    scores = knn_scores(train, y, q, num_classes=2, k=3, temperature=0.1)
    assert scores[0].tolist() == pytest.approx([math.exp(10.0), 2 * math.exp(8.0)], rel=1e-5)
    # A sharp temperature lets the single close neighbour win; a flat one gives the majority.
    assert knn_predict(train, y, q, k=3, temperature=0.1).tolist() == [0]
    assert knn_predict(train, y, q, k=3, temperature=100.0).tolist() == [1]


def test_unlabelled_bank_entries_are_ignored_and_k_is_capped() -> None:
    train = np.array([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0]], dtype=np.float32)
    y = np.array([-1, 1, 0])
    scores = knn_scores(train, y, np.array([[1.0, 0.0]]), num_classes=2, k=50, temperature=1.0)
    cos = 1.0 / math.sqrt(1.0 + 1e-4)
    assert scores[0].tolist() == pytest.approx([math.exp(0.0), math.exp(cos)], rel=1e-5)


def test_two_clusters_chunked_equals_unchunked() -> None:
    rng = np.random.default_rng(0)
    centers = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    y_train = np.repeat([0, 1], 30)
    train = centers[y_train] + 0.1 * rng.standard_normal((60, 3))
    y_test = np.repeat([0, 1], 10)
    test = centers[y_test] + 0.1 * rng.standard_normal((20, 3))
    pred = knn_predict(train, y_train, test, k=5, temperature=0.1, num_classes=2)
    assert pred.dtype == np.int64
    assert np.array_equal(pred, y_test)
    assert np.array_equal(knn_predict(train, y_train, test, k=5, chunk_size=3), pred)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        knn_scores(np.ones((2, 2)), np.array([-1, -1]), np.ones((1, 2)), 2)
    with pytest.raises(ValueError):
        knn_scores(np.ones((2, 2)), np.array([0, 1]), np.ones((1, 2)), 2, k=0)


class MeanXYZ(nn.Module):
    """Stand-in encoder: the mean position of all joints and frames, ``(N, 3)``."""

    out_dim = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def _cluster_ds(n_per_class: int, seed: int) -> GaitDataset:
    rng = np.random.default_rng(seed)
    v = EGAIT16.num_joints
    y = np.repeat([0, 1], n_per_class)
    x = 0.2 * rng.standard_normal((len(y), 3, 8, v)).astype(np.float32)
    x[y == 0, 0] += 1.0  # class 0 sits along +x, class 1 along +y
    x[y == 1, 1] += 1.0
    return GaitDataset(x=x, y=y, names=[f"s{i}" for i in range(len(y))], lengths=np.full(len(y), 8),
                       classes=["happy", "sad"])


def test_knn_evaluate_on_encoder_features() -> None:
    enc = MeanXYZ().train()
    train, test = _cluster_ds(20, 0), _cluster_ds(8, 1)
    test.y[0] = -1  # unlabelled test sequences are skipped
    rep = knn_evaluate(enc, train, test, KnnSettings(k=5, temperature=0.1))
    assert rep["n"] == len(test) - 1
    assert rep["top1"] == 1.0
    assert rep["k"] == 5 and rep["temperature"] == 0.1
    assert enc.training  # mode restored


# ---------------------------------------------------------------------- the engine's kNN monitor


def test_the_vote_is_the_monitors() -> None:
    import ssal.evaluation.knn as knn
    import ssal.training.engine as engine
    import ssal.training.monitor as monitor
    from ssal.config.schema import RunConfig

    # One implementation: the protocol and the engine's monitor share the training layer's vote.
    assert knn.knn_scores is monitor.knn_scores and knn.knn_predict is monitor.knn_predict
    assert engine.knn_monitor is monitor.knn_monitor
    # Its defaults are the schema's (run.knn_k, run.knn_temperature).
    rng = np.random.default_rng(1)
    train, y, q = rng.standard_normal((40, 3)), rng.integers(0, 3, 40), rng.standard_normal((7, 3))
    assert torch.equal(monitor.knn_scores(train, y, q, 3),
                       monitor.knn_scores(train, y, q, 3, RunConfig.knn_k, RunConfig.knn_temperature))
    # Tensors and arrays give the same votes.
    assert torch.equal(monitor.knn_scores(torch.as_tensor(train), torch.as_tensor(y), torch.as_tensor(q), 3, 5, 0.2),
                       monitor.knn_scores(train, y, q, 3, 5, 0.2))


class Drift(nn.Module):
    """Stand-in encoder whose features depend on the frame count and on train/eval mode."""

    out_dim = 4

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.arange(x.shape[2], dtype=x.dtype).view(1, 1, -1, 1)
        return self.proj((x * t.sin()).mean(dim=(2, 3))) * (1.0 if self.training else 2.0)


@pytest.mark.parametrize("clip_len", [None, 5, 1, 13])
def test_monitor_equals_the_knn_protocol(clip_len) -> None:
    from ssal.training.monitor import knn_monitor

    torch.manual_seed(0)
    enc = Drift().train()
    ds = _cluster_ds(60, 2)  # 120 sequences of 8 frames
    ds.x += 3.0 * np.random.default_rng(3).standard_normal(ds.x.shape).astype(np.float32)  # overlapping classes
    ds.y[[1, 70]] = -1  # unlabelled sequences are left out on both sides
    perm = np.random.default_rng(4).permutation(len(ds))
    split = {"train": perm[:80], "val": perm[80:]}
    run = {"knn_k": 7, "knn_temperature": 0.3}
    got = knn_monitor(enc, ds, split, run, torch.device("cpu"), clip_len)
    assert enc.training  # mode restored
    train, val = ds.subset(split["train"]), ds.subset(split["val"])
    want = knn_evaluate(enc, train, val, KnnSettings(k=7, temperature=0.3, clip_len=clip_len, batch_size=256))
    assert got == want["top1"]
    assert 0.0 < got < 1.0  # a non-trivial accuracy, so that equality says something


def test_monitor_is_nan_without_labelled_validation() -> None:
    from ssal.training.monitor import knn_monitor

    ds = _cluster_ds(5, 0)
    ds.y[5:] = -1
    split = {"train": np.arange(5), "val": np.arange(5, 10)}
    assert math.isnan(knn_monitor(MeanXYZ(), ds, split, {"knn_k": 3, "knn_temperature": 0.1}, torch.device("cpu")))
