"""Inference throughput of ``ssal.inference.EmotionModel.predict`` against the machine's FLOP limit.

For each preset encoder (``aimclr``: ST-GCN at AimCLR's widths; ``ssal``: CFFN) a classifier
checkpoint is written with ``ssal.inference.save_classifier`` (untrained weights, a linear head over 4
emotions) and loaded back with ``ssal.load``, so the figure includes everything a user's
``predict`` call does (input checks, batching, softmax). Printed per encoder:

* ``MFLOP/seq``: matmul + convolution FLOPs of one sequence of the encoder as trained
  (``torch.utils.flop_counter``; 2 per multiply-add; element-wise work and FFTs are not counted);
* ``seq/s`` of ``predict`` with the BatchNorm-folded encoder (``optimize=True``, the default),
  with the same folded encoder but every temporal convolution direct (``folded-direct``: no DFT
  over time, ``ssal.models.spectral``), and with the checkpoint's own encoder
  (``optimize=False``); with ``--onnx`` also of the ONNX export through onnxruntime;
* ``limit seq/s``: the FLOP-bound rate, ``sustained GFLOP/s / FLOP per sequence``, where the
  sustained rate is a 2048^3 fp32 matmul timed **in the same run**, right before and after each
  measurement (mean of the two), so that a loaded machine lowers both; ``of limit`` is the ratio.
  The folded encoder computes its wide temporal convolutions through a DFT over time, with 3-4x
  fewer FLOPs than the direct convolution counted here, so its ratio can pass 100%: it is the
  speed of the model as trained against what that model's FLOPs would allow at the matmul rate.

Single process, ``torch`` intra-op threads as given (default: all cores). The load average is
printed beside each row: on a shared machine read the fractions, not the seconds.

    python benchmarks/bench_predict.py [--n 1024] [--T 75] [--batch B] [--reps 3] [--onnx] [--allocator reuse]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import header
from _common import matmul_gflops as _matmul_gflops

DEVICE = torch.device("cpu")


def matmul_gflops() -> float:
    """Sustained fp32 matmul rate on :data:`DEVICE` (see ``_common.matmul_gflops``)."""
    return _matmul_gflops(DEVICE)


def flops_per_sequence(module, t: int, v: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        module(torch.randn(1, 3, t, v, device=DEVICE))
    return float(counter.get_total_flops())


def timed_rate(fn, n: int, reps: int) -> tuple[float, float]:
    """(median seq/s over ``reps`` calls, mean matmul GFLOP/s measured around them)."""
    fn()  # warm-up
    rates, refs = [], [matmul_gflops()]
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()  # predict returns numpy arrays: the device work is done when it returns
        rates.append(n / (time.perf_counter() - t0))
        refs.append(matmul_gflops())
    return statistics.median(rates), statistics.mean(refs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--T", type=int, default=75)
    ap.add_argument("--batch", type=int, default=None, help="predict batch_size (default: predict's own default)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--methods", nargs="+", default=["aimclr", "ssal"])
    ap.add_argument("--onnx", action="store_true", help="also time the ONNX export through onnxruntime")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--allocator", default="system",
                    help="host allocator policy of this process (ssal.training.allocator; default: glibc's own)")
    args = ap.parse_args()
    if args.allocator != "system":
        from ssal.training.allocator import set_allocator_policy

        set_allocator_policy(args.allocator)
    global DEVICE
    DEVICE = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)

    import ssal
    from ssal.config import resolve_config
    from ssal.inference import save_classifier
    from ssal.models import build_encoder
    from ssal.models.fold import fold_batchnorm
    from ssal.models.heads import LinearClassifier
    from ssal.skeleton import EGAIT16

    header("bench_predict: EmotionModel.predict throughput against the FLOP limit")
    v = EGAIT16.num_joints
    x = (np.random.default_rng(0).standard_normal((args.n, 3, args.T, v)) * 0.3).astype(np.float32)
    print(f"input ({args.n}, 3, {args.T}, {v}) float32, predict batch_size {args.batch or 'default'}, clip_len None, "
          f"device {DEVICE}, {torch.get_num_threads()} threads, allocator {args.allocator}")
    print(f"{'encoder':<8}{'variant':<14}{'MFLOP/seq':>10}{'seq/s':>9}{'GFLOP/s':>9}{'matmul GFLOP/s':>16}"
          f"{'limit seq/s':>13}{'of limit':>10}{'load 1m':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods:
            enc_cfg = resolve_config(method)["model"]["encoder"]
            torch.manual_seed(0)
            enc = build_encoder(dict(enc_cfg), EGAIT16)
            head = LinearClassifier(enc.out_dim, 4)
            path = Path(tmp) / f"{method}.pt"
            save_classifier(path, enc, head, encoder_config=enc_cfg, layout=EGAIT16,
                            classes=["angry", "happy", "neutral", "sad"], preprocess=None, clip_len=None,
                            protocol="linear", method=method)
            fast = ssal.load(path, device=DEVICE)
            # The model's FLOPs: counted on the encoder as trained (the folded copy computes the
            # same function; the counter would count its complex products as real ones).
            flops = flops_per_sequence(enc.to(DEVICE).eval(), args.T, v)
            direct = ssal.load(path, device=DEVICE)
            direct.runner = fold_batchnorm(direct.encoder, spectral=False)
            variants = [("folded", fast), ("folded-direct", direct),
                        ("checkpoint", ssal.load(path, device=DEVICE, optimize=False))]
            if args.onnx and DEVICE.type == "cpu":
                from ssal.inference.export import export_model

                export_model(path, "onnx", Path(tmp) / f"{method}.onnx", frames=args.T)
                variants.append(("onnxruntime", ssal.load(Path(tmp) / f"{method}.onnx")))
            print(f"# {method}: predict's default batch {fast.default_batch_size()}", flush=True)
            for name, model in variants:
                rate, ref = timed_rate(lambda model=model: model.predict(x, batch_size=args.batch), args.n, args.reps)
                limit = ref * 1e9 / flops
                print(f"{enc_cfg['name']:<8}{name:<14}{flops / 1e6:>10.0f}{rate:>9.1f}{rate * flops / 1e9:>9.1f}"
                      f"{ref:>16.1f}{limit:>13.1f}{rate / limit:>10.0%}{os.getloadavg()[0]:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
