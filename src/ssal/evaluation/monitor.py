"""The kNN monitor of pretraining: validation top-1 of the encoder against the train split.

It runs inside training, so it lives in the engine (:func:`ssal.engine.knn_monitor`, with the
weighted kNN vote it shares with :mod:`.knn`); this module keeps its evaluation-side name.
"""

from __future__ import annotations

from ..engine import knn_monitor

__all__ = ["knn_monitor"]
