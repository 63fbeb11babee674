"""A few pretraining steps of one method on one device: fp32 or bf16 autocast, eager or compiled.

The engine's own pieces (``build_learner``, ``build_optimizer``, ``autocast_factory``,
``compile_encoders``, ``load_batch``) on a random batch ``(batch, 3, T, 16)``; prints one line
with the loss of every step (all must be finite, else exit 1), the median step time and seq/s of
the steps after the warm-up, and the peak device memory. Used by ``benchmarks/gpu_check.sh``;
runs on the CPU as well (``--device cpu``).

    python benchmarks/gpu_steps.py --method ssal --amp bf16 --compile --device cuda
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

import numpy as np
import torch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="ssal", choices=["ssal", "aimclr", "skeletonclr"])
    ap.add_argument("--amp", default="off", choices=["off", "bf16"])
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--T", type=int, default=75)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--queue", type=int, default=2048)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()

    from ssal.config import resolve_config
    from ssal.training.engine import autocast_factory, build_optimizer, compile_encoders, load_batch
    from ssal.methods.moco import build_learner
    from ssal.skeleton import EGAIT16

    device = torch.device(args.device)
    cfg = resolve_config(args.method, overrides={"model": {"queue_size": args.queue,
                                                           "augment": {"general": {"clip_len": args.T}}}})
    torch.manual_seed(0)
    learner = build_learner(cfg["model"], EGAIT16).to(device).train()
    if args.compile:
        compile_encoders(learner, "inductor")
    opt = build_optimizer([p for p in learner.parameters() if p.requires_grad], cfg["train"])
    autocast = autocast_factory(device, args.amp)
    x = (np.random.default_rng(0).standard_normal((4 * args.batch, 3, args.T, 16)) * 0.3).astype(np.float32)
    gen = torch.Generator(device=device).manual_seed(0)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    losses, times = [], []
    for step in range(args.warmup + args.steps):
        idx = np.sort(np.random.default_rng(step).choice(len(x), args.batch, replace=False))
        sync()
        t0 = time.perf_counter()
        xb = load_batch(x, idx, device)
        with autocast():
            out = learner(xb, gen)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        sync()
        times.append(time.perf_counter() - t0)
        losses.append(float(out["loss"].detach()))
    step_s = statistics.median(times[args.warmup:])
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    ok = all(math.isfinite(v) for v in losses)
    print(f"{args.method:<12} amp={args.amp:<5} compile={str(args.compile):<5} T={args.T} batch={args.batch} "
          f"step {step_s:.3f} s  {args.batch / step_s:8.1f} seq/s  first step {times[0]:.1f} s  "
          f"peak {peak:.2f} GiB  losses {' '.join(f'{v:.3f}' for v in losses)}  {'OK' if ok else 'NON-FINITE LOSS'}",
          flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
