"""What an experiment's report shows beside its tables: the figures (pretraining curves,
confusion matrices, the embedding map, the label-fraction curve) and the machine it ran on."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..inference import load
from ..training.run_files import read_metrics
from .experiment import Experiment


def pretraining_plots(histories: Mapping[str, list[dict[str, Any]]], folder: Path, loss_title: str,
                      knn: tuple[str, str]) -> dict[str, Path]:
    """Loss and (when monitored) kNN curves of pretraining runs: ``{caption: png}``; ``knn`` is
    (caption, title) of the kNN plot."""
    from ..evaluation import plots

    made: dict[str, Path] = {}
    if any(histories.values()):
        made["Pretraining loss"] = plots.plot_curves(histories, "loss", folder / "pretrain_loss.png", title=loss_title)
        if any("knn_val_top1" in r for h in histories.values() for r in h):
            made[knn[0]] = plots.plot_curves(histories, "knn_val_top1", folder / "pretrain_knn.png", title=knn[1])
    return made


def make_plots(exp: Experiment, results: dict[str, Any], pretrained: Mapping[str, Path]) -> dict[str, Path]:
    """Pretraining curves, confusion matrices, the embedding map and the label-fraction curve."""
    from ..evaluation import plots

    out = exp.out / "plots"
    out.mkdir(parents=True, exist_ok=True)
    made: dict[str, Path] = {}
    made.update(pretraining_plots({name: read_metrics(exp.out / name) for name in pretrained}, out,
                                  "Pretraining loss (InfoNCE + L_d where used)",
                                  ("kNN accuracy on the validation split during pretraining",
                                   "kNN top-1 (validation) during pretraining")))
    for name, res in results["methods"].items():
        for proto in ("linear", "finetune", "supervised"):
            entry = res.get(proto)
            if entry and "confusion" in entry:
                made[f"Confusion matrix: {name}, {proto} (test)"] = plots.plot_confusion(
                    np.asarray(entry["confusion"]), exp.dataset.classes, out / f"confusion_{name}_{proto}.png",
                    title=f"{name} {proto}: test top-1 {entry['top1'] * 100:.1f}%")
                break
    first = next(iter(pretrained), None)
    if first is not None:
        test = exp.test
        feats = load(pretrained[first]).embed(test)
        made[f"Embedding of the test split ({first} encoder)"] = plots.plot_embedding(
            feats, test.y, test.classes, out / f"embedding_{first}.png",
            title=f"{first} features of the test split (PCA), coloured by emotion")
    semi = {m: r["semi"] for m, r in results["methods"].items() if r.get("semi")}
    if semi:
        made["Accuracy against label fraction"] = plots.plot_fraction_curve(semi, out / "label_fraction.png")
    return made


def machine_description(device: str) -> str:
    """A one-line description of the hardware the run used."""
    import os

    cpu = platform.processor() or platform.machine()
    text = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores ({cpu}), torch {torch.__version__}, " \
           f"{torch.get_num_threads()} threads, device {device}"
    if device.startswith("cuda") and torch.cuda.is_available():
        text += f" ({torch.cuda.get_device_name()})"
    return text


__all__ = ["pretraining_plots", "make_plots", "machine_description"]
