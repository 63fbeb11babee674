"""torch.profiler table of one MoCo training step (the engine's per-step work) per method.

    python benchmarks/profile_step.py --method aimclr [--T 75] [--batch 128] [--queue 2048]
        [--rows 25] [--sort self_cpu_time_total]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile, record_function

from ssal.config import resolve_config
from ssal.methods.moco import build_learner
from ssal.skeleton import EGAIT16
from ssal.training.allocator import set_allocator_policy
from ssal.training.engine import build_optimizer, load_batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="aimclr")
    ap.add_argument("--T", type=int, default=75)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--queue", type=int, default=2048)
    ap.add_argument("--rows", type=int, default=25)
    ap.add_argument("--sort", default="self_cpu_time_total")
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--shapes", action="store_true", help="one row per input shape (record_shapes)")
    ap.add_argument("--allocator", default="bounded", help="host allocator policy (ssal.training.allocator)")
    args = ap.parse_args()
    set_allocator_policy(args.allocator)
    cfg = resolve_config(args.method, overrides={"model": {"queue_size": args.queue,
                                                           "augment": {"general": {"clip_len": args.T}}}})
    torch.manual_seed(0)
    learner = build_learner(cfg["model"], EGAIT16).train()
    opt = build_optimizer([p for p in learner.parameters() if p.requires_grad], cfg["train"])
    x = np.random.default_rng(0).standard_normal((args.batch, 3, args.T, 16)).astype(np.float32) * 0.3
    idx = np.arange(args.batch)
    gen = torch.Generator().manual_seed(1)

    def step():
        with record_function("data"):
            xb = load_batch(x, idx, torch.device("cpu"))
        with record_function("forward"):
            out = learner(xb, gen)
        opt.zero_grad(set_to_none=True)
        with record_function("backward"):
            out["loss"].backward()
        with record_function("optimizer"):
            opt.step()

    step()  # warm-up
    with profile(activities=[ProfilerActivity.CPU], record_shapes=args.shapes) as prof:
        for _ in range(args.steps):
            step()
    print(prof.key_averages(group_by_input_shape=args.shapes).table(sort_by=args.sort, row_limit=args.rows))


if __name__ == "__main__":
    main()
