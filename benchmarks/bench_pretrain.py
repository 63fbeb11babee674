"""Pretraining throughput (sequences/s), peak memory and FLOP rate per method, against AimCLR's
public implementation measured in the same run.

Each (method, T) runs in a fresh child process doing exactly what ``ssal.training.engine.pretrain`` does
per step: ``load_batch`` of a sorted random index batch from a float32 array, ``learner(x, gen)``,
``zero_grad``, ``backward``, ``optimizer.step()`` (SGD from the method preset). The learner is
``build_learner(resolve_config(method)["model"], EGAIT16)`` with the preset encoders (AimCLR's
widths: ST-GCN 16..64, 256), ``queue_size`` 2048 and ``clip_len = T`` (every view keeps the
input's T frames, as AimCLR's feeder does).

``--reference DIR`` adds the row ``reference``: the public AimCLR code (a checkout of
github.com/Levigty/AimCLR, imported from DIR and adapted at run time to the CPU and 16 joints,
see ``reference_aimclr.py``) doing its own training step on the same array: its feeder's
per-sample NumPy augmentation, its model and its loss. ``--rounds R`` repeats the whole set of
rows R times in alternating order (forward, then reversed), so drift in the machine's load
touches every row alike; the table reports each row's median over rounds and the ratios of each
ssal row to the reference **of the same round**.

Per row: ``step s`` (median wall time of the timed steps), ``data s`` (the part spent in the data
path: the reference's feeder, ssal's ``load_batch``; ssal's augmentation runs batched inside the
step), ``peak GiB`` (the child's ``VmHWM``: whole process, torch included), ``GFLOP`` (matmul +
convolution FLOPs of one step, forward and backward, from ``torch.utils.flop_counter``; 2 per
multiply-add), ``GFLOP/s`` achieved, and ``limit`` = the sustained rate of a 2048^3 fp32 matmul
timed in the same child before and after the steps, so ``of limit`` reads as a fraction of what
the machine gives a large matmul at that moment.

Rows are ``METHOD@POLICY``: the host allocator policy the child sets first
(:mod:`ssal.training.allocator`; a bare METHOD means the policy ``ssal pretrain`` uses,
``run.allocator``'s default). The
reference rows run with glibc's defaults unless ``--reference-allocators`` adds e.g. ``reuse``,
which shows what the same allocator setting gives AimCLR's code.

    python benchmarks/bench_pretrain.py [--methods aimclr ssal@release ...] [--T 75 240]
        [--batch 128] [--queue 2048] [--warmup 1] [--steps 3] [--threads N]
        [--reference /path/to/AimCLR] [--reference-allocators system reuse] [--rounds 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

from _common import emit, header, matmul_gflops, median, peak_rss_gib, run_child

from ssal.config.schema import RunConfig


def _count_flops(step: Callable[[], None]) -> float:
    """FLOPs of one step of the model as defined: with the direct temporal convolutions, not the
    DFT form (ssal.models.spectral) that the step runs for wide layers with fewer FLOPs."""
    from torch.utils.flop_counter import FlopCounterMode

    import ssal.models.spectral as spectral

    counter = FlopCounterMode(display=False)
    threshold, spectral.TRAIN_MIN_CHANNELS = spectral.TRAIN_MIN_CHANNELS, 1 << 30
    try:
        with counter:
            step()
    finally:
        spectral.TRAIN_MIN_CHANNELS = threshold
    return float(counter.get_total_flops())


def child(method: str, t: int, batch: int, queue: int, warmup: int, steps: int, threads: int | None,
          reference: str | None) -> None:
    import numpy as np
    import torch

    from ssal.skeleton import EGAIT16
    from ssal.training.allocator import set_allocator_policy

    method, _, policy = method.partition("@")
    set_allocator_policy(policy or "system")
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    pool = 4 * batch
    x = rng.standard_normal((pool, 3, t, EGAIT16.num_joints)).astype(np.float32) * 0.3

    if method == "reference":
        from pathlib import Path

        from reference_aimclr import reference_step_fn

        ref_step, _ = reference_step_fn(Path(reference), x, queue)

        def one_step(idx: np.ndarray) -> tuple[float, float]:
            r = ref_step(idx)
            return r["data_s"], r["loss"]
    else:
        from ssal.config import resolve_config
        from ssal.methods.moco import build_learner
        from ssal.training.engine import build_optimizer, load_batch

        cfg = resolve_config(method, overrides={"model": {"queue_size": queue,
                                                          "augment": {"general": {"clip_len": t}}}})
        learner = build_learner(cfg["model"], EGAIT16)
        learner.train()
        opt = build_optimizer([p for p in learner.parameters() if p.requires_grad], cfg["train"])
        gen = torch.Generator().manual_seed(1)
        device = torch.device("cpu")

        def one_step(idx: np.ndarray) -> tuple[float, float]:
            t0 = time.perf_counter()
            xb = load_batch(x, idx, device)
            data_s = time.perf_counter() - t0
            out = learner(xb, gen)
            opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            opt.step()
            return data_s, float(out["loss"].detach())

    def batch_idx() -> np.ndarray:
        return np.sort(rng.choice(pool, batch, replace=False))

    flops = _count_flops(lambda: one_step(batch_idx()))
    limits = [matmul_gflops()]
    times, cpu, data, loss = [], [], [], float("nan")
    for i in range(warmup + steps):
        idx = batch_idx()
        c0 = time.process_time()
        t0 = time.perf_counter()
        data_s, loss = one_step(idx)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            data.append(data_s)
    limits.append(matmul_gflops())
    step = median(times)
    emit({"method": method + (f"@{policy}" if policy else ""), "T": t, "batch": batch, "queue": queue, "step_s": step,
          "steps_s": times, "cpu_s": median(cpu), "data_s": median(data), "seq_s": batch / step,
          "rss_gib": peak_rss_gib(), "gflop": flops / 1e9, "gflops": flops / 1e9 / step,
          "limit_gflops": sum(limits) / len(limits), "threads": torch.get_num_threads(),
          "loss": loss})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--methods", nargs="+", default=["aimclr", "ssal", "skeletonclr"],
                    help="rows: METHOD or METHOD@POLICY (allocator policy of ssal.training.allocator; default: "
                         "the policy `ssal pretrain` uses, run.allocator's default)")
    ap.add_argument("--reference-allocators", nargs="+", default=["system"],
                    help="allocator policies of the reference rows (the first is the ratios' base)")
    ap.add_argument("--T", type=int, nargs="+", default=[75, 240])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--queue", type=int, default=2048)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--reference", default=None,
                    help="checkout of github.com/Levigty/AimCLR: adds its training step as the reference row")
    ap.add_argument("--rounds", type=int, default=1, help="repeat all rows, alternating their order")
    args = ap.parse_args()
    if args.child:
        child(args.methods[0], args.T[0], args.batch, args.queue, args.warmup, args.steps, args.threads,
              args.reference)
        return
    header("bench_pretrain: MoCo training step per method (fresh child process per row)")
    refs = [f"reference@{p}" if p != "system" else "reference" for p in args.reference_allocators]
    rows = (refs if args.reference else []) + [m if "@" in m else f"{m}@{RunConfig.allocator}" for m in args.methods]
    if not args.reference:
        print("# no --reference checkout given: rows are not compared with AimCLR's code")
    print(f"{'row':<18}{'T':>5}{'round':>6}{'step s':>9}{'data s':>8}{'seq/s':>8}{'peak GiB':>10}"
          f"{'GFLOP':>8}{'GFLOP/s':>9}{'limit':>7}{'of limit':>9}{'x ref':>7}{'mem/ref':>8}{'load':>6}")
    for t in args.T:
        results: dict[str, list[dict]] = {m: [] for m in rows}
        for rnd in range(args.rounds):
            order = rows if rnd % 2 == 0 else rows[::-1]
            for m in order:
                r = run_child("bench_pretrain.py", ["--methods", m, "--T", str(t), "--batch", str(args.batch),
                                                    "--queue", str(args.queue), "--warmup", str(args.warmup),
                                                    "--steps", str(args.steps), "--threads", str(args.threads)]
                              + (["--reference", args.reference] if args.reference else []))
                r["load"] = os.getloadavg()[0]
                results[m].append(r)
            for m in rows:
                _print_row(results[m][rnd], rnd, results[refs[0]][rnd] if args.reference else None)
        if args.rounds > 1:
            print(f"# T={t}: median over {args.rounds} rounds; x ref / mem/ref: median of the per-round ratios")
            for m in rows:
                _print_summary(m, t, results[m], results[refs[0]] if args.reference else None)
        sys.stdout.flush()


def _print_row(r: dict, rnd: int, ref: dict | None) -> None:
    ratio = f"{r['seq_s'] / ref['seq_s']:>7.2f}{r['rss_gib'] / ref['rss_gib']:>8.2f}" if ref else f"{'':>15}"
    print(f"{r['method']:<18}{r['T']:>5}{rnd:>6}{r['step_s']:>9.2f}{r['data_s']:>8.2f}{r['seq_s']:>8.1f}"
          f"{r['rss_gib']:>10.2f}{r['gflop']:>8.0f}{r['gflops']:>9.1f}{r['limit_gflops']:>7.0f}"
          f"{r['gflops'] / r['limit_gflops']:>9.0%}{ratio}{r['load']:>6.1f}", flush=True)


def _print_summary(m: str, t: int, rs: list[dict], refs: list[dict] | None) -> None:
    ratio = (f"{median([r['seq_s'] / f['seq_s'] for r, f in zip(rs, refs)]):>7.2f}"
             f"{median([r['rss_gib'] / f['rss_gib'] for r, f in zip(rs, refs)]):>8.2f}") if refs else f"{'':>15}"
    frac = median([r["gflops"] / r["limit_gflops"] for r in rs])
    print(f"{m:<18}{t:>5}{'all':>6}{median([r['step_s'] for r in rs]):>9.2f}{median([r['data_s'] for r in rs]):>8.2f}"
          f"{median([r['seq_s'] for r in rs]):>8.1f}{median([r['rss_gib'] for r in rs]):>10.2f}"
          f"{rs[0]['gflop']:>8.0f}{median([r['gflops'] for r in rs]):>9.1f}"
          f"{median([r['limit_gflops'] for r in rs]):>7.0f}{frac:>9.0%}{ratio}", flush=True)


if __name__ == "__main__":
    main()
