"""Step time and resident-set high-water mark after every step of one MoCo pretraining run.

    python benchmarks/rss_per_step.py --method ssal --allocator reuse [--T 75] [--steps 30]

``bench_pretrain.py`` reports the peak over a warm-up and a few steps; an allocator policy that
keeps freed blocks (``reuse``) may grow its heap over more steps, as fragmentation accumulates.
This runs one configuration in this process for ``--steps`` steps on random batches drawn from a
pool of sequences (different indices each step, as in training) and prints, per step, the step
time and ``ru_maxrss`` (GiB), so the plateau can be read off.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch
from _common import header

from ssal.config import resolve_config
from ssal.methods.moco import build_learner
from ssal.skeleton import EGAIT16
from ssal.training.allocator import set_allocator_policy
from ssal.training.engine import build_optimizer, load_batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="ssal")
    ap.add_argument("--allocator", default="reuse", help="host allocator policy (ssal.training.allocator)")
    ap.add_argument("--T", type=int, default=75)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--queue", type=int, default=2048)
    ap.add_argument("--pool", type=int, default=1024, help="sequences the batches are drawn from")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    set_allocator_policy(args.allocator)
    torch.set_num_threads(args.threads)
    header("rss_per_step: step time and ru_maxrss after each step")
    cfg = resolve_config(args.method, overrides={"model": {"queue_size": args.queue,
                                                           "augment": {"general": {"clip_len": args.T}}}})
    torch.manual_seed(0)
    learner = build_learner(cfg["model"], EGAIT16).train()
    opt = build_optimizer([p for p in learner.parameters() if p.requires_grad], cfg["train"])
    rng = np.random.default_rng(0)
    pool = rng.standard_normal((args.pool, 3, args.T, 16)).astype(np.float32) * 0.3
    gen = torch.Generator().manual_seed(1)
    print(f"{'step':>5}{'time s':>9}{'maxrss GiB':>12}   ({args.method}@{args.allocator}, T={args.T}, batch {args.batch})")
    for step in range(args.steps):
        batch = load_batch(pool, rng.choice(args.pool, args.batch, replace=False), torch.device("cpu"))
        start = time.perf_counter()
        out = learner(batch, gen)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        took = time.perf_counter() - start
        print(f"{step:>5}{took:>9.2f}{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:>12.2f}", flush=True)


if __name__ == "__main__":
    main()
