"""A few pretraining steps of one method on one device: fp32 or bf16 autocast, eager or compiled.

The engine's own pieces (``build_learner``, ``build_optimizer``, ``autocast_factory``,
``compile_encoders``, ``load_batch``) on a random batch ``(batch, 3, T, 16)``; prints one line
with the loss of every step (all must be finite, else exit 1), the median step time and seq/s of
the steps after the warm-up, and the peak memory: the device's peak allocation on CUDA, the
process's peak RSS (``VmHWM``) on the CPU. Used by ``benchmarks/gpu_check.sh``; runs on the CPU
as well (``--device cpu``).

``--method reference --reference DIR`` times the public AimCLR code instead (a checkout of
github.com/Levigty/AimCLR, imported and adapted at run time by ``reference_aimclr.py``): its
feeder's per-sample augmentation, its model at its own widths and its loss, fp32 as published
or under the same bf16 autocast (``--amp bf16``); it is not compiled. ``--tiny`` builds ssal's
encoders at the test widths (ST-GCN channels 8, 16; CFFN image branch 8 wide, depth 1), for a
dry run in seconds.

    python benchmarks/gpu_steps.py --method ssal --amp bf16 --compile --device cuda
    python benchmarks/gpu_steps.py --method reference --reference /tmp/aimclr-ref --device cuda
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

#: Encoder settings of ``--tiny`` (the widths of the test schedules).
TINY_ENCODER = {"channels": [8, 16], "strides": [1, 2], "hidden_dim": None}
TINY_IMAGE = {"image_channels": 8, "image_depth": 1}


def _peak_gib(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30, "cuda allocated"
    from _common import peak_rss_gib

    return peak_rss_gib(), "process RSS"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="ssal", choices=["ssal", "aimclr", "skeletonclr", "reference"])
    ap.add_argument("--reference", default=None, help="AimCLR checkout (for --method reference)")
    ap.add_argument("--amp", default="off", choices=["off", "bf16"])
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--compile-backend", default="inductor", choices=["inductor", "aot_eager", "eager"])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--T", type=int, default=75)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--queue", type=int, default=2048)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--tiny", action="store_true", help="ssal's encoders at the test widths (a dry run)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from ssal.training.engine import autocast_factory

    device = torch.device(args.device)
    autocast = autocast_factory(device, args.amp)
    x = (np.random.default_rng(0).standard_normal((4 * args.batch, 3, args.T, 16)) * 0.3).astype(np.float32)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)

    if args.method == "reference":
        if not args.reference or not (Path(args.reference) / "net" / "aimclr.py").is_file():
            print(f"--method reference needs --reference DIR, a checkout of github.com/Levigty/AimCLR "
                  f"(got {args.reference!r})", file=sys.stderr)
            return 2
        if args.compile:
            print("the reference is timed as published: not compiled", file=sys.stderr)
            return 2
        from reference_aimclr import reference_step_fn

        ref_step, _ = reference_step_fn(Path(args.reference), x, args.queue, device=str(device), autocast=autocast)

        def one_step(idx: np.ndarray) -> float:
            return float(ref_step(idx)["loss"])
    else:
        from ssal.config import resolve_config
        from ssal.methods.moco import build_learner
        from ssal.skeleton import EGAIT16
        from ssal.training.engine import build_optimizer, compile_encoders, load_batch

        model: dict = {"queue_size": args.queue, "augment": {"general": {"clip_len": args.T}}}
        if args.tiny:
            model["encoder"] = {**TINY_ENCODER, **(TINY_IMAGE if args.method == "ssal" else {})}
        cfg = resolve_config(args.method, overrides={"model": model})
        learner = build_learner(cfg["model"], EGAIT16).to(device).train()
        if args.compile:
            compile_encoders(learner, args.compile_backend)
        opt = build_optimizer([p for p in learner.parameters() if p.requires_grad], cfg["train"])
        gen = torch.Generator(device=device).manual_seed(0)

        def one_step(idx: np.ndarray) -> float:
            xb = load_batch(x, idx, device)
            with autocast():
                out = learner(xb, gen)
            opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            opt.step()
            return float(out["loss"].detach())

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    losses, times = [], []
    for step in range(args.warmup + args.steps):
        idx = np.sort(np.random.default_rng(step).choice(len(x), args.batch, replace=False))
        sync()
        t0 = time.perf_counter()
        losses.append(one_step(idx))
        sync()
        times.append(time.perf_counter() - t0)
    step_s = statistics.median(times[args.warmup:])
    peak, what = _peak_gib(device)
    ok = all(math.isfinite(v) for v in losses)
    compiled = f"{args.compile_backend}" if args.compile else "no"
    print(f"{args.method:<12} amp={args.amp:<5} compile={compiled:<9} T={args.T} batch={args.batch} "
          f"step {step_s:.3f} s  {args.batch / step_s:8.1f} seq/s  first step {times[0]:.1f} s  "
          f"peak {peak:.2f} GiB ({what})  losses {' '.join(f'{v:.3f}' for v in losses)}  "
          f"{'OK' if ok else 'NON-FINITE LOSS'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
