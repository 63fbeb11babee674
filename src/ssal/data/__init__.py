"""Readers, the canonical on-disk format, preprocessing, splits and the built-in corpus."""

from .dataset import EGAIT_EMOTIONS, UNLABELLED, GaitDataset

__all__ = ["GaitDataset", "UNLABELLED", "EGAIT_EMOTIONS"]
