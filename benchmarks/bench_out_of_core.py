"""Out-of-core streaming: peak memory must stay flat as a canonical ``.ssal`` corpus grows.

For each size, a float16 corpus of ``(3, T, 16)`` sequences is written chunk by chunk with
``CanonicalWriter`` (the generator holds one chunk), then a fresh child process opens it with
``read_canonical`` (read-only memmap) and streams random batches through the engine's batch path
(``ssal.training.engine.batches`` + ``ssal.training.engine.load_batch``), then runs a few real training steps of a
tiny encoder with ``ssal.training.engine.pretrain`` on the memory-mapped dataset. The child reports its
peak RSS (``ru_maxrss``) after the open, after streaming and after pretraining, and the
current anonymous / file-backed parts of its RSS (memmap pages read are file-backed page cache). Corpora are
deleted afterwards.

    python benchmarks/bench_out_of_core.py [--sizes 50000 200000 1000000] [--T 75]
        [--batches 200] [--steps 3] [--dir /tmp/ssal_ooc]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
from _common import emit, header, peak_rss_gib, run_child


def generate(path: Path, n: int, t: int, chunk: int = 10_000) -> float:
    from ssal.data.canonical import CanonicalWriter

    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    with CanonicalWriter(path, n, t, dtype="float16", classes=["angry", "happy", "neutral", "sad"]) as w:
        for start in range(0, n, chunk):
            k = min(chunk, n - start)
            x = (rng.standard_normal((k, 3, t, 16), dtype=np.float32) * 0.3).astype(np.float16)
            w.append(x, rng.integers(-1, 4, k), [f"s{start + i}" for i in range(k)])
    return time.perf_counter() - t0


def rss_parts() -> tuple[float, float]:
    """Current anonymous and file-backed resident memory (GiB) from ``/proc/self/status``:
    pages of a memmap that were read count as ``RssFile`` (clean page cache the kernel can drop),
    while the loader's own allocations are ``RssAnon``."""
    vals = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("RssAnon:", "RssFile:")):
                key, kib = line.split()[:2]
                vals[key[:-1]] = int(kib) / 2**20
    return vals.get("RssAnon", float("nan")), vals.get("RssFile", float("nan"))


def child(path: str, batches: int, steps: int, batch: int) -> None:
    import torch

    from ssal.config import resolve_config
    from ssal.data.canonical import read_canonical
    from ssal.training.engine import batches as plan_batches
    from ssal.training.engine import load_batch, pretrain

    base = peak_rss_gib()
    ds = read_canonical(path)
    after_open = peak_rss_gib()
    anon_open, file_open = rss_parts()
    gen = torch.Generator().manual_seed(0)
    plan = plan_batches(len(ds), batch, gen)[:batches]
    t0 = time.perf_counter()
    for rows in plan:
        load_batch(ds.x, rows, torch.device("cpu"))
    stream_s = time.perf_counter() - t0
    after_stream = peak_rss_gib()
    anon_stream, file_stream = rss_parts()
    cfg = resolve_config("skeletonclr", overrides={
        "model": {"encoder": {"channels": [8, 8]}, "queue_size": 256},
        "train": {"batch_size": batch, "epochs": 1},
        "run": {"device": "cpu", "max_steps": steps, "knn_every": 0, "progress": False},
    })
    out = Path(path).parent / (Path(path).name + "_run")
    t1 = time.perf_counter()
    pretrain(cfg, out, dataset=ds, overwrite=True)
    train_s = time.perf_counter() - t1
    shutil.rmtree(out, ignore_errors=True)
    anon_train, file_train = rss_parts()
    emit({"anon_open": anon_open, "file_open": file_open, "anon_stream": anon_stream,
          "file_stream": file_stream, "anon_train": anon_train, "file_train": file_train,"n": len(ds), "disk_gib": ds.x.nbytes / 2**30, "base_gib": base, "open_gib": after_open,
          "stream_gib": after_stream, "train_gib": peak_rss_gib(), "stream_seq_s": len(plan) * batch / stream_s,
          "train_s": train_s, "dtype": str(ds.x.dtype), "is_memmap": isinstance(ds.x, np.memmap)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS, nargs="?", const="")
    ap.add_argument("--path", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000, 1_000_000])
    ap.add_argument("--T", type=int, default=75)
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--dir", default="/tmp/ssal_ooc")
    args = ap.parse_args()
    if args.child is not None:
        child(args.path, args.batches, args.steps, args.batch)
        return
    header("bench_out_of_core: peak RSS of a child streaming a memory-mapped float16 corpus")
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    print(f"{'N':>9}{'on disk GiB':>13}{'write s':>9}{'RSS open':>10}{'RSS stream':>12}{'RSS train':>11}"
          f"{'stream seq/s':>14}{'train s':>9}   current RssAnon/RssFile GiB after open, stream, train",
          flush=True)
    for n in args.sizes:
        path = root / f"corpus_{n}.ssal"
        try:
            write_s = generate(path, n, args.T)
            r = run_child("bench_out_of_core.py", ["--path", str(path), "--batches", str(args.batches),
                                                   "--steps", str(args.steps), "--batch", str(args.batch)])
            print(f"{n:>9}{r['disk_gib']:>13.2f}{write_s:>9.1f}{r['open_gib']:>10.3f}{r['stream_gib']:>12.3f}"
                  f"{r['train_gib']:>11.3f}{r['stream_seq_s']:>14.0f}{r['train_s']:>9.1f}   "
                  + ", ".join(f"{r['anon_' + s]:.2f}/{r['file_' + s]:.2f}" for s in ("open", "stream", "train")),
                  flush=True)
        finally:
            shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
