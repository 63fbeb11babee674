"""Evaluation report: markdown tables (method x protocol), embedded plots, results JSON.

The ``results`` dict
--------------------
Everything an evaluation run measured, JSON-ready::

    results = {
        "methods": {
            "<method>": {                      # "ssal", "aimclr", "skeletonclr", "supervised"...
                "knn":        <entry>,         # kNN on frozen features
                "linear":     <entry>,         # linear protocol (SPEC: raw features, lr 3.0)
                "linear_std": <entry>,         # linear probe on standardised features
                "finetune":   <entry>,         # finetune protocol
                "supervised": <entry>,         # supervised reference (random init)
                "semi": {"0.01": <summary>, "0.05": <summary>, ...},   # semi_supervised()
                "pretrain": {...},             # free-form (losses, epochs), not tabulated
                "feature": "fused 128-d",      # optional: the evaluated representation (a column)
            },
        },
        "dataset": {...},                      # optional, free-form (name, sizes, split file)
        "notes": ["..."],                      # optional, listed in the report
    }

An ``<entry>`` is either one run's
:func:`~ssal.evaluation.metrics.classification_report` (``top1``, ``macro_f1``,
``per_class``, ``confusion``, ...) or a ``<summary>`` over seeds / folds from
:func:`~ssal.evaluation.metrics.summarize_runs` (``mean``/``std`` of top-1,
``macro_f1_mean``/``macro_f1_std``, ``runs``). Accuracies are fractions in [0, 1]; tables show
percentages, ``mean ± std`` for summaries (sample std over runs), ``–`` where a method lacks
a protocol.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoint import atomic_write_text

#: Protocol columns in table order; other keys holding entries follow in their given order.
PROTOCOLS = ("knn", "linear", "linear_std", "finetune", "supervised")
#: Column titles that differ from the protocol key.
HEADERS = {"linear_std": "linear (std. features)"}
#: Method keys that are not protocol entries.
NON_PROTOCOL_KEYS = ("semi", "pretrain", "feature", "pretrain_seeds", "init_seeds")
#: Metrics the tables can show.
METRICS = {"top1": "Top-1 accuracy (%)", "macro_f1": "Macro-F1 (%)"}


def to_jsonable(obj: Any) -> Any:
    """A copy of ``obj`` that :func:`json.dumps` accepts in strict mode.

    NumPy scalars and arrays become Python numbers and lists, paths become strings, tuples
    become lists, and non-finite floats become ``None``.
    """
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def _is_entry(v: Any) -> bool:
    return isinstance(v, Mapping) and ("top1" in v or "mean" in v)


def _columns(methods: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str | None]]:
    """``(protocol, fraction_key or None)`` columns present in any method."""
    extra: list[str] = []
    fractions: set[str] = set()
    for res in methods.values():
        for key, val in res.items():
            if key == "semi" and isinstance(val, Mapping):
                fractions.update(val)
            elif key not in PROTOCOLS + NON_PROTOCOL_KEYS and _is_entry(val) and key not in extra:
                extra.append(key)
    present = [p for p in PROTOCOLS if any(_is_entry(r.get(p)) for r in methods.values())]
    cols: list[tuple[str, str | None]] = [(p, None) for p in present + extra]
    cols += [("semi", f) for f in sorted(fractions, key=float)]
    return cols


def _cell(entry: Any, metric: str) -> str:
    if not _is_entry(entry):
        return "–"
    if metric in entry:
        v = entry[metric]
        return "–" if v is None else f"{100 * v:.1f}"
    mean_key, std_key = ("mean", "std") if metric == "top1" else (f"{metric}_mean", f"{metric}_std")
    mean, std = entry.get(mean_key), entry.get(std_key)
    if mean is None:
        return "–"
    n = len(entry.get("runs", []))
    text = f"{100 * mean:.1f} ± {100 * (std or 0.0):.1f}"
    return f"{text} (n={n})" if n > 1 else text


def _header(col: tuple[str, str | None]) -> str:
    proto, frac = col
    return HEADERS.get(proto, proto) if frac is None else f"semi {float(frac) * 100:g}%"


def format_table(results: Mapping[str, Any], metric: str = "top1") -> str:
    """A markdown table, one row per method and one column per protocol / label fraction.

    ``metric`` is ``"top1"`` or ``"macro_f1"``; values in percent, ``mean ± std (n=runs)`` for
    results over several runs.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    methods = results.get("methods", {})
    cols = _columns(methods)
    if not methods or not cols:
        return "(no results)"
    # The evaluated representation of each method (e.g. "fused 128-d"), where results name it.
    with_feature = any(isinstance(r.get("feature"), str) for r in methods.values())
    first = "| method | feature |" if with_feature else "| method |"
    lines = [
        first + " " + " | ".join(_header(c) for c in cols) + " |",
        "|---|" + ("---|" if with_feature else "") + "---|" * len(cols),
    ]
    for name, res in methods.items():
        cells = [str(res.get("feature", "–"))] if with_feature else []
        for proto, frac in cols:
            entry = res.get(proto)
            if frac is not None:
                entry = entry.get(frac) if isinstance(entry, Mapping) else None
            cells.append(_cell(entry, metric))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_per_class(results: Mapping[str, Any]) -> str:
    """Per-class accuracy (%) of every single-run entry holding ``per_class``."""
    rows = []
    classes: list[str] | None = None
    for name, res in results.get("methods", {}).items():
        for proto, entry in res.items():
            if isinstance(entry, Mapping) and isinstance(entry.get("per_class"), Mapping):
                classes = classes or list(entry["per_class"])
                rows.append((f"{name} / {proto}", entry["per_class"]))
    if not rows or classes is None:
        return ""
    lines = ["| method / protocol | " + " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
    for label, pc in rows:
        vals = [pc.get(c) for c in classes]
        cells = ("–" if v is None else f"{100 * v:.1f}" for v in vals)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(
    run_dir: str | os.PathLike[str],
    results: Mapping[str, Any],
    plots: Mapping[str, str | os.PathLike[str]] | None = None,
    command: str = "",
    machine: str = "",
) -> Path:
    """Write ``report.md`` and ``results.json`` into ``run_dir`` (atomically); returns the
    report's path.

    ``plots`` maps a caption to a PNG path; images are embedded with paths relative to
    ``run_dir``. ``command`` is the command line that produced the results and ``machine``
    a description of the hardware (both shown verbatim).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    clean = to_jsonable(results)
    atomic_write_text(run_dir / "results.json", json.dumps(clean, indent=2, allow_nan=False) + "\n")

    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = ["# Evaluation report", ""]
    if command:
        out += ["Command:", "", "```", command, "```", ""]
    if machine:
        out += [f"Machine: {machine}", ""]
    out += [f"Written: {now}", ""]
    dataset = clean.get("dataset")
    if isinstance(dataset, Mapping) and dataset:
        out += ["## Data", ""] + [f"- {k}: {v}" for k, v in dataset.items()] + [""]
    for metric, caption in METRICS.items():
        out += [f"## {caption}", "", format_table(clean, metric), ""]
    per_class = format_per_class(clean)
    if per_class:
        out += ["## Per-class accuracy (%)", "", per_class, ""]
    out += [
        "Values are percentages on the test split. `mean ± std (n=runs)` is the mean and the "
        "sample standard deviation over seeds or folds. Checkpoints were selected on the "
        "validation split or taken at the last epoch, never on the test split.",
        "",
    ]
    trained = clean.get("trained")
    if isinstance(trained, Mapping) and trained:
        out += ["## Methods as trained", ""] + [f"- {k}: {v}" for k, v in trained.items()] + [""]
    notes = clean.get("notes")
    if notes:
        out += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    if plots:
        out += ["## Figures", ""]
        for caption, p in plots.items():
            rel = os.path.relpath(Path(p).resolve(), run_dir.resolve())
            out += [f"### {caption}", "", f"![{caption}]({Path(rel).as_posix()})", ""]
    path = run_dir / "report.md"
    atomic_write_text(path, "\n".join(out))
    return path
