"""Readers, the canonical on-disk format, preprocessing, splits and the built-in corpus."""

from .dataset import UNLABELLED, GaitDataset

__all__ = ["GaitDataset", "UNLABELLED"]
