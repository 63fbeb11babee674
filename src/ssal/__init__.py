"""ssal: self-supervised gait-based emotion recognition from skeleton sequences."""

__version__ = "0.1.0"
