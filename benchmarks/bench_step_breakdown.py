"""Share of a training step spent in data loading + augmentation vs the rest, per method.

Manual timers around the engine's per-step work (fresh child process per method):
``data`` = ``load_batch`` (index the array, ``torch.from_numpy``); ``augment`` = the learner's
view pipelines (timed by forward hooks on ``learner.general`` / ``learner.strong`` while the
learner runs, so exactly the calls of a real step); ``forward`` = the rest of
``learner(x, gen)``; ``backward``; ``optimizer`` (zero_grad + step). Wall and process CPU time,
medians over steps after a warm-up.

    python benchmarks/bench_step_breakdown.py [--methods ssal aimclr skeletonclr] [--T 75]
        [--batch 128] [--queue 2048] [--warmup 1] [--steps 3] [--threads N]
"""

from __future__ import annotations

import argparse
import time

from _common import emit, header, median, run_child

PHASES = ("data", "augment", "forward", "backward", "optimizer")


def child(method: str, t: int, batch: int, queue: int, warmup: int, steps: int, threads: int) -> None:
    import numpy as np
    import torch

    from ssal.config import resolve_config
    from ssal.methods.moco import build_learner
    from ssal.skeleton import EGAIT16
    from ssal.training.engine import build_optimizer, load_batch

    if threads:
        torch.set_num_threads(threads)
    cfg = resolve_config(method, overrides={"model": {"queue_size": queue,
                                                      "augment": {"general": {"clip_len": t}}}})
    torch.manual_seed(0)
    learner = build_learner(cfg["model"], EGAIT16).train()
    opt = build_optimizer([p for p in learner.parameters() if p.requires_grad], cfg["train"])
    rng = np.random.default_rng(0)
    pool = 4 * batch
    x = (rng.standard_normal((pool, 3, t, 16)) * 0.3).astype(np.float32)
    gen = torch.Generator().manual_seed(1)
    aug = {"wall": 0.0, "cpu": 0.0}
    start: dict[str, float] = {}

    def pre(_m, _a):
        start["w"], start["c"] = time.perf_counter(), time.process_time()

    def post(_m, _a, _o):
        aug["wall"] += time.perf_counter() - start["w"]
        aug["cpu"] += time.process_time() - start["c"]

    for mod in (learner.general, learner.strong):
        if mod is not None:
            mod.register_forward_pre_hook(pre)
            mod.register_forward_hook(post)
    rec = {f"{p}_{k}": [] for p in PHASES for k in ("wall", "cpu")}

    def clock():
        return time.perf_counter(), time.process_time()

    for i in range(warmup + steps):
        idx = np.sort(rng.choice(pool, batch, replace=False))
        aug["wall"] = aug["cpu"] = 0.0
        marks = [clock()]
        xb = load_batch(x, idx, torch.device("cpu"))
        marks.append(clock())
        out = learner(xb, gen)
        marks.append(clock())
        out["loss"].backward()
        marks.append(clock())
        opt.step()
        opt.zero_grad(set_to_none=True)
        marks.append(clock())
        if i < warmup:
            continue
        for k, j in (("wall", 0), ("cpu", 1)):
            d = [b[j] - a[j] for a, b in zip(marks, marks[1:])]
            rec[f"data_{k}"].append(d[0])
            rec[f"augment_{k}"].append(aug[k])
            rec[f"forward_{k}"].append(d[1] - aug[k])
            rec[f"backward_{k}"].append(d[2])
            rec[f"optimizer_{k}"].append(d[3])
    emit({"method": method, "T": t, **{k: median(v) for k, v in rec.items()}})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--methods", nargs="+", default=["ssal", "aimclr", "skeletonclr"])
    ap.add_argument("--T", type=int, default=75)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--queue", type=int, default=2048)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.child:
        child(args.methods[0], args.T, args.batch, args.queue, args.warmup, args.steps, args.threads)
        return
    header("bench_step_breakdown: where a training step goes (medians; wall s / CPU s)")
    print(f"{'method':<12}" + "".join(f"{p:>18}" for p in PHASES) + f"{'data+aug share':>16}")
    for m in args.methods:
        r = run_child("bench_step_breakdown.py", ["--methods", m, "--T", str(args.T), "--batch", str(args.batch),
                                                  "--queue", str(args.queue), "--warmup", str(args.warmup),
                                                  "--steps", str(args.steps), "--threads", str(args.threads)])
        cells = "".join(f"{r[p + '_wall']:>9.3f}/{r[p + '_cpu']:<8.3f}" for p in PHASES)
        shares = []
        for k in ("wall", "cpu"):
            total = sum(r[f"{p}_{k}"] for p in PHASES)
            shares.append(100 * (r[f"data_{k}"] + r[f"augment_{k}"]) / total)
        print(f"{m:<12}{cells}{shares[0]:>7.1f}%/{shares[1]:.1f}%", flush=True)


if __name__ == "__main__":
    main()
