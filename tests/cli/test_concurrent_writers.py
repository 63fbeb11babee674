"""Two real ``ssal`` processes writing one output: exactly one writes it, the other is refused
with one ``error:`` line naming the lock (exit code 2), and a lock left by a process that is
gone is taken over.

Each process is ``python -m ssal.cli.main ...`` run through :mod:`runpy` after a start
barrier: both import everything first, then the test releases them together, so the race is
between the two commands, not between their import times on a loaded machine.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch

from ssal.data.io import load_dataset
from ssal.outputs import LOCK_NAME, lock_file

#: Imports everything, waits for the barrier file, then runs ``python -m ssal.cli.main ARGS``.
LAUNCH = """\
import os, runpy, sys, time
import ssal.cli.data_cmd, ssal.cli.pretrain_cmd, ssal.training.engine, ssal.data.synthetic  # imports first
barrier = sys.argv[1]
sys.argv = ["ssal"] + sys.argv[2:]
open(barrier + "." + str(os.getpid()), "w").close()
while not os.path.exists(barrier):
    time.sleep(0.005)
runpy.run_module("ssal.cli.main", run_name="__main__", alter_sys=True)
"""

TINY = ["--method", "skeletonclr", "--epochs", "1", "--set", "data.builtin_n=96", "--set", "train.batch_size=16",
        "--set", "model.queue_size=40", "--set", "model.encoder.channels=[8,16]",
        "--set", "model.encoder.strides=[1,2]", "--set", "model.augment.general.clip_len=20",
        "--set", "run.knn_every=0", "--no-progress"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _race(tmp: Path, *commands: list[str], timeout: float = 600) -> list[tuple[int, str, str]]:
    """Start one process per command, release them together; ``(rc, stdout, stderr)`` each."""
    barrier = tmp / "go"
    procs = [subprocess.Popen([sys.executable, "-c", LAUNCH, str(barrier), *cmd], cwd=tmp, env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for cmd in commands]
    deadline = time.monotonic() + timeout
    while len(list(tmp.glob("go.*"))) < len(procs):  # every process has imported everything
        assert time.monotonic() < deadline, "processes did not start"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.02)
    barrier.touch()
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        out.append((p.returncode, stdout, stderr))
    return out


def _one_refusal(results: list[tuple[int, str, str]]) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    """The winner and the loser: exit codes 0 and 2, the loser's stderr one ``error:`` line."""
    codes = sorted(rc for rc, _, _ in results)
    assert codes == [0, 2], results
    win = next(r for r in results if r[0] == 0)
    lose = next(r for r in results if r[0] == 2)
    lines = lose[2].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lose[2]
    assert "Traceback" not in lose[2]
    return win, lose


def test_two_pretraining_runs_into_one_directory(tmp_path):
    out = tmp_path / "same"
    results = _race(tmp_path, ["pretrain", *TINY, "--seed", "1", "--out", str(out)],
                    ["pretrain", *TINY, "--seed", "2", "--out", str(out)])
    win, lose = _one_refusal(results)
    line = lose[2].strip()
    assert "is being written by another ssal process" in line and str(out / LOCK_NAME) in line, line
    assert str(out) in line and "pid " in line
    # The winner's run is complete and its own: the encoder loads, the config names its seed.
    ck = torch.load(out / "encoder.pt", map_location="cpu", weights_only=False)
    assert ck["encoder"] and ck["config"]["seed"] in (1, 2)
    assert f"--seed {ck['config']['seed']}" not in line  # (the refusal names no seed: just the holder)
    assert not (out / LOCK_NAME).exists()
    assert (out / "metrics.jsonl").is_file() and (out / "checkpoint.pt").is_file()


def test_two_synth_runs_into_one_corpus(tmp_path):
    out = tmp_path / "same.ssal"
    results = _race(tmp_path, ["data", "synth", "--n", "50", "--seed", "1", "--out", str(out)],
                    ["data", "synth", "--n", "50", "--seed", "2", "--out", str(out)])
    _, lose = _one_refusal(results)
    line = lose[2].strip()
    # Refused while the other writes (the lock), or after it finished (the corpus exists).
    assert ("being written by another ssal process" in line and str(lock_file(out)) in line) \
        or "pass --overwrite" in line, line
    ds = load_dataset(out)
    assert len(ds) == 50
    assert not lock_file(out).exists()


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


def test_stale_lock_is_recovered(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname(), "started": "then"}))
    done = subprocess.run([sys.executable, "-m", "ssal.cli.main", "pretrain", *TINY, "--out", str(out)],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert (out / "encoder.pt").is_file() and not (out / LOCK_NAME).exists()

    corpus = tmp_path / "c.npz"
    lock_file(corpus).write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname(), "started": "then"}))
    done = subprocess.run([sys.executable, "-m", "ssal.cli.main", "data", "synth", "--n", "20", "--out", str(corpus)],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert len(load_dataset(corpus)) == 20 and not lock_file(corpus).exists()


def test_live_lock_refuses_a_command(tmp_path):
    """A lock held by a running process (here: a sleeping one) refuses at once, writing nothing."""
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        out = tmp_path / "x.npz"
        lock_file(out).write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(), "started": "now"}))
        done = subprocess.run([sys.executable, "-m", "ssal.cli.main", "data", "synth", "--n", "20", "--out",
                               str(out)], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
        assert done.returncode == 2, done.stderr
        line = done.stderr.strip()
        assert len(line.splitlines()) == 1 and f"pid {holder.pid}" in line and str(lock_file(out)) in line
        assert not out.exists() and lock_file(out).exists()
    finally:
        holder.kill()
        holder.wait()
