"""ssal: self-supervised gait-based emotion recognition from skeleton sequences.

``ssal.load(path)`` returns an :class:`~ssal.inference.EmotionModel` (``predict`` / ``embed``); it and
``EmotionModel`` are imported on first use, so ``import ssal`` stays light (no torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {"load": "ssal.inference", "EmotionModel": "ssal.inference"}

if TYPE_CHECKING:  # pragma: no cover
    from .inference import EmotionModel, load


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ssal' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["EmotionModel", "__version__", "load"]
