"""The learners by name: the registry a preset's ``model.learner`` is looked up in.

Each entry builds a :class:`~ssal.methods.learner.Learner` (the contract the engine trains);
adding a learner is adding its module and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..config.schema import ModelConfig
from ..errors import SsalInputError
from .learner import Learner
from .mamp import build_mamp_learner, mamp_summary
from .moco import build_moco_learner, moco_summary
from .pstl import build_pstl_learner, pstl_summary

__all__ = ["LEARNERS", "LEARNER_SUMMARIES", "LearnerBuilder", "build_learner", "learner_name", "learner_summary"]

#: ``builder(model_cfg, layout, where=None) -> Learner``: ``model_cfg`` is the ``model:`` section
#: (a :class:`~ssal.config.schema.ModelConfig` or a mapping of it), ``layout`` the data's
#: ``SkeletonLayout`` or its name, ``where`` what to name in error messages. Builders must work
#: under ``torch.device("meta")`` (the size check builds the learner there first).
LearnerBuilder = Callable[..., Learner]


#: The learners, by the name a preset gives as ``model.learner``.
LEARNERS: dict[str, LearnerBuilder] = {"moco": build_moco_learner, "pstl": build_pstl_learner,
                                     "mamp": build_mamp_learner}

#: What a report says about each learner's settings: ``summary(model_section_mapping) -> str``.
LEARNER_SUMMARIES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "moco": moco_summary, "pstl": pstl_summary, "mamp": mamp_summary}


def learner_name(cfg: ModelConfig | Mapping[str, Any]) -> str:
    """The learner a ``model:`` section names (``model.learner``; the schema's default when the
    section leaves it out)."""
    name = cfg.get("learner") if isinstance(cfg, Mapping) else getattr(cfg, "learner", None)
    return str(ModelConfig.learner if name is None else name)


def build_learner(cfg: ModelConfig | Mapping[str, Any], layout: Any, where: str | None = None) -> Learner:
    """The learner of the ``model:`` section ``cfg`` on the data's ``layout``: the builder of
    :data:`LEARNERS` named by :func:`learner_name`. An unknown name is an
    :class:`~ssal.errors.SsalInputError` naming ``where``."""
    name = learner_name(cfg)
    builder = LEARNERS.get(name)
    if builder is None:
        raise SsalInputError(where, f"setting 'model.learner': unknown learner {name!r} "
                                    f"(choose from {', '.join(sorted(LEARNERS))})")
    return builder(cfg, layout, where)


def learner_summary(model: Mapping[str, Any]) -> str:
    """One phrase on the learner of a ``model:`` section (a mapping), for reports."""
    name = learner_name(model)
    return LEARNER_SUMMARIES[name](model) if name in LEARNER_SUMMARIES else name
