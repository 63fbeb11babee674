"""The notes of an experiment's report: plain-language checks of the claims the demo is meant
to show. Their words (beats / ties with / loses to) come from the paired 95% t-interval over
seeds or label subsets (:func:`ssal.evaluation.uncertainty.seed_difference`), never from the
means."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..methods.registry import encoder_name
from .pretraining import SSL_METHODS


def entry_top1(entry: Any) -> float | None:
    """Top-1 of a single-run entry or the mean of a summary over seeds; None if absent."""
    if not isinstance(entry, Mapping):
        return None
    value = entry.get("top1", entry.get("mean"))
    return None if value is None else float(value)


def format_entry(entry: Mapping[str, Any]) -> str:
    """``"61.0%"`` for a single run, ``"61.0 ± 2.1%"`` for a summary over runs."""
    if "top1" in entry:
        return f"{entry['top1'] * 100:.1f}%"
    return f"{entry['mean'] * 100:.1f} ± {(entry.get('std') or 0) * 100:.1f}%"


def run_top1(entry: Mapping[str, Any]) -> list[float]:
    """Top-1 of each run of an entry (seeds or label subsets, in order); one value for a single run."""
    runs = entry.get("runs")
    if isinstance(runs, list):
        return [float(r.get("report", r)["top1"]) for r in runs]
    return [float(entry["top1"])] if "top1" in entry else []


def seed_verdict(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[str, str]:
    """``(word, detail)``: ``beats`` / ``ties with`` / ``loses to`` from the 95% t-interval of the
    paired difference over runs (run i against run i: the same seed or label subset), and the
    interval; ``("vs", "one run each, no interval, so no verdict")`` without pairs."""
    from ..evaluation.uncertainty import seed_difference, verdict

    ra, rb = run_top1(a), run_top1(b)
    d = seed_difference(ra, rb) if len(ra) == len(rb) else None
    if d is None:
        return "vs", "one run each, no interval, so no verdict"
    word = {"beats": "beats", "ties": "ties with", "loses": "loses to"}[verdict(d)]
    return word, f"paired difference {d.mean * 100:+.1f} [{d.lo * 100:+.1f}, {d.hi * 100:+.1f}] points over {d.n} runs"


def _one_class_notes(methods: Mapping[str, Any]) -> list[str]:
    """A random-init linear probe that predicts one class, explained."""
    notes = []
    for arch in ("cffn", "stgcn"):
        entry = methods.get(f"random-{arch}", {}).get("linear", {})
        runs = [r.get("report", r) for r in entry.get("runs", [entry])]
        one_class = [r for r in runs if r.get("per_class") and sum(v > 0 for v in r["per_class"].values()) <= 1]
        if one_class:
            notes.append(f"random-{arch}: the linear probe predicts one class ({len(one_class)} of {len(runs)} "
                         "initialisations). An untrained encoder in eval mode "
                         "(BatchNorm at its initial statistics) gives features that barely vary between sequences, "
                         "too little for SGD at lr 3.0 on raw features; the probe on standardised features "
                         "(linear_std) is the stronger random reference.")
    return notes


def _method_notes(m: str, methods: Mapping[str, Any]) -> list[str]:
    """Method ``m`` against a random encoder of its architecture (frozen protocols) and against
    supervised-from-scratch (each label fraction)."""
    notes = []
    arch = encoder_name(m)
    for proto, label in (("knn", "kNN"), ("linear", "linear"), ("linear_std", "linear on standardised features")):
        rnd_entry = methods.get(f"random-{arch}", {}).get(proto)
        lin_entry = methods[m].get(proto)
        if entry_top1(rnd_entry) is not None and entry_top1(lin_entry) is not None:
            word, detail = seed_verdict(lin_entry, rnd_entry)
            notes.append(f"{m}: {label} {format_entry(lin_entry)} {word} a random {arch} encoder "
                         f"({format_entry(rnd_entry)}): {detail}.")
    sup = methods.get(f"supervised-{arch}", {}).get("semi", {})
    for key, entry in (methods[m].get("semi") or {}).items():
        ref = sup.get(key)
        if ref and entry.get("mean") is not None and ref.get("mean") is not None:
            word, detail = seed_verdict(entry, ref)
            notes.append(f"{m}: finetune at {float(key) * 100:g}% labels {format_entry(entry)} {word} "
                         f"supervised-from-scratch {format_entry(ref)}: {detail}.")
    return notes


def compare(results: Mapping[str, Any]) -> list[str]:
    """Plain-language checks of the claims the demo is meant to show."""
    methods = results["methods"]
    notes = _one_class_notes(methods)
    for m in SSL_METHODS:
        if m in methods:
            notes.extend(_method_notes(m, methods))
    return notes


__all__ = ["compare", "entry_top1", "format_entry", "run_top1", "seed_verdict"]
