"""Distributed pretraining: two CPU ranks (gloo) launched by torchrun stay in sync.

One run of 6 steps (a full epoch with the kNN monitor, then 1 step into the next) and its
resume to the end. Each rank dumps its final learner state and last keys through the
engine's callbacks, installed by the torchrun entry script ``tests/training/dist_hooks.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from ssal.checkpoint import load_checkpoint
from ssal.training.distributed import DistContext
from ssal.training.run_files import read_metrics

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with gloo is not available")

WORLD = 2
BATCH = 16  # global; 8 per rank
QUEUE = 200
TINY = [
    "data.builtin_n=96", "data.builtin_seed=3", f"train.batch_size={BATCH}", "train.epochs=2",
    "train.lr=0.05", "run.knn_every=1", "run.knn_k=5", "run.progress=true", f"model.queue_size={QUEUE}",
    "model.encoder.channels=[8,8,16]", "model.encoder.strides=[1,2,1]", "model.encoder.image_channels=8",
    "model.encoder.image_depth=1", "model.augment.general.clip_len=20",
]
HOOKS = Path(__file__).with_name("dist_hooks.py")  # ``ssal`` with per-rank dumps
RUN_FILES = {"config.yaml", "split.json", "metrics.jsonl", "checkpoint.pt", "encoder.pt"}


def _torchrun(tmp: Path, out: Path, debug: Path, logs: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={WORLD}", "--standalone",
           "--redirects=3", f"--log-dir={logs}", str(HOOKS), str(debug), "pretrain", "--out", str(out),
           "--device", "cpu", *[a for s in TINY for a in ("--set", s)], *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("WORLD_SIZE", None)
    env.pop("RANK", None)
    return subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=240)


def _dumps(debug: Path) -> list[dict]:
    return [torch.load(debug / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def _rank_log(logs: Path, rank: int, name: str) -> str:
    found = sorted(logs.rglob(f"{rank}/{name}.log"))
    assert found, f"no {name}.log of rank {rank} under {logs}"
    return found[-1].read_text(errors="replace")


def _assert_ranks_in_sync(dumps: list[dict]) -> None:
    a = dumps[0]["model"]
    for other in dumps[1:]:
        b = other["model"]
        assert a.keys() == b.keys()
        for key in a:  # query + key encoders, heads, BN statistics and the queue
            assert torch.equal(a[key], b[key]), key
    assert any(k.startswith("encoder_k.") for k in a) and "queue.features" in a


def test_two_ranks_stay_in_sync_and_resume(tmp_path):
    out, logs = tmp_path / "run", tmp_path / "logs"
    proc = _torchrun(tmp_path, out, tmp_path / "dbg1", logs, "--set", "run.max_steps=6")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # Only rank 0 wrote the run directory, and nothing else (no leftover temporary files).
    assert {p.name for p in out.iterdir()} == RUN_FILES
    assert "epoch 1/2" in _rank_log(logs, 0, "stderr")  # rank 0's progress bar
    assert "epoch" not in _rank_log(logs, 1, "stderr")  # rank 1 shows none

    dumps = _dumps(tmp_path / "dbg1")
    assert [d["rank"] for d in dumps] == [0, 1] and all(d["world_size"] == WORLD for d in dumps)
    _assert_ranks_in_sync(dumps)

    # The queue received world_size x per-rank keys per step, the same on every rank, and the
    # last step's keys are rank 0's keys followed by rank 1's.
    per_rank = BATCH // WORLD
    model = dumps[0]["model"]
    assert int(model["queue.ptr"]) == 6 * WORLD * per_rank and int(model["queue.filled"]) == 6 * WORLD * per_rank
    keys = [d["keys"] for d in dumps]
    assert all(k["local"].shape == (per_rank, 128) for k in keys)
    both = torch.cat([k["local"] for k in keys])
    assert not torch.equal(keys[0]["local"], keys[1]["local"])  # different samples per rank
    start = int(keys[0]["ptr_before"])
    assert start == 5 * WORLD * per_rank
    for k in keys:
        assert torch.equal(k["gathered"], both)
    torch.testing.assert_close(model["queue.features"][start:start + WORLD * per_rank], both, rtol=0, atol=0)

    # The checkpoint holds rank 0's (= every rank's) state and each rank's random streams.
    ck = load_checkpoint(out / "checkpoint.pt")
    assert ck["global_step"] == 6 and ck["epoch"] == 1 and ck["step_in_epoch"] == 1
    assert len(ck["rank_states"]) == WORLD
    for key, value in ck["model"].items():
        assert torch.equal(value, model[key]), key
    assert [r["epoch"] for r in read_metrics(out)] == [1]
    assert 0.0 <= read_metrics(out)[0]["knn_val_top1"] <= 1.0

    # Resume on both ranks (each loads rank 0's checkpoint) and finish epoch 2.
    proc = _torchrun(tmp_path, out, tmp_path / "dbg2", tmp_path / "logs2", "--resume")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    dumps = _dumps(tmp_path / "dbg2")
    _assert_ranks_in_sync(dumps)
    steps_per_epoch = 5  # 80 training sequences / global batch 16
    assert dumps[0]["global_step"] == 2 * steps_per_epoch
    assert int(dumps[0]["keys"]["steps"]) == 2 * steps_per_epoch - 6
    records = read_metrics(out)
    assert [r["epoch"] for r in records] == [1, 2]
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 10
    assert {p.name for p in out.iterdir()} == RUN_FILES


def test_single_process_context_is_the_identity():
    ctx = DistContext()
    assert not ctx.active and ctx.is_main
    assert ctx.shard([1, 2, 3]) == [1, 2, 3] and ctx.per_rank_batch(16) == 16 and ctx.rank_seed(7) == 7
    assert ctx.any_flags(True, False) == (True, False)
    assert ctx.on_main(lambda a: a + 1, 1) == 2
    assert ctx.mean_over_ranks({"loss": 2.0}) == {"loss": 2.0}
    assert ctx.all_gather_object("x") == ["x"]
    two = DistContext(rank=1, world_size=2)
    assert two.shard(list(range(8))) == [4, 5, 6, 7] and two.rank_seed(7) == 8 and not two.is_main


def test_one_rank_under_torchrun_matches_a_plain_run(tmp_path):
    sets = [a for s in TINY + ["run.max_steps=3", "run.progress=false"] for a in ("--set", s)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # what torchrun sets; same float round-off
    env.pop("WORLD_SIZE", None)
    env.pop("RANK", None)
    for launcher, out in ((["-m", "torch.distributed.run", "--nproc_per_node=1", "--standalone"], "one"),
                          ([], "plain")):
        cmd = [sys.executable, *launcher, "-m", "ssal", "pretrain", "--out", str(tmp_path / out),
               "--device", "cpu", *sets]
        proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    a = load_checkpoint(tmp_path / "one" / "checkpoint.pt")["model"]
    b = load_checkpoint(tmp_path / "plain" / "checkpoint.pt")["model"]
    assert a.keys() == b.keys()
    for key in a:  # rank 0 of a one-rank DDP run uses exactly the single-process streams
        assert torch.equal(a[key], b[key]), key


def _shuffle_worker(rank: int, init_file: str, result_dir: str) -> None:
    from ssal.methods.collectives import shuffled_forward

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        x = torch.arange(6, dtype=torch.float32).view(6, 1) + 100 * rank  # rank-tagged samples
        seen = []
        out = shuffled_forward(lambda v: (seen.append(v.clone()), v * 2 + 1)[1], x,
                               torch.Generator().manual_seed(5))
        torch.save({"out": out, "x": x, "seen": seen[0]}, Path(result_dir) / f"{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_shuffled_forward_mixes_ranks_and_restores_order(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_shuffle_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    results = [torch.load(tmp_path / f"{r}.pt") for r in range(WORLD)]
    for r in results:  # each rank gets fn of its own samples, in its own order
        assert torch.equal(r["out"], r["x"] * 2 + 1)
    seen = torch.cat([r["seen"] for r in results]).flatten()
    # The ranks evaluated a permutation of the global batch, not each its own rows.
    assert sorted(seen.tolist()) == sorted(torch.cat([r["x"] for r in results]).flatten().tolist())
    assert not all(torch.equal(r["seen"], r["x"]) for r in results)
