"""Weighted k-nearest-neighbour classification on encoder features (the kNN monitor).

As in InstDisc (Wu et al., 2018) and the MoCo kNN monitor: features are L2-normalised, the
``k`` training samples with the highest cosine similarity vote for their class with weight
``exp(similarity / temperature)``, and the class with the largest total wins (ties go to the
lower class index).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config.schema import RunConfig
from ..data.dataset import GaitDataset
from ..errors import SsalInputError
from .features import extract_features
from .metrics import classification_report


def _tensor(a: np.ndarray | torch.Tensor, device: torch.device | str) -> torch.Tensor:
    t = torch.as_tensor(a) if not isinstance(a, torch.Tensor) else a
    return t.to(device=device, dtype=torch.float32)


def knn_scores(
    train_feats: np.ndarray | torch.Tensor,
    train_y: np.ndarray | torch.Tensor,
    test_feats: np.ndarray | torch.Tensor,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.1,
    chunk_size: int = 1024,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Class vote totals ``(N_test, num_classes)`` of the weighted kNN (see module docstring).

    Training samples labelled -1 (unlabelled) are ignored; ``k`` is capped at the number of
    labelled training samples. Test samples are processed ``chunk_size`` at a time so the
    similarity matrix never exceeds ``chunk_size x N_train``.
    """
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    y = torch.as_tensor(np.asarray(train_y), dtype=torch.long, device=device)
    bank = _tensor(train_feats, device)
    keep = y >= 0
    bank, y = F.normalize(bank[keep], dim=1), y[keep]
    if bank.shape[0] == 0:
        raise ValueError("kNN needs at least one labelled training sample")
    if int(y.max()) >= num_classes:
        raise ValueError(f"a training label is outside [0, {num_classes})")
    query_all = _tensor(test_feats, device)
    kk = min(k, bank.shape[0])
    out = []
    for start in range(0, query_all.shape[0], chunk_size):
        query = F.normalize(query_all[start : start + chunk_size], dim=1)
        sim = query @ bank.T  # (n, N_train) cosine similarities
        top_sim, top_idx = sim.topk(kk, dim=1)
        weights = (top_sim / temperature).exp()
        votes = torch.zeros(query.shape[0], num_classes, device=device)
        votes.scatter_add_(1, y[top_idx], weights)
        out.append(votes)
    if not out:
        return torch.zeros(0, num_classes, device=device)
    return torch.cat(out)


def knn_predict(
    train_feats: np.ndarray | torch.Tensor,
    train_y: np.ndarray | torch.Tensor,
    test_feats: np.ndarray | torch.Tensor,
    k: int = 20,
    temperature: float = 0.1,
    num_classes: int | None = None,
    chunk_size: int = 1024,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Predicted class ``(N_test,)`` int64 of the temperature-weighted cosine kNN.

    ``num_classes`` defaults to ``max(train_y) + 1``.
    """
    if num_classes is None:
        num_classes = int(np.max(np.asarray(train_y))) + 1
    votes = knn_scores(train_feats, train_y, test_feats, num_classes, k, temperature, chunk_size, device)
    return votes.argmax(dim=1).cpu().numpy().astype(np.int64)


@dataclass(frozen=True)
class KnnSettings:
    """Settings of :func:`knn_evaluate`.

    Attributes:
        k: neighbours that vote (capped at the number of labelled training samples).
        temperature: vote weight ``exp(similarity / temperature)``.
        batch_size: batch size of feature extraction.
        clip_len: if set, sequences are resampled to this many frames before the encoder.
        progress: show a progress bar.
    """

    k: int = RunConfig.knn_k  # the defaults of run.knn_k / run.knn_temperature
    temperature: float = RunConfig.knn_temperature
    batch_size: int = 256
    clip_len: int | None = None
    progress: bool = False

    @classmethod
    def from_run(cls, run: Mapping[str, Any], clip_len: int | None = None) -> KnnSettings:
        """From the ``run`` section of a configuration (``knn_k``, ``knn_temperature``)."""
        return cls(k=int(run["knn_k"]), temperature=float(run["knn_temperature"]), clip_len=clip_len)


def knn_evaluate(
    encoder: nn.Module,
    train_ds: GaitDataset,
    test_ds: GaitDataset,
    settings: KnnSettings | None = None,
    *,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """kNN classification of ``test_ds`` with ``train_ds`` as the memory bank.

    Features come from :func:`extract_features` (eval mode; the encoder's mode is restored).
    Only labelled sequences are used on either side. Returns a
    :func:`~ssal.evaluation.metrics.classification_report` with ``k`` and ``temperature`` added.
    """
    st = settings if settings is not None else KnnSettings()
    k, temperature, batch_size, clip_len, progress = st.k, st.temperature, st.batch_size, st.clip_len, st.progress
    train_idx, test_idx = train_ds.labelled, test_ds.labelled
    if len(train_idx) == 0:
        raise SsalInputError(train_ds.meta.get("source"), "kNN needs labelled training sequences")
    if len(test_idx) == 0:
        raise SsalInputError(test_ds.meta.get("source"), "kNN needs labelled test sequences")
    train_x = train_ds.x if len(train_idx) == len(train_ds) else train_ds.x[train_idx]
    test_x = test_ds.x if len(test_idx) == len(test_ds) else test_ds.x[test_idx]
    f_train = extract_features(encoder, train_x, batch_size, device, clip_len, progress)
    f_test = extract_features(encoder, test_x, batch_size, device, clip_len, progress)
    pred = knn_predict(
        f_train, train_ds.y[train_idx], f_test, k, temperature, train_ds.num_classes, device=device
    )
    report = classification_report(test_ds.y[test_idx], pred, train_ds.classes)
    report.update(k=k, temperature=temperature)
    return report
