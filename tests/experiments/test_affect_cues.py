"""The core of ``benchmarks/bench_affect_cues.py`` on a synthetic tempo-only task (no data needed).

Two classes of "walkers" that differ only in tempo: every joint oscillates about the same
posture with the same amplitude pattern, class 1 at 1.6x the frequency of class 0. A probe on
joint speed reads the class perfectly from clean clips; temporal crop-and-resize (a window of
50-100 % of the clip stretched to the clip length) slows the apparent motion and must lower
the test-time accuracy, while a rotation about the vertical axis leaves joint speeds (norms of
displacements) unchanged and must not.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ssal.augment import TemporalCropResize, axis_rotation

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_affect_cues.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("bench_affect_cues", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


bench = _load_script()


class VerticalRotate(nn.Module):
    """A random rotation about the up axis (y), per sample, drawn from the generator."""

    def forward(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        angle = torch.rand(x.shape[0], generator=generator) * (2 * math.pi)
        return torch.einsum("nij,njtv->nitv", axis_rotation(angle.to(x.dtype), 1), x)


def tempo_task(actions: int = 3, recordings: int = 2, clips: int = 3, t: int = 60, v: int = 16, seed: int = 0):
    """Clips ``(N, 3, t, v)``, labels, recording ids and leave-one-action-out folds."""
    rng = np.random.default_rng(seed)
    posture = rng.normal(0.0, 0.3, size=(3, 1, v))
    direction = rng.normal(0.0, 1.0, size=(3, 1, v))
    direction /= np.linalg.norm(direction, axis=0, keepdims=True)
    amplitude = rng.uniform(0.05, 0.2, size=(1, 1, v))
    frames = np.arange(t)[None, :, None]
    xs, ys, groups, actions_of = [], [], [], []
    for a in range(actions):
        for label, cycles in ((0, 2.0), (1, 3.2)):  # cycles per clip: the tempo, the only difference
            for r in range(recordings):
                rec = f"action{a}_class{label}_{r}"
                scale = rng.uniform(0.9, 1.1)  # recording-level amplitude variation
                for _ in range(clips):
                    phase = rng.uniform(0, 2 * math.pi, size=(1, 1, v))
                    wave = np.sin(2 * math.pi * cycles * frames / t + phase)
                    xs.append(posture + scale * amplitude * direction * wave)
                    ys.append(label)
                    groups.append(rec)
                    actions_of.append(a)
    x = np.stack(xs).astype(np.float32)
    act = np.array(actions_of)
    folds = [(f"action{a}", np.flatnonzero(act != a), np.flatnonzero(act == a)) for a in range(actions)]
    return x, np.array(ys), groups, folds


def test_crop_resize_destroys_tempo_cue_rotation_does_not() -> None:
    x, y, groups, folds = tempo_task()
    views = {
        "crop-and-resize": TemporalCropResize(clip_len=32, crop_ratio=(0.5, 1.0)),
        "shift-only crop": TemporalCropResize(clip_len=32),
        "vertical rotation": VerticalRotate(),
    }
    result = bench.affect_cue_scores(x, y, groups, folds, 2, views, clip_len=32, copies=1, seed=0,
                                     features=bench.speed_features)
    clean = result.clean
    assert len(clean.recordings) == len(set(groups)) == 12
    assert clean.clip_acc.mean() >= 0.95 and clean.rec_correct.mean() >= 0.95  # tempo is readable

    def test_time(name: str) -> float:
        return float(result.views[name]["test-time"].clip_acc.mean())

    # a shorter window stretched to 32 frames slows the fast class down into the slow one
    assert test_time("crop-and-resize") < clean.clip_acc.mean() - 0.15
    # joint speeds are norms of displacements: unchanged by any rotation
    assert abs(test_time("vertical rotation") - clean.clip_acc.mean()) <= 0.05
    # the presets' crop shifts a full-length window: the tempo is kept
    assert abs(test_time("shift-only crop") - clean.clip_acc.mean()) <= 0.1

    rows = bench.summarize(result)
    assert [(r.view, r.mode) for r in rows][:2] == [("clean (no augmentation)", "clean"),
                                                   ("crop-and-resize", "test-time")]
    assert len(rows) == 1 + len(views) * len(bench.MODES)
    by = {(r.view, r.mode): r for r in rows}
    assert by[("vertical rotation", "test-time")].rec_verdict == "ties"
    table = bench.markdown_table(rows, "clip")
    assert table.count("\n") == 1 + 1 + len(views)  # header, rule, clean line, one line per view


def test_fold_with_a_recording_on_both_sides_is_refused() -> None:
    x, y, groups, folds = tempo_task(actions=2, recordings=1, clips=2)
    name, train, test = folds[0]
    leaky = [(name, np.concatenate([train, test[:1]]), test)]
    with pytest.raises(ValueError, match="both sides"):
        bench.affect_cue_scores(x, y, groups, leaky, 2, {}, features=bench.speed_features)


def test_missing_data_folder_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--data", str(tmp_path / "absent"), "--out", str(tmp_path / "out")]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()
