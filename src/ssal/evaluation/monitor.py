"""The kNN monitor of pretraining: validation top-1 of the encoder against the train split."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..data.dataset import GaitDataset


def knn_monitor(encoder: torch.nn.Module, dataset: GaitDataset, split: Mapping[str, Any],
                run: Mapping[str, Any], device: torch.device, clip_len: int | None = None) -> float:
    """kNN top-1 accuracy of ``encoder`` on the validation split (train split as the memory)."""
    from .knn import KnnSettings, knn_evaluate

    train = dataset.subset(np.asarray(split["train"]))
    val = dataset.subset(np.asarray(split["val"]))
    train = train.subset(train.labelled)
    val = val.subset(val.labelled)
    if len(train) == 0 or len(val) == 0:
        return float("nan")
    # The encoder's output is the evaluated feature (CFFN: fused vector; ST-GCN: pooled maps).
    report = knn_evaluate(encoder, train, val, KnnSettings.from_run(run, clip_len), device=device)
    return float(report["top1"])


__all__ = ["knn_monitor"]
