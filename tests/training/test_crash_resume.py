"""Crash safety of ``ssal pretrain``: SIGKILL, SIGTERM/SIGINT, a diverging loss, a non-empty run
directory, and same-seed determinism at the command line.

The killed runs are real subprocesses (``python -m ssal pretrain`` with a tiny configuration
through ``--set``); resuming and the other checks call :func:`ssal.cli.main.main` in-process.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ssal.checkpoint import load_checkpoint
from ssal.cli.main import main

ROOT = Path(__file__).resolve().parents[2]

TINY = [
    "data.builtin_n=96", "data.builtin_seed=3", "train.batch_size=16", "train.lr=0.05",
    "run.knn_every=0", "run.progress=false", "run.threads=1", "model.queue_size=40",
    "model.encoder.channels=[8,8,16]", "model.encoder.strides=[1,2,1]",
    "model.encoder.image_channels=8", "model.encoder.image_depth=1",
    "model.augment.general.clip_len=20",
]


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """In-process runs set ``run.threads=1`` (fast on shared CI cores); undo it afterwards."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def pretrain_args(out: Path, epochs: int, *extra: str, method: str = "ssal") -> list[str]:
    args = ["pretrain", "--method", method, "--out", str(out), "--seed", "0", "--device", "cpu",
            "--epochs", str(epochs)]
    for item in TINY:
        args += ["--set", item]
    return args + list(extra)


def start(out: Path, epochs: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "ssal", *pretrain_args(out, epochs)], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 60.0, poll: float = 0.002) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"pretrain ended early with {proc.returncode}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("timed out waiting for the run")
        time.sleep(poll)


def epochs_in_metrics(run: Path) -> list[int]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["epoch"] for line in lines if line.strip()]


def resume_to_the_end(run: Path, epochs: int, capsys) -> None:
    code = main(pretrain_args(run, epochs, "--resume"))
    out = capsys.readouterr()
    assert code == 0, out.err
    assert (run / "encoder.pt").is_file()
    assert load_checkpoint(run / "encoder.pt")["stage"] == "pretrain"
    assert epochs_in_metrics(run) == list(range(1, epochs + 1))  # one line per epoch, no duplicates
    final = load_checkpoint(run / "checkpoint.pt")
    assert final["epoch"] == epochs and len(final["history"]) == epochs


def test_sigkill_during_checkpoint_write_then_resume(tmp_path, capsys):
    """Kill -9 while (or right after) checkpoint.pt is written: the last good checkpoint
    loads and --resume finishes the run."""
    run, epochs = tmp_path / "run", 8
    proc = start(run, epochs)
    ckpt = run / "checkpoint.pt"
    try:
        wait_for(ckpt.is_file, proc)
        # Aim at the next write: poll for the temporary file of the atomic write and kill the
        # moment it shows up (or after a short random delay if the poll misses it).
        rng = random.Random(os.getpid())
        give_up = time.monotonic() + rng.uniform(0.05, 0.5)
        while time.monotonic() < give_up and proc.poll() is None:
            if any(p.name.startswith(".checkpoint.pt.") for p in run.iterdir()):
                break
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    state = load_checkpoint(ckpt)  # never torn
    assert 1 <= state["epoch"] <= epochs and state["step_in_epoch"] == 0
    assert not (run / "encoder.pt").exists()
    resume_to_the_end(run, epochs, capsys)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_checkpoints_and_exits_130(tmp_path, capsys, sig):
    run, epochs = tmp_path / "run", 8
    proc = start(run, epochs)
    try:
        wait_for((run / "checkpoint.pt").is_file, proc)
        time.sleep(0.1)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["epoch"] < epochs
    assert not (run / "encoder.pt").exists()
    resume_to_the_end(run, epochs, capsys)


def _nan_after(calls_before_nan: int):
    """A learner builder whose loss turns NaN after ``calls_before_nan`` forward passes."""
    from ssal.methods.moco import build_moco_learner as original

    def build(*args, **kwargs):
        learner = original(*args, **kwargs)
        forward = learner.forward
        count = {"n": 0}

        def poisoned(*a, **k):
            out = forward(*a, **k)
            count["n"] += 1
            if count["n"] > calls_before_nan:
                out["loss"] = out["loss"] * float("nan")
            return out

        learner.forward = poisoned
        return learner

    return build


def test_nan_loss_stops_with_exit_1_and_keeps_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    from ssal.methods.learners import LEARNERS

    run = tmp_path / "run"
    # 96 sequences -> 5 steps per epoch: the loss turns NaN in epoch 2 (8th step)
    monkeypatch.setitem(LEARNERS, "moco", _nan_after(7))
    code = main(pretrain_args(run, 4))
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: loss became nan at epoch 2, step 3") and "checkpoint" in err
    assert "Traceback" not in err
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["epoch"] == 1 and state["step_in_epoch"] == 0
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert epochs_in_metrics(run) == [1]
    assert not (run / "encoder.pt").exists()


def test_exploding_lr_stops_with_exit_1(tmp_path, capsys):
    code = main(pretrain_args(tmp_path / "run", 3, "--set", "train.lr=1.0e+30"))
    err = capsys.readouterr().err
    assert code == 1 and "loss became" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "encoder.pt").exists()


def test_non_empty_run_dir_is_refused_and_untouched(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    files = {"notes.txt": b"keep me", "checkpoint.pt": b"not a checkpoint", "metrics.jsonl": b'{"epoch": 1}\n'}
    for name, data in files.items():
        (run / name).write_bytes(data)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.iterdir()}
    code = main(pretrain_args(run, 1))
    err = capsys.readouterr().err
    assert code == 2 and "not empty" in err and "--resume" in err and "--overwrite" in err
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.iterdir()}
    assert after == before
    # --resume on a directory whose checkpoint is junk: refused (exit 2), still untouched
    assert main(pretrain_args(run, 1, "--resume")) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.iterdir()} == before


def test_same_seed_same_metrics_and_encoder(tmp_path, capsys):
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        assert main(pretrain_args(run, 2)) == 0
    capsys.readouterr()
    ma, mb = ([json.loads(line) for line in (r / "metrics.jsonl").read_text().splitlines()] for r in runs)
    assert [r["epoch"] for r in ma] == [1, 2]
    for ra, rb in zip(ma, mb):
        for key in ra:
            if key not in ("seconds", "seq_per_s"):
                assert ra[key] == rb[key], key
    ea, eb = (load_checkpoint(r / "encoder.pt")["encoder"] for r in runs)
    assert ea.keys() == eb.keys() and len(ea) > 0
    assert all(torch.equal(ea[k], eb[k]) for k in ea)
