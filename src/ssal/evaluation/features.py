"""Feeding sequences to an encoder: batching, optional time resizing, feature extraction."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..data.dataset import GaitDataset
from ..errors import SsalInputError
from ..models.base import iter_batches

#: What the evaluation functions accept as input sequences.
SequenceData: TypeAlias = GaitDataset | np.ndarray | torch.Tensor


def as_array(data: SequenceData, where: str | None = None) -> np.ndarray | torch.Tensor:
    """The ``(N, 3, T, V)`` array behind ``data`` (not copied), checked for its shape."""
    x = data.x if isinstance(data, GaitDataset) else data
    if not isinstance(x, (np.ndarray, torch.Tensor)):
        raise SsalInputError(where, f"expected a GaitDataset or an array, got {type(data).__name__}")
    if x.ndim != 4 or x.shape[1] != 3:
        raise SsalInputError(where, f"expected sequences of shape (N, 3, T, V), got {tuple(x.shape)}")
    return x


def extract_features(
    encoder: nn.Module,
    data: SequenceData,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    clip_len: int | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Encode every sequence of ``data``: returns ``(N, D)`` float32 features, in input order.

    The encoder runs in eval mode under :func:`torch.inference_mode`; its previous train/eval
    mode is restored afterwards. ``clip_len`` resamples sequences in time before encoding
    (:func:`resize_time`); by default whole sequences are encoded as they are.
    """
    x = as_array(data)
    was_training = encoder.training
    encoder.to(device)
    encoder.eval()
    feats: list[np.ndarray] = []
    try:
        with torch.inference_mode():
            batches = iter_batches(x, batch_size, device, clip_len)
            total = -(-x.shape[0] // batch_size)
            for xb in tqdm(batches, total=total, desc="features", disable=not progress, leave=False):
                feats.append(encoder(xb).float().cpu().numpy())
    finally:
        encoder.train(was_training)
    if not feats:
        out_dim = getattr(encoder, "out_dim", 0)
        return np.zeros((0, out_dim), dtype=np.float32)
    return np.concatenate(feats, axis=0)
