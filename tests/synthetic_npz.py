"""A few built-in synthetic gaits written as a ``.npz`` file, the input of predict tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ssal.data.npz import write_npz
from ssal.data.synthetic import generate_sequences
from ssal.skeleton import EGAIT16


def write_synthetic_npz(path: Path, n: int, seed: int) -> Path:
    """``n`` synthetic sequences of unequal length, zero-padded, with labels, names and lengths."""
    seqs, labels, names, _ = generate_sequences(n, seed=seed)
    x = np.zeros((len(seqs), max(len(s) for s in seqs), EGAIT16.num_joints, 3), np.float32)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = s
    write_npz(path, x, labels, names=names, lengths=[len(s) for s in seqs], order="NTVC")
    return path
