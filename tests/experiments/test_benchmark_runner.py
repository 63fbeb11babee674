"""The benchmark runner end to end on a synthetic BVH folder (no shared data needed): two
capture sessions told apart by the header, two styles that differ in arm swing, leave-one-
action-out; the raw-pose probe must read the style, and every reference must be in the table."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bvh_rig import RIG  # the small E-Gait-named rig of the BVH reader tests
from ssal.data.bvh import write_bvh
from ssal.data.bvh_header import session_of
from ssal.experiments import run_benchmark


def _write(path, swing: float, phase: float, hips_y: float, frames: int = 50) -> None:
    """A walk whose arms swing by ``swing`` degrees about a raised posture of ``swing / 2``
    (a linear cue: a swing alone, at a random phase, has the same mean pose)."""
    offsets = np.array([r[2] for r in RIG], dtype=float)
    offsets[0, 1] = hips_y  # the header differs between sessions
    t = np.arange(frames) / 30.0
    m = np.zeros((frames, 6 + 3 * (len(RIG) - 1)))
    m[:, 1] = 40.0
    m[:, 2] = t * 50.0
    arm = swing / 2 + swing * np.sin(2 * np.pi * 1.5 * t + phase)
    m[:, 6 + 3 * 3] = arm  # LeftArm, Zrotation: raises the arm sideways
    m[:, 6 + 3 * 6] = -arm  # RightArm
    legs = 25 * np.sin(2 * np.pi * 1.5 * t + phase)
    m[:, 6 + 3 * 9 + 1] = legs
    m[:, 6 + 3 * 12 + 1] = -legs
    names = [r[0] for r in RIG]
    write_bvh(path, names, [r[1] for r in RIG], offsets, m, 1 / 30, rotation_order="ZXY")


@pytest.fixture()
def data_root(tmp_path):
    rng = np.random.default_rng(0)
    ev = tmp_path / "root" / "eval"
    pre = tmp_path / "root" / "pre"
    ev.mkdir(parents=True)
    pre.mkdir(parents=True)
    for action in ("walk", "run", "turn"):
        for style, swing in (("calm", 10.0), ("wild", 60.0)):
            for take in range(2):
                _write(ev / f"x_{action}_{style}_{take:03d}.bvh", swing, rng.uniform(0, 6), 94.0)
        _write(ev / f"x_{action}_other_000.bvh", 30.0, 0.0, 93.0)  # another session: filtered out
    for k in range(6):
        _write(pre / f"p_walk_s{k}_000.bvh", rng.uniform(5, 60), rng.uniform(0, 6), 95.0)
    session = session_of(ev / "x_walk_calm_000.bvh")
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"""
name: synthetic
title: calm vs wild arms
evaluation: {{folder: eval, pattern: "x_{{content}}_{{style}}_{{id}}", label: style,
             where: {{session: [{session}]}}, window: 40, stride: 10}}
split: {{scheme: leave-one-out, by: content, validation: [turn]}}
few_labels: {{per_class: [1], draws: 2}}
pretraining: {{window: 40, stride: 20, sources: [{{folder: pre, pattern: "p_{{content}}_{{style}}_{{id}}"}},
                                                 {{folder: eval, pattern: "x_{{content}}_{{style}}_{{id}}",
                                                   where_not: {{session: [{session}]}}}}]}}
methods: [skeletonclr]
schedules:
  default: {{pretrain_epochs: 2, snapshot_every: 1, clip_len: 20, plan: cpu, scratch_epochs: 1, scratch_draws: 1}}
  tiny: {{batch_size: 8, queue_size: 16, draws: 2}}
""")
    return tmp_path / "root", spec


def test_runner_on_a_synthetic_folder(data_root, tmp_path):
    root, spec = data_root
    res = run_benchmark(str(spec), root, tmp_path / "out", schedule="tiny", progress=False, log=lambda m: None)
    d = res["data"]
    assert d["recordings"] == 12 and d["recordings_per_class"] == {"calm": 6, "wild": 6}
    assert len(d["sessions"]) == 1 and d["sessions"][0] not in d["pretraining"]["sessions"]
    assert d["pretraining"]["recordings"] == 6 + 3  # the pre folder + the other session's files
    reps = res["representations"]
    assert set(reps) == {"raw-pose", "random-stgcn", "skeletonclr", "scratch-stgcn"}
    raw = reps["raw-pose"]["test"]["logistic"]
    assert raw["n"] == 8 and raw["mean"] >= 0.75  # arm swing is plain in the pose: beats chance (50%)
    assert [p["epoch"] for p in res["curves"]["skeletonclr"]] == [0, 1, 2]
    vs = reps["skeletonclr"]["vs"]["test"]["random"]["logistic"]
    assert vs["verdict"] in ("beats", "ties", "loses") and vs["lo"] <= vs["mean"] <= vs["hi"]
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["representations"]["raw-pose"]["test"]["logistic"]["mean"] == raw["mean"]
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Headline: test folds" in report
    trained = reps["skeletonclr"]["trained"]
    assert trained.startswith("ST-GCN ") and "MoCo" in trained and f"- skeletonclr: {trained}" in report


def test_pretrain_only_then_resume_scores_the_same_encoders(data_root, tmp_path):
    root, spec = data_root
    out = tmp_path / "out"
    first = run_benchmark(str(spec), root, out, schedule="tiny", progress=False, pretrain_only=True, log=lambda m: None)
    assert set(first) == {"encoders"} and not (out / "results.json").exists()
    enc = (out / "pretrain" / "skeletonclr" / "encoder.pt").read_bytes()
    res = run_benchmark(str(spec), root, out, schedule="tiny", progress=False, resume=True, log=lambda m: None)
    assert (out / "pretrain" / "skeletonclr" / "encoder.pt").read_bytes() == enc  # reused, not retrained
    assert "skeletonclr" in res["representations"]
    # a resumed run with another schedule is refused
    from ssal.errors import SsalInputError

    spec.write_text(spec.read_text().replace("pretrain_epochs: 2", "pretrain_epochs: 3"))
    with pytest.raises(SsalInputError, match="other settings"):
        run_benchmark(str(spec), root, out, schedule="tiny", progress=False, resume=True, log=lambda m: None)
