"""Weighted k-nearest-neighbour classification on encoder features (the kNN monitor).

As in InstDisc (Wu et al., 2018) and the MoCo kNN monitor: features are L2-normalised, the
``k`` training samples with the highest cosine similarity vote for their class with weight
``exp(similarity / temperature)``, and the class with the largest total wins (ties go to the
lower class index). The vote itself (:func:`knn_scores`, :func:`knn_predict`) belongs to the
training layer (:mod:`ssal.training.monitor`: the pretraining monitor runs it inside training);
this module is the protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..config.schema import RunConfig
from ..data.dataset import GaitDataset
from ..errors import SsalInputError
from ..training.monitor import knn_predict, knn_scores
from .features import extract_features
from .metrics import classification_report


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


__all__ = ["KnnSettings", "knn_evaluate", "knn_predict", "knn_scores"]
