"""Pretraining throughput (sequences/s) and peak memory per method at E-Gait shapes.

Each (method, T) runs in a fresh child process doing exactly what ``ssal.engine.pretrain`` does
per step: ``load_batch`` of a sorted random index batch from a float32 array, ``learner(x, gen)``,
``zero_grad``, ``backward``, ``optimizer.step()`` (SGD from the method preset). The learner is
``build_learner(resolve_config(method)["model"], EGAIT16)`` with the default (AimCLR-size:
10-layer quarter-width ST-GCN) encoders, ``queue_size`` 2048 and ``clip_len = T`` (every view
keeps the input's T frames, as the AimCLR anchor's encoder saw 75 / 240 frames).

Peak memory is the child's ``ru_maxrss`` (whole process, torch included). ``CPU s`` is the
median process CPU time (all threads) of a step: on a machine shared with other work the wall
time grows with the load while the CPU time stays close to the work done, so
``CPU s / threads`` estimates the step time on an idle machine.

    python benchmarks/bench_pretrain.py [--methods ssal aimclr skeletonclr] [--T 75 240]
        [--batch 128] [--queue 2048] [--warmup 1] [--steps 3] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import time

from _common import emit, header, median, peak_rss_gib, run_child

#: The public AimCLR implementation on a 2-core machine of this kind (from the issue).
ANCHOR = {75: {"step_s": 9.7, "seq_s": 13.1, "rss_gib": 4.0}, 240: {"step_s": 43.0, "seq_s": 3.0, "rss_gib": 12.6}}


def child(method: str, t: int, batch: int, queue: int, warmup: int, steps: int, threads: int | None) -> None:
    import numpy as np
    import torch

    from ssal.config import resolve_config
    from ssal.engine import build_optimizer, load_batch
    from ssal.methods.moco import build_learner
    from ssal.skeleton import EGAIT16

    if threads:
        torch.set_num_threads(threads)
    cfg = resolve_config(method, overrides={"model": {"queue_size": queue,
                                                      "augment": {"general": {"clip_len": t}}}})
    torch.manual_seed(0)
    learner = build_learner(cfg["model"], EGAIT16)
    learner.train()
    opt = build_optimizer([p for p in learner.parameters() if p.requires_grad], cfg["train"])
    rng = np.random.default_rng(0)
    pool = 4 * batch
    x = rng.standard_normal((pool, 3, t, EGAIT16.num_joints)).astype(np.float32) * 0.3
    gen = torch.Generator().manual_seed(1)
    device = torch.device("cpu")

    times, cpu = [], []
    for i in range(warmup + steps):
        idx = np.sort(rng.choice(pool, batch, replace=False))
        c0 = time.process_time()
        t0 = time.perf_counter()
        xb = load_batch(x, idx, device)
        out = learner(xb, gen)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        float(out["loss"].detach())
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    step = median(times)
    emit({"method": method, "T": t, "batch": batch, "queue": queue, "step_s": step,
          "steps_s": times, "cpu_s": median(cpu), "seq_s": batch / step, "rss_gib": peak_rss_gib(),
          "threads": torch.get_num_threads(), "loss": float(out["loss"])})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--methods", nargs="+", default=["ssal", "aimclr", "skeletonclr"])
    ap.add_argument("--T", type=int, nargs="+", default=[75, 240])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--queue", type=int, default=2048)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.child:
        child(args.methods[0], args.T[0], args.batch, args.queue, args.warmup, args.steps, args.threads)
        return
    header("bench_pretrain: MoCo training step per method (fresh child process per row)")
    print(f"{'method':<12}{'T':>5}{'batch':>7}{'queue':>7}{'step s':>9}{'seq/s':>9}{'peak GiB':>10}"
          f"{'CPU s':>8}{'anchor seq/s':>14}{'x anchor':>10}{'anchor GiB':>12}{'mem ratio':>11}")
    for t in args.T:
        for m in args.methods:
            r = run_child("bench_pretrain.py", ["--methods", m, "--T", str(t), "--batch", str(args.batch),
                                                "--queue", str(args.queue), "--warmup", str(args.warmup),
                                                "--steps", str(args.steps), "--threads", str(args.threads)])
            a = ANCHOR.get(t)
            extra = (f"{a['seq_s']:>14.1f}{r['seq_s'] / a['seq_s']:>10.2f}{a['rss_gib']:>12.1f}"
                     f"{r['rss_gib'] / a['rss_gib']:>11.2f}") if a else ""
            print(f"{m:<12}{t:>5}{args.batch:>7}{args.queue:>7}{r['step_s']:>9.2f}{r['seq_s']:>9.1f}"
                  f"{r['rss_gib']:>10.2f}{r['cpu_s']:>8.2f}{extra}   steps={[round(s, 2) for s in r['steps_s']]}", flush=True)
            sys.stdout.flush()


if __name__ == "__main__":
    main()
