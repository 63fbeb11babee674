"""The registry of methods: one YAML preset per method in ``ssal/methods/configs``.

A method is its preset file: ``configs/<name>.yaml`` holds the settings in which the method
differs from the schema defaults (:mod:`ssal.config.schema`, SSAL's values), under ``model:``
and optionally ``train:``. Adding a method is adding a file; the command line, the pipeline and
the benchmarks list the methods from here.
"""

from __future__ import annotations

from functools import cache, lru_cache
from importlib import resources
from typing import Any

import yaml

from ..errors import SsalInputError


@lru_cache(maxsize=1)
def available_methods() -> tuple[str, ...]:
    """The names of the packaged presets, SSAL first, then alphabetical."""
    folder = resources.files("ssal.methods").joinpath("configs")
    names = sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))
    return tuple(sorted(names, key=lambda n: (n != "ssal", n)))


def load_method_config(name: str) -> dict[str, Any]:
    """The packaged preset ``ssal/methods/configs/<name>.yaml`` (its ``model:`` / ``train:`` sections)."""
    if name not in available_methods():
        raise SsalInputError(None, f"unknown method {name!r}; available: {', '.join(available_methods())}")
    text = resources.files("ssal.methods").joinpath("configs", f"{name}.yaml").read_text("utf-8")
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict) or not set(data) <= {"model", "train"}:
        raise ValueError(f"packaged preset {name}.yaml must be a mapping of 'model' and 'train'")
    return data


@cache
def encoder_name(method: str) -> str:
    """The encoder a method's preset builds (``stgcn`` or ``cffn``)."""
    from ..config import resolve_config

    return str(resolve_config(method)["model"]["encoder"]["name"])


__all__ = ["available_methods", "encoder_name", "load_method_config"]
