"""Supervised ST-GCN accuracy on the built-in synthetic corpus at 100% and 1% of the labels.

Shows that the corpus's emotions overlap like real ones: full labels do clearly better than 1%,
and neither is near 100%. Prints one line per label fraction (test top-1, mean +- std over seeds).

    python benchmarks/supervised_synthetic.py [--epochs 30] [--seeds 0 1 2] [--n 2000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ssal.data import label_fraction, load_builtin, stratified_split
from ssal.evaluation import ClassifierSettings, evaluate, train_classifier
from ssal.models import build_encoder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--fractions", type=float, nargs="+", default=[1.0, 0.01])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--clip-len", type=int, default=50)
    args = ap.parse_args()

    ds = load_builtin(n=args.n, seed=0)
    split = stratified_split(ds.y, val=0.1, test=0.1, seed=0)
    train, val, test = (ds.subset(split[k]) for k in ("train", "val", "test"))
    print(f"corpus: {len(ds)} sequences, T={ds.num_frames}, split {len(train)}/{len(val)}/{len(test)}; "
          f"ST-GCN (AimCLR small: 10 layers, 1/4 width), {args.epochs} epochs, SGD lr {args.lr}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for frac in args.fractions:
        accs = []
        t0 = time.perf_counter()
        for seed in args.seeds:
            idx = np.arange(len(train)) if frac >= 1 else label_fraction(train.y, frac, seed=seed)
            sub = train.subset(idx)
            torch.manual_seed(seed)
            enc = build_encoder({"name": "stgcn"}, ds.layout)
            # Small subsets get more epochs so each run sees a comparable number of steps.
            epochs = args.epochs if frac >= 0.1 else args.epochs * 3
            settings = ClassifierSettings.for_mode("supervised", epochs=epochs, lr=args.lr,
                                                   milestones=(int(epochs * 0.8),), batch_size=64, seed=seed,
                                                   clip_len=args.clip_len, select="val")
            model, _ = train_classifier(enc, None, sub, val, settings)
            accs.append(evaluate(model, test)["top1"])
        print(f"labels {frac * 100:g}% ({len(idx)} sequences): test top-1 {np.mean(accs) * 100:.1f} "
              f"+- {np.std(accs, ddof=1) * 100 if len(accs) > 1 else 0:.1f}% over seeds {args.seeds} "
              f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
