"""Inference throughput of ``ssal.api.EmotionModel.predict`` on ``(N, 3, 75, 16)`` arrays.

A classifier checkpoint is written with ``ssal.api.save_classifier`` (default SSAL CFFN encoder
and the AimCLR-size ST-GCN, untrained weights, a linear head over 4 emotions) and loaded back
with ``ssal.load``, so the figure includes everything a user's ``predict`` call does (input
checks, batching, the encoder in eval mode, softmax).

    python benchmarks/bench_predict.py [--n 4096] [--T 75] [--batch 512] [--reps 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import header, median


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--T", type=int, default=75)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()

    import ssal
    from ssal.api import save_classifier
    from ssal.config import resolve_config
    from ssal.models import build_encoder
    from ssal.models.heads import LinearClassifier
    from ssal.skeleton import EGAIT16

    header("bench_predict: EmotionModel.predict throughput")
    x = (np.random.default_rng(0).standard_normal((args.n, 3, args.T, 16)) * 0.3).astype(np.float32)
    print(f"input ({args.n}, 3, {args.T}, 16) float32, predict batch_size {args.batch}, clip_len None "
          f"(the encoder sees all {args.T} frames)")
    print(f"{'encoder':<10}{'median s':>10}{'seq/s':>10}{'CPU seq/s':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("ssal", "aimclr"):
            enc_cfg = resolve_config(method)["model"]["encoder"]
            torch.manual_seed(0)
            enc = build_encoder(dict(enc_cfg), EGAIT16)
            head = LinearClassifier(enc.out_dim, 4)
            path = Path(tmp) / f"{method}.pt"
            save_classifier(path, enc, head, encoder_config=enc_cfg, layout=EGAIT16,
                            classes=["angry", "happy", "neutral", "sad"], preprocess=None, clip_len=None,
                            protocol="linear", method=method)
            model = ssal.load(path)
            model.predict(x[: args.batch], batch_size=args.batch)
            wall, cpu = [], []
            for _ in range(args.reps):
                c0, t0 = time.process_time(), time.perf_counter()
                probs = model.predict(x, batch_size=args.batch)
                wall.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            assert probs.shape == (args.n, 4)
            w, c = median(wall), median(cpu)
            print(f"{enc_cfg['name']:<10}{w:>10.2f}{args.n / w:>10.0f}{args.n * torch.get_num_threads() / c:>11.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
