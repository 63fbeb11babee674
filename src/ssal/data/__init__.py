"""Readers, the canonical on-disk format, preprocessing, splits and the built-in corpus.

Every reader ends in :func:`ssal.data.preprocess.sequences_to_dataset`, which turns
``(T_i, V, 3)`` sequences into a :class:`GaitDataset` of shape ``(N, 3, T, V)``.
"""

from .canonical import CanonicalWriter, read_canonical, write_canonical
from .dataset import EGAIT_EMOTIONS, UNLABELLED, GaitDataset
from .io import load_dataset, save_dataset
from .preprocess import PreprocessConfig, sequences_to_dataset
from .splits import kfold, label_fraction, load_split, save_split, stratified_split
from .synthetic import generate, load_builtin

__all__ = [
    "GaitDataset", "UNLABELLED", "EGAIT_EMOTIONS", "load_dataset", "save_dataset",
    "PreprocessConfig", "sequences_to_dataset", "read_canonical", "write_canonical", "CanonicalWriter",
    "stratified_split", "label_fraction", "kfold", "save_split", "load_split", "generate", "load_builtin",
]
