"""The method presets: one YAML file per method in ``ssal/config/methods``.

A method is its preset file: ``methods/<name>.yaml`` holds the settings in which the method
differs from the schema defaults (:mod:`ssal.config.schema`, SSAL's values), under ``model:``
(including ``model.learner``, the training algorithm the preset uses) and optionally ``train:``
(the method's own optimiser recipe) and ``cpu_plan:`` (:func:`method_cpu_plan`).
Adding a method is adding a file; the command line, the experiments and the benchmarks list the
methods from here (:func:`available_methods`; ``ssal.methods.registry`` re-exports it).
"""

from __future__ import annotations

import copy
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from ..errors import SsalInputError
from .yaml_safe import load_text


def _folder() -> Any:
    return resources.files("ssal.config").joinpath("methods")


@lru_cache(maxsize=1)
def available_methods() -> tuple[str, ...]:
    """The names of the packaged presets, SSAL first, then alphabetical."""
    names = sorted(p.name[:-5] for p in _folder().iterdir() if p.name.endswith(".yaml"))
    return tuple(sorted(names, key=lambda n: (n != "ssal", n)))


@cache
def _preset(name: str) -> dict[str, Any]:
    if name not in available_methods():
        raise SsalInputError(None, f"unknown method {name!r}; available: {', '.join(available_methods())}")
    text = _folder().joinpath(f"{name}.yaml").read_text("utf-8")
    data = load_text(text, f"{name}.yaml", what="method preset") or {}
    if not isinstance(data, dict) or not set(data) <= {"model", "train", "cpu_plan"}:
        raise ValueError(f"packaged preset {name}.yaml must be a mapping of 'model', 'train' and 'cpu_plan'")
    plan = data.get("cpu_plan", {})
    if not isinstance(plan, dict) or not set(plan) <= {"model", "train"}:
        raise ValueError(f"packaged preset {name}.yaml: 'cpu_plan' must be a mapping of 'model' and 'train'")
    return data


def load_method_config(name: str) -> dict[str, Any]:
    """The packaged preset ``ssal/config/methods/<name>.yaml``: its ``model:`` / ``train:``
    sections (the method at its reference sizes)."""
    return copy.deepcopy({k: v for k, v in _preset(name).items() if k != "cpu_plan"})


def method_cpu_plan(name: str) -> dict[str, Any]:
    """The preset's ``cpu_plan:`` (``model:`` / ``train:`` settings): what the CPU schedules
    change beyond the reduced ST-GCN / CFFN widths they set themselves (a smaller projector,
    a smaller transformer); empty when the preset has none."""
    return copy.deepcopy(_preset(name).get("cpu_plan", {}))


__all__ = ["available_methods", "load_method_config", "method_cpu_plan"]
