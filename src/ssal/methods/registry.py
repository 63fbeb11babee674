"""The methods: the packaged presets (:mod:`ssal.config.presets`) and the encoder each builds.

A method is a preset file of ``ssal/config/methods``; it names its learner (``model.learner``,
:mod:`ssal.methods.learner`) and its encoder. This module re-exports the preset listing for the
layers downstream of the methods.
"""

from __future__ import annotations

from functools import cache

from ..config.presets import available_methods, load_method_config, method_cpu_plan


@cache
def encoder_name(method: str) -> str:
    """The encoder a method's preset builds (``stgcn``, ``cffn``, ``transformer``)."""
    from ..config import resolve_config

    return str(resolve_config(method)["model"]["encoder"]["name"])


@cache
def method_learner(method: str) -> str:
    """The learner a method's preset trains with (``model.learner``: ``moco``, ``pstl``, ...)."""
    from ..config import resolve_config

    return str(resolve_config(method)["model"]["learner"])


__all__ = ["available_methods", "encoder_name", "load_method_config", "method_cpu_plan", "method_learner"]
