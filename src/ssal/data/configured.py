"""The dataset a configuration's ``data`` section names (the builtin corpus or a file)."""

from __future__ import annotations

from typing import Any, Mapping

from .dataset import GaitDataset


def load_configured_dataset(data: Mapping[str, Any]) -> GaitDataset:
    """The dataset named by a config's ``data`` section."""
    from .io import load_dataset
    from .preprocess import PreprocessConfig

    source = data["source"]
    center = str(data.get("center") or PreprocessConfig.center)
    if source == "builtin":
        from .synthetic import load_builtin

        return load_builtin(n=int(data["builtin_n"]), seed=int(data["builtin_seed"]), center=center)
    return load_dataset(source, labels=data.get("labels"), preprocess=PreprocessConfig(center=center),
                        label_map=data.get("label_map") or "egait")


__all__ = ["load_configured_dataset"]
