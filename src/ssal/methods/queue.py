"""The MoCo queue of negative keys: a ring buffer of any size.

Unlike the reference MoCo code, the size ``K`` need not be a multiple of the batch size: a
batch that does not fit in the space left before the end wraps around to the start, and a
batch larger than ``K`` keeps only its last ``K`` keys (exactly what writing the keys one by
one would leave). The buffer, the write pointer and the fill count are registered buffers, so
they move with ``.to(device)`` and are saved and restored with the learner's ``state_dict``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FeatureQueue"]


class FeatureQueue(nn.Module):
    """Ring buffer of ``size`` L2-normalised feature vectors of dimension ``dim``.

    Buffers:
        features: (K, D) the stored keys; starts as random unit vectors (MoCo's init), which
            serve as negatives until real keys replace them.
        ptr: () int64, the row the next key is written to.
        filled: () int64, how many rows hold real keys (saturates at K).

    Args:
        size: K, the number of keys kept (>= 1).
        dim: D, the feature dimension.
        generator: optional CPU ``torch.Generator`` for a reproducible initialisation.
    """

    features: Tensor
    ptr: Tensor
    filled: Tensor

    def __init__(self, size: int, dim: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"queue size and dim must be >= 1, got size={size}, dim={dim}")
        init = F.normalize(torch.randn(size, dim, generator=generator), dim=1)
        self.register_buffer("features", init)
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))

    @property
    def size(self) -> int:
        """K, the capacity."""
        return self.features.shape[0]

    @property
    def dim(self) -> int:
        """D, the feature dimension."""
        return self.features.shape[1]

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        """Write ``keys`` (B, D) at the pointer, wrapping around; the oldest keys are overwritten.

        Key ``i`` goes to row ``(ptr + i) % K``; when ``B > K`` only the last K keys are kept.
        Keys are stored as given (detached, cast to the buffer's dtype); pass normalised keys.
        """
        if keys.dim() != 2 or keys.shape[1] != self.dim:
            raise ValueError(f"keys must be (B, {self.dim}); got {tuple(keys.shape)}")
        n = keys.shape[0]
        if n == 0:
            return
        k = self.size
        rows = (self.ptr + torch.arange(n, device=self.features.device)) % k
        keys = keys.detach().to(self.features)
        if n > k:
            rows, keys = rows[-k:], keys[-k:]
        self.features[rows] = keys
        self.ptr.copy_((self.ptr + n) % k)
        self.filled.copy_(torch.clamp(self.filled + n, max=k))

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}"
