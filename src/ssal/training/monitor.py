"""The kNN monitor of pretraining: top-1 of a weighted kNN vote on the validation split.

The vote (:func:`knn_scores`, :func:`knn_predict`) lives in the training layer because the
monitor runs inside training; the kNN protocol (``ssal.evaluation.knn``) uses the same
arithmetic from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..config.schema import RunConfig
from ..data.dataset import GaitDataset
from ..models.base import iter_batches

#: Sequences per forward pass of the monitor's feature extraction.
KNN_BATCH_SIZE = 256


def knn_scores(
    train_feats: np.ndarray | torch.Tensor,
    train_y: np.ndarray | torch.Tensor,
    test_feats: np.ndarray | torch.Tensor,
    num_classes: int,
    k: int = RunConfig.knn_k,
    temperature: float = RunConfig.knn_temperature,
    chunk_size: int = 1024,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Class vote totals ``(N_test, num_classes)`` of the weighted cosine kNN.

    As in InstDisc (Wu et al., 2018) and the usual contrastive kNN monitor: features are L2-normalised, the
    ``k`` training samples with the highest cosine similarity vote for their class with weight
    ``exp(similarity / temperature)``. Training samples labelled -1 (unlabelled) are ignored;
    ``k`` is capped at the number of labelled training samples. Test samples are processed
    ``chunk_size`` at a time so the similarity matrix never exceeds ``chunk_size x N_train``.
    """
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    y = torch.as_tensor(np.asarray(train_y), dtype=torch.long, device=device)
    bank = torch.as_tensor(train_feats).to(device=device, dtype=torch.float32)
    keep = y >= 0
    bank, y = F.normalize(bank[keep], dim=1), y[keep]
    if bank.shape[0] == 0:
        raise ValueError("kNN needs at least one labelled training sample")
    if int(y.max()) >= num_classes:
        raise ValueError(f"a training label is outside [0, {num_classes})")
    query_all = torch.as_tensor(test_feats).to(device=device, dtype=torch.float32)
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
    k: int = RunConfig.knn_k,
    temperature: float = RunConfig.knn_temperature,
    num_classes: int | None = None,
    chunk_size: int = 1024,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Predicted class ``(N_test,)`` int64 of the weighted cosine kNN (:func:`knn_scores`; ties
    go to the lower class index). ``num_classes`` defaults to ``max(train_y) + 1``."""
    if num_classes is None:
        num_classes = int(np.max(np.asarray(train_y))) + 1
    votes = knn_scores(train_feats, train_y, test_feats, num_classes, k, temperature, chunk_size, device)
    return votes.argmax(dim=1).cpu().numpy().astype(np.int64)


def _encode(encoder: torch.nn.Module, x: np.ndarray, device: torch.device, clip_len: int | None) -> torch.Tensor:
    """``(N, D)`` float32 features of the sequences ``x`` on the CPU: the encoder in eval mode
    under inference mode (its mode restored), batches of :data:`KNN_BATCH_SIZE`."""
    was_training = encoder.training
    encoder.to(device)
    encoder.eval()
    feats: list[torch.Tensor] = []
    try:
        with torch.inference_mode():
            for xb in iter_batches(x, KNN_BATCH_SIZE, device, clip_len):
                feats.append(encoder(xb).float().cpu())
    finally:
        encoder.train(was_training)
    return torch.cat(feats)


def knn_monitor(encoder: torch.nn.Module, dataset: GaitDataset, split: Mapping[str, Any],
                run: Mapping[str, Any], device: torch.device, clip_len: int | None = None) -> float:
    """kNN top-1 accuracy of ``encoder`` on the labelled validation split, with the labelled
    train split as the memory (``run.knn_k``, ``run.knn_temperature``; sequences resampled to
    ``clip_len`` frames); ``nan`` when either side has no labelled sequence. The encoder's
    output is the feature (CFFN: the fused vector; ST-GCN: the pooled maps)."""
    train = dataset.subset(np.asarray(split["train"]))
    val = dataset.subset(np.asarray(split["val"]))
    train = train.subset(train.labelled)
    val = val.subset(val.labelled)
    if len(train) == 0 or len(val) == 0:
        return float("nan")
    pred = knn_predict(_encode(encoder, train.x, device, clip_len), train.y, _encode(encoder, val.x, device, clip_len),
                       int(run["knn_k"]), float(run["knn_temperature"]), train.num_classes, device=device)
    return float(np.mean(np.asarray(val.y, dtype=np.int64) == pred))


__all__ = ["KNN_BATCH_SIZE", "knn_monitor", "knn_predict", "knn_scores"]
