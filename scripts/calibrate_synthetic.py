"""Calibrate the built-in synthetic corpus with a fast proxy classifier.

Trains a small temporal-convolution network (the sequence as 3V channels over T frames) on
the preprocessed built-in corpus, once with all training labels and once with a 1% class-
balanced label fraction (several seeds), and prints test accuracies. The corpus should be
learnable but not trivial: full-label accuracy well below 100%, 1%-label accuracy clearly
lower. Runs in about a minute on two CPU cores.

    python scripts/calibrate_synthetic.py [--n 2000] [--seed 0] [--epochs 30] [--fractions 0.01 0.1 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

from ssal.data.splits import label_fraction, stratified_split
from ssal.data.synthetic import generate


def proxy_net(in_channels: int, num_classes: int, width: int = 64) -> nn.Module:
    """Temporal conv net: three conv blocks over time, global average pool, linear."""
    return nn.Sequential(
        nn.Conv1d(in_channels, width, 5, padding=2), nn.BatchNorm1d(width), nn.ReLU(),
        nn.Conv1d(width, width, 5, padding=2, stride=2), nn.BatchNorm1d(width), nn.ReLU(),
        nn.Conv1d(width, width, 5, padding=2, stride=2), nn.BatchNorm1d(width), nn.ReLU(),
        nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(width, num_classes),
    )


def features(x: np.ndarray) -> torch.Tensor:
    """``(N, C, T, V)`` positions -> ``(N, 2 C V, T)``: root-relative positions and velocities."""
    t = torch.from_numpy(np.ascontiguousarray(x)).float()
    rel = t - t[..., :1]  # relative to the root joint (index 0 = layout centre of E-Gait-16)
    vel = torch.zeros_like(t)
    vel[:, :, 1:] = (t[:, :, 1:] - t[:, :, :-1]) * 30.0
    n, c, tt, v = t.shape
    feats = torch.cat([rel, 0.1 * vel], dim=1)
    return feats.permute(0, 1, 3, 2).reshape(n, 2 * c * v, tt)


def train_eval(xtr, ytr, xte, yte, num_classes: int, epochs: int, seed: int) -> float:
    """Train the proxy net on ``(xtr, ytr)`` and return test accuracy on ``(xte, yte)``."""
    torch.manual_seed(seed)
    net = proxy_net(xtr.shape[1], num_classes)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-3)
    ytr_t = torch.from_numpy(ytr)
    steps = max(1, int(np.ceil(len(xtr) / 64)))
    # Small label sets: keep the number of gradient steps comparable.
    epochs_eff = epochs if len(xtr) >= 256 else epochs * 8
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs_eff):
        net.train()
        perm = torch.randperm(len(xtr), generator=g)
        for s in range(steps):
            idx = perm[s * 64 : (s + 1) * 64]
            if len(idx) < 2:
                continue
            loss = nn.functional.cross_entropy(net(xtr[idx]), ytr_t[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        pred = net(xte).argmax(1).numpy()
    return float((pred == yte).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    parser.add_argument("--label-seeds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)

    t0 = time.time()
    ds = generate(args.n, args.seed)
    print(f"generated {len(ds)} sequences {ds.x.shape} in {time.time() - t0:.1f}s; classes {ds.class_counts()}")
    split = stratified_split(ds.y, val=0.0, test=0.2, seed=args.seed)
    x = features(ds.x)
    xtr, xte = x[split["train"]], x[split["test"]]
    ytr, yte = ds.y[split["train"]], ds.y[split["test"]]
    mean, std = xtr.mean(dim=(0, 2), keepdim=True), xtr.std(dim=(0, 2), keepdim=True) + 1e-6
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    print(f"train {len(ytr)}  test {len(yte)}  chance {1 / ds.num_classes:.2f}")
    for frac in args.fractions:
        accs = []
        seeds = range(args.label_seeds) if frac < 1.0 else range(1)
        for s in seeds:
            sub = label_fraction(ytr, frac, seed=s)
            t1 = time.time()
            accs.append(train_eval(xtr[sub], ytr[sub], xte, yte, ds.num_classes, args.epochs, seed=s))
            took = time.time() - t1
        print(
            f"labels {frac:6.1%} ({len(sub):4d}): test acc {np.mean(accs):.3f} +- {np.std(accs):.3f} "
            f"over {len(accs)} seed(s)  [{took:.0f}s per run]"
        )


if __name__ == "__main__":
    main()
