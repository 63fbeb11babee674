"""The report of a benchmark run: ``report.md``, ``results.json`` and the learning-curve figure.

Tables give every accuracy as ``mean [95% CI]`` in percent over recordings, and every
comparison as the paired difference with its interval and the word it earns
(:func:`ssal.evaluation.uncertainty.verdict`): never a word from the means alone.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..checkpoint import atomic_write_text
from ..evaluation.report import to_jsonable

COLUMNS = (("logistic", "recording acc."), ("logistic_clip", "clip acc."), ("macro_f1", "macro-F1 (rec.)"),
           ("knn", "kNN rec. acc."))


def _cell(entry: Mapping[str, Any] | None) -> str:
    if not entry:
        return "–"
    return f"{entry['mean'] * 100:.1f} [{entry['lo'] * 100:.1f}, {entry['hi'] * 100:.1f}]"


def _diff_cell(entry: Mapping[str, Any] | None) -> str:
    if not entry:
        return "–"
    sign = "+" if entry["mean"] >= 0 else ""
    return (f"{sign}{entry['mean'] * 100:.1f} [{entry['lo'] * 100:+.1f}, {entry['hi'] * 100:+.1f}] "
            f"**{entry['verdict']}**")


def accuracy_table(results: Mapping[str, Any], part: str) -> list[str]:
    """One row per representation: full-label protocols and few-label recording accuracy."""
    few = [f"few{k}" for k in results["few_labels"]["per_class"]]
    heads = [h for _, h in COLUMNS] + [f"{k[3:]} label(s)/class" for k in few]
    lines = ["| representation | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]
    order = sorted(results["representations"].items(), key=lambda kv: (kv[1]["kind"] != "reference", kv[0]))
    for name, rep in order:
        st = rep.get(part) or {}
        lines.append(f"| {name} | " + " | ".join(_cell(st.get(k)) for k, _ in COLUMNS) + " | "
                     + " | ".join(_cell(st.get(k)) for k in few) + " |")
    return lines


def comparison_table(results: Mapping[str, Any], part: str) -> list[str]:
    """Paired differences (points) of every method against each reference."""
    few = [f"few{k}" for k in results["few_labels"]["per_class"]]
    protos = ["logistic", "knn"] + few
    heads = ["recording acc.", "kNN"] + [f"{k[3:]} label(s)/class" for k in few]
    lines = ["| method | against | " + " | ".join(heads) + " |", "|---|---|" + "---|" * len(heads)]
    for name, rep in results["representations"].items():
        if rep["kind"] != "method":
            continue
        for key, diffs in (rep.get("vs", {}).get(part) or {}).items():
            lines.append(f"| {name} | {key} | " + " | ".join(_diff_cell(diffs.get(p)) for p in protos) + " |")
    return lines


def plot_learning_curves(results: Mapping[str, Any], path: Path, part: str = "test") -> Path | None:
    """Logistic recording accuracy against pretraining epoch, with the reference lines."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..evaluation.plots import save_figure

    curves = results.get("curves") or {}
    if not any(len(c) > 1 for c in curves.values()):
        return None
    fig = Figure(figsize=(7.5, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    reps = results["representations"]
    bands = len(curves) <= 4  # more bands than that hide each other
    for name, pts in curves.items():
        pts = [p for p in pts if part in p]
        if not pts:
            continue
        xs = [p["epoch"] for p in pts]
        ax.plot(xs, [p[part]["mean"] * 100 for p in pts], marker="o", label=name)
        if bands:
            ax.fill_between(xs, [p[part]["lo"] * 100 for p in pts], [p[part]["hi"] * 100 for p in pts], alpha=0.1)
    styles = {"raw-pose": ("black", "--"), "random-stgcn": ("gray", ":"), "random-cffn": ("tab:brown", "-.")}
    for name, rep in reps.items():
        if rep["kind"] != "reference" or name.startswith("scratch-"):
            continue
        st = (rep.get(part) or {}).get("logistic")
        if st:
            color, ls = styles.get(name, ("gray", ":"))
            ax.axhline(st["mean"] * 100, color=color, linestyle=ls, linewidth=1.2, label=name)
    ax.set_xlabel("pretraining epoch")
    ax.set_ylabel("recording accuracy (%), logistic probe")
    band = ", 95% CI band" if bands else ""
    ax.set_title(f"{results['benchmark']}: probe accuracy during pretraining ({part} folds{band})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return save_figure(fig, path)


def write_benchmark_report(out: Path, results: dict[str, Any], *, command: str, device: str) -> None:
    """Write ``results.json``, ``plots/learning_curves.png`` and ``report.md`` into ``out``."""
    from .figures import machine_description

    clean = to_jsonable(results)
    atomic_write_text(out / "results.json", json.dumps(clean, indent=2, allow_nan=False) + "\n")
    fig = plot_learning_curves(clean, out / "plots" / "learning_curves.png")
    fig_val = plot_learning_curves(clean, out / "plots" / "learning_curves_val.png", part="val")
    d = clean["data"]
    sched = clean["schedule"]
    k = len(d["classes"])
    n_test = sum(f["test_recordings"] for f in d["folds"] if f["part"] == "test")
    n_val = sum(f["test_recordings"] for f in d["folds"] if f["part"] == "val")
    lines = [f"# Benchmark `{clean['benchmark']}`: {clean.get('title', '')}", "", "Command:", "", "```", command, "```",
             "", f"Machine: {machine_description(device)}", "",
             f"Written {_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}; run time "
             f"{clean['seconds']:.0f} s (" + ", ".join(f"{a} {b:.0f} s" for a, b in clean["seconds_by_stage"].items())
             + ")", ""]
    if clean.get("about"):
        lines += [clean["about"].strip(), ""]
    lines += ["## Data", "",
              f"- evaluation: {d['recordings']} recordings ({d['recordings_per_class']}), {d['clips']} clips; "
              f"classes {', '.join(d['classes'])} (chance about {100 / k:.0f}% where all classes compete); "
              f"capture sessions {', '.join(d['sessions'])}",
              f"- folds: {', '.join(f['name'] + (' (val)' if f['part'] == 'val' else '') for f in d['folds'])}; "
              f"test recordings in the headline: {n_test}; validation recordings (settings are chosen there): {n_val}",
              f"- pretraining corpus (no labels, no test recording of any fold): {d['pretraining']['clips']} clips of "
              f"{d['pretraining']['recordings']} recordings, sessions {', '.join(d['pretraining']['sessions'])}",
              f"- schedule `{sched['name']}`: {sched['pretrain_epochs']} pretraining epochs, batch {sched['batch_size']}, "
              f"lr {sched['lr']} and queue {sched['queue_size']} (MoCo methods; the others keep their own recipes, "
              f"below), clips resampled to {sched['clip_len']} frames, "
              f"encoder plan `{sched['plan']}`; few labels: {clean['few_labels']['per_class']} recordings per class, "
              f"{clean['few_labels']['draws']} draws per fold (from scratch: {sched['scratch_draws']})", "",
              "## Methods as trained", ""]
    lines += [f"- {name}: {r['trained']}" for name, r in clean["representations"].items() if r.get("trained")]
    lines += ["", "## Headline: test folds", "",
              "Accuracy (%) with 95% bootstrap CI over the test recordings. Recording accuracy: the arg-max of the "
              "mean clip probability per recording. Probes: logistic regression (C = 1) on standardised frozen "
              "features; kNN (k = 10, cosine). `scratch-*` trains the architecture end to end on the same labels.", ""]
    lines += accuracy_table(clean, "test") + [""]
    lines += ["### Paired differences (points) against the references, test folds", "",
              "Same recordings, folds and draws; 95% bootstrap CI of the mean difference; **beats / ties / loses** "
              "from the CI (ties: the interval holds 0).", ""]
    lines += comparison_table(clean, "test") + [""]
    if n_val:
        lines += ["## Validation folds (where settings are chosen)", ""] + accuracy_table(clean, "val") + [""]
        lines += comparison_table(clean, "val") + [""]
    if fig is not None:
        lines += ["## Learning curves", "", "Logistic recording accuracy of every pretraining snapshot (epoch 0 is "
                  "the random initialisation), test folds; the lines are the references.", "",
                  "![learning curves](plots/learning_curves.png)", ""]
        if fig_val is not None:
            lines += ["![learning curves, validation folds](plots/learning_curves_val.png)", ""]
        for name, pts in clean["curves"].items():
            row = ", ".join(f"e{p['epoch']}: {p['test']['mean'] * 100:.1f}" for p in pts if "test" in p)
            lines.append(f"- {name}: {row}")
        lines.append("")
    for name, hist in (clean.get("pretraining") or {}).items():
        if hist:
            lines.append(f"- {name} loss: epoch 1 {hist[0].get('loss', float('nan')):.3f} -> epoch {len(hist)} "
                         f"{hist[-1].get('loss', float('nan')):.3f}")
    lines.append("")
    atomic_write_text(out / "report.md", "\n".join(lines))


__all__ = ["write_benchmark_report", "plot_learning_curves", "accuracy_table", "comparison_table"]
