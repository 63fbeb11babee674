"""A benchmark's results from its per-recording scores (:mod:`.scoring`): a 95% interval per
representation, protocol and fold part (test or validation), paired differences of each
method against its references, and the description of the data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..evaluation.metrics import macro_f1
from ..evaluation.uncertainty import bootstrap_ci, bootstrap_statistic, paired_difference, verdict
from ..methods.registry import encoder_name
from .corpus import EvalData
from .folds import Fold
from .scoring import shared_units
from .spec import MethodEntry

PARTS = ("test", "val")


def interval_stats(scores: dict[str, Any], protocols: Sequence[str], part: str) -> dict[str, Any]:
    """Interval per protocol over the recordings of ``part`` (and the macro-F1 of the votes)."""
    out: dict[str, Any] = {}
    for proto in protocols:
        units = shared_units(part, proto, scores)
        if units:
            out[proto] = bootstrap_ci([scores[proto][r] for r in units]).to_dict()
    units = shared_units(part, "pred", scores)
    if units:
        k = 1 + max(max(scores["truth"].values()), max(scores["pred"].values()))
        out["macro_f1"] = bootstrap_statistic(np.array([scores["truth"][r] for r in units]),
                                              np.array([scores["pred"][r] for r in units]),
                                              lambda t, p: macro_f1(t, p, k)).to_dict()
    return out


def paired_stats(a: dict[str, Any], b: dict[str, Any], protocols: Sequence[str], part: str) -> dict[str, Any]:
    """Paired difference ``a - b`` per protocol over the recordings of ``part``, with its verdict."""
    out: dict[str, Any] = {}
    for proto in protocols:
        units = shared_units(part, proto, a, b)
        if units:
            d = paired_difference([a[proto][r] for r in units], [b[proto][r] for r in units])
            out[proto] = {**d.to_dict(), "verdict": verdict(d)}
    return out


def representation_table(scores: dict[str, dict[str, Any]], kinds: dict[str, dict[str, Any]],
                         chosen: Sequence[MethodEntry], protocols: Sequence[str]) -> dict[str, Any]:
    """Every representation's intervals, and each method against the raw pose, the random init
    and the from-scratch model of its architecture (``"vs"``)."""
    table: dict[str, Any] = {}
    for name, sc in scores.items():
        table[name] = {**kinds[name], **{part: interval_stats(sc, protocols, part) for part in PARTS}}
    for m in chosen:
        arch = encoder_name(m.method)
        refs = {key: ref for key, ref in (("raw-pose", "raw-pose"), ("random", f"random-{arch}"),
                                          ("scratch", f"scratch-{arch}")) if ref in scores}
        table[m.name]["vs"] = {
            part: {key: paired_stats(scores[m.name], scores[ref], protocols, part) for key, ref in refs.items()}
            for part in PARTS
        }
    return table


def describe_data(ev: EvalData, folds: list[Fold], corpus: Any, used: list[Any], source: str) -> dict[str, Any]:
    """The evaluation recordings, the folds and the pretraining corpus, for the report."""
    groups = np.asarray(ev.dataset.recording_ids)
    per_class: dict[str, int] = {}
    for g in dict.fromkeys(groups):
        c = ev.dataset.classes[int(ev.dataset.y[np.flatnonzero(groups == g)[0]])]
        per_class[c] = per_class.get(c, 0) + 1
    return {
        "source": source, "classes": list(ev.dataset.classes), "clips": len(ev.dataset),
        "recordings": len(ev.recordings), "recordings_per_class": per_class,
        "sessions": sorted({r.fields.get("session", "") for r in ev.recordings.values()}),
        "folds": [{"name": f.name, "part": f.part, "train_clips": int(len(f.train)), "test_clips": int(len(f.test)),
                   "test_recordings": int(len(set(groups[f.test])))} for f in folds],
        "pretraining": {"clips": len(corpus), "recordings": len(used),
                        "sessions": sorted({r.fields.get("session", "") for r in used})},
    }


__all__ = ["interval_stats", "paired_stats", "representation_table", "describe_data"]
