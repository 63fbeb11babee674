"""Figures are written as non-empty PNGs, atomically; the report holds the tables and figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ssal.evaluation.metrics import classification_report, summarize_runs
from ssal.evaluation.plots import (
    pca_2d,
    plot_confusion,
    plot_curves,
    plot_embedding,
    plot_fraction_curve,
)
from ssal.evaluation.report import format_table, to_jsonable, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLASSES = ["happy", "angry", "sad", "neutral"]


def _is_png(path: Path) -> bool:
    data = path.read_bytes()
    return len(data) > 2000 and data[:8] == PNG_MAGIC


def _no_temp_files(folder: Path) -> bool:
    return not any(p.name.endswith(".tmp") for p in folder.iterdir())


def _semi(means: list[float], rng: np.random.Generator) -> dict:
    out = {}
    for frac, m in zip(("0.01", "0.05", "0.1"), means):
        runs = [{"seed": s, "report": {"top1": m + 0.02 * rng.standard_normal(), "macro_f1": m - 0.05}}
                for s in range(3)]
        out[frac] = summarize_runs(runs)
    return out


@pytest.fixture(scope="module")
def results() -> dict:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 10)
    pred = y.copy()
    pred[::3] = (pred[::3] + 1) % 4
    lin = classification_report(y, pred, CLASSES)
    return {
        "methods": {
            "ssal": {"knn": {**lin, "top1": 0.55}, "linear": lin, "semi": _semi([0.4, 0.55, 0.62], rng),
                     "pretrain": {"epochs": 3}},
            "skeletonclr": {"linear": {**lin, "top1": 0.5, "macro_f1": 0.45},
                            "semi": _semi([0.35, 0.45, 0.5], rng)},
            "supervised": {"supervised": {**lin, "top1": 0.6}, "semi": _semi([0.3, 0.4, 0.48], rng)},
        },
        "dataset": {"name": "toy", "n_train": 40},
        "notes": ["toy numbers"],
    }


def test_confusion_plot(tmp_path: Path) -> None:
    cm = np.array([[8, 1, 1, 0], [2, 5, 0, 0], [0, 0, 9, 1], [1, 0, 0, 0]])
    p = plot_confusion(cm, CLASSES, tmp_path / "sub" / "cm.png", "toy confusion")
    assert p == tmp_path / "sub" / "cm.png" and _is_png(p)
    assert _no_temp_files(p.parent)
    with pytest.raises(ValueError):
        plot_confusion(cm[:3], CLASSES, tmp_path / "bad.png")


def test_curves_plot(tmp_path: Path) -> None:
    recs = {
        "ssal": [{"epoch": e, "loss": 5 / e, "knn_top1": 0.3 + 0.05 * e} for e in range(1, 11)],
        "aimclr": [{"epoch": e, "loss": 6 / e} for e in range(1, 11)],
    }
    p = plot_curves(recs, "loss", tmp_path / "loss.png", "pretraining loss")
    assert _is_png(p)
    p2 = plot_curves(recs, "knn_top1", tmp_path / "knn.png")  # aimclr has no kNN values: skipped
    assert _is_png(p2) and _no_temp_files(tmp_path)


def test_pca_recovers_the_dominant_direction() -> None:
    rng = np.random.default_rng(0)
    t = rng.standard_normal(200)
    feats = np.outer(t, [3.0, 0.0, 4.0]) + 0.01 * rng.standard_normal((200, 3))
    coords, explained = pca_2d(feats)
    assert coords.shape == (200, 2)
    assert explained[0] > 0.99
    assert abs(np.corrcoef(coords[:, 0], t)[0, 1]) > 0.999


def test_embedding_plot(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(4), 25)
    centers = rng.standard_normal((4, 16)) * 3
    feats = centers[labels] + rng.standard_normal((100, 16))
    labels[:5] = -1
    p = plot_embedding(feats, labels, CLASSES, tmp_path / "emb.png")
    assert _is_png(p)
    with pytest.raises(ValueError):
        plot_embedding(feats[:10], labels, CLASSES, tmp_path / "bad.png")


def test_fraction_plot_accepts_full_results(tmp_path: Path, results: dict) -> None:
    p = plot_fraction_curve(results, tmp_path / "frac.png")
    assert _is_png(p) and _no_temp_files(tmp_path)


def test_format_table_rows_columns_and_values(results: dict) -> None:
    table = format_table(results)
    lines = table.splitlines()
    assert lines[0] == "| method | knn | linear | supervised | semi 1% | semi 5% | semi 10% |"
    assert len(lines) == 2 + 3
    ssal_row = lines[2]
    lin = results["methods"]["ssal"]["linear"]["top1"]
    assert ssal_row.startswith(f"| ssal | 55.0 | {100 * lin:.1f} | – |")
    semi = results["methods"]["ssal"]["semi"]["0.1"]
    assert f"{100 * semi['mean']:.1f} ± {100 * semi['std']:.1f} (n=3)" in ssal_row
    assert "| skeletonclr | – | 50.0 |" in lines[3]
    f1_table = format_table(results, "macro_f1")
    assert "| skeletonclr | – | 45.0 |" in f1_table
    with pytest.raises(ValueError):
        format_table(results, "auc")
    assert format_table({"methods": {}}) == "(no results)"


def test_write_report(tmp_path: Path, results: dict) -> None:
    run = tmp_path / "run"
    plot = plot_fraction_curve(results, run / "plots" / "fraction.png")
    results = {**results, "extra_nan": float("nan"), "arr": np.arange(3)}
    path = write_report(run, results, {"Label fraction": plot}, command="ssal eval --demo",
                        machine="test box, 2 CPU cores")
    text = path.read_text()
    assert path == run / "report.md"
    assert format_table(to_jsonable(results)) in text
    assert "Macro-F1" in text and "Per-class accuracy" in text
    assert "![Label fraction](plots/fraction.png)" in text
    assert "ssal eval --demo" in text and "test box, 2 CPU cores" in text
    assert "toy numbers" in text
    saved = json.loads((run / "results.json").read_text())
    assert saved["extra_nan"] is None and saved["arr"] == [0, 1, 2]
    assert saved["methods"]["ssal"]["semi"]["0.05"]["mean"] == pytest.approx(
        results["methods"]["ssal"]["semi"]["0.05"]["mean"])
    assert _no_temp_files(run)
