"""The in-memory dataset type every reader produces and every consumer reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..skeleton import EGAIT16, SkeletonLayout

#: Label value of a sequence without a label.
UNLABELLED = -1

#: Default class order of the four E-Gait emotions, used by the built-in corpus and by the
#: E-Gait reader's default label map. The E-Gait numbering is disputed (SPEC section 1): STEP's
#: code says 0..3 = angry, neutral, happy, sad, while a cross-tabulation of the released
#: ``labels.h5`` against the acted emotion in each key name gives 0..3 = happy, angry, sad,
#: neutral. The data decides the default; the other map stays selectable in the reader.
EGAIT_EMOTIONS = ("happy", "angry", "sad", "neutral")


@dataclass
class GaitDataset:
    """Gait sequences at a fixed length, in the project's tensor layout.

    Attributes:
        x: ``(N, C=3, T, V)`` float32 joint positions (may be a read-only ``np.memmap``).
        y: ``(N,)`` int64 class indices, :data:`UNLABELLED` (-1) where a sequence has no label.
        names: one name per sequence (file key, file name, ...).
        lengths: ``(N,)`` int64 frame counts before the sequences were brought to length T.
        classes: emotion name of each class index.
        layout: the skeleton layout of the V axis.
        fps: frames per second of the T axis.
        meta: provenance (source path, preprocessing settings, generator seed, ...).
        groups: recording id of each sequence, where several sequences are clips (windows) of
            one recording; ``None``: every sequence is its own recording. Splits keep the clips
            of one recording on one side (``ssal.data.splits``, ``groups=``).
    """

    x: np.ndarray
    y: np.ndarray
    names: list[str]
    lengths: np.ndarray
    classes: list[str]
    layout: SkeletonLayout = EGAIT16
    fps: float = 30.0
    meta: dict[str, Any] = field(default_factory=dict)
    groups: list[str] | None = None

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=np.int64)
        self.lengths = np.asarray(self.lengths, dtype=np.int64)
        self.names = list(self.names)
        self.classes = list(self.classes)
        n = self.x.shape[0]
        if self.x.ndim != 4 or self.x.shape[1] != 3:
            raise ValueError(f"x must be (N, 3, T, V), got {self.x.shape}")
        if self.x.shape[3] != self.layout.num_joints:
            raise ValueError(
                f"x has {self.x.shape[3]} joints, layout {self.layout.name} has {self.layout.num_joints}"
            )
        if not (len(self.y) == len(self.names) == len(self.lengths) == n):
            raise ValueError("x, y, names and lengths must have the same length")
        if self.groups is not None:
            self.groups = [str(g) for g in self.groups]
            if len(self.groups) != n:
                raise ValueError("groups must have one recording id per sequence")
        if len(self.y) and (self.y.max(initial=-1) >= len(self.classes) or self.y.min(initial=0) < UNLABELLED):
            raise ValueError("labels must be -1 (unlabelled) or a valid class index")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def num_classes(self) -> int:
        """Number of emotion classes."""
        return len(self.classes)

    @property
    def num_frames(self) -> int:
        """T, the fixed sequence length."""
        return int(self.x.shape[2])

    @property
    def recording_ids(self) -> list[str]:
        """The recording of each sequence: :attr:`groups`, else the sequence names."""
        return list(self.groups) if self.groups is not None else list(self.names)

    @property
    def labelled(self) -> np.ndarray:
        """Indices of the sequences that carry a label."""
        return np.flatnonzero(self.y != UNLABELLED)

    def subset(self, indices: Sequence[int] | np.ndarray) -> GaitDataset:
        """A new dataset holding the given sequences (arrays are copied into memory)."""
        idx = np.asarray(indices, dtype=np.int64)
        return GaitDataset(
            x=np.ascontiguousarray(self.x[idx]),
            y=self.y[idx].copy(),
            names=[self.names[i] for i in idx],
            lengths=self.lengths[idx].copy(),
            classes=list(self.classes),
            layout=self.layout,
            fps=self.fps,
            meta=dict(self.meta),
            groups=[self.groups[i] for i in idx] if self.groups is not None else None,
        )

    def class_counts(self) -> dict[str, int]:
        """Number of labelled sequences per class name."""
        counts = np.bincount(self.y[self.y >= 0], minlength=self.num_classes)
        return {c: int(k) for c, k in zip(self.classes, counts)}
