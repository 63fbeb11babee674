"""Batched torch augmentation vs a per-sample NumPy path written like AimCLR's feeder.

Our views: ``general_augment``, ``ssa_augment`` and ``extreme_augment`` with default settings,
applied to a whole batch ``(N, 3, T, V)`` at once. The reference path below is written here the
way AimCLR's ``feeder/tools.py`` works: a Python loop over samples, each transform a NumPy
function on one ``(C, T, V)`` array (temporal crop with reflected padding + linear resize,
shear, then either SSA's jitter/part mask/frame mask or the extreme set's flip, rotate, noise,
blur and axis mask, each with its probability).

    python benchmarks/bench_augment.py [--batch 128] [--T 75] [--reps 5] [--threads N]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from _common import header, median

# ----------------------------------------------------------------- per-sample NumPy reference


def np_crop_resize(x: np.ndarray, rng: np.random.Generator, clip_len: int = 50, pad_ratio: float = 1 / 6,
                   crop=(0.5, 1.0)) -> np.ndarray:
    c, t, v = x.shape
    pad = min(int(t * pad_ratio), t - 1)
    padded = np.pad(x, ((0, 0), (pad, pad), (0, 0)), mode="reflect")
    window = int(np.clip(round(rng.uniform(*crop) * t), 1, t + 2 * pad))
    start = rng.integers(0, t + 2 * pad - window + 1)
    seg = padded[:, start:start + window]
    pos = np.linspace(0, window - 1, clip_len)
    out = np.empty((c, clip_len, v), dtype=x.dtype)
    for ci in range(c):  # AimCLR resizes with an interpolation call per sample
        for vi in range(v):
            out[ci, :, vi] = np.interp(pos, np.arange(window), seg[ci, :, vi])
    return out


def np_shear(x: np.ndarray, rng: np.random.Generator, a: float = 0.5) -> np.ndarray:
    s = np.eye(3) + (1 - np.eye(3)) * rng.uniform(-a, a, (3, 3))
    return np.einsum("ij,jtv->itv", s, x).astype(x.dtype)


def np_jitter(x, rng, joints, offset_std=0.1, frame_std=0.01):
    x = x.copy()
    c, t, _ = x.shape
    x[:, :, joints] += rng.normal(0, offset_std, (c, 1, len(joints))) + rng.normal(0, frame_std, (c, t, len(joints)))
    return x


def np_part_mask(x, rng, parts):
    x = x.copy()
    k = rng.integers(1, 3)
    for p in rng.choice(len(parts), k, replace=False):
        x[:, :, parts[p]] = 0
    return x


def np_frame_mask(x, rng, ratio=0.15):
    x = x.copy()
    t = x.shape[1]
    x[:, rng.choice(t, round(ratio * t), replace=False)] = 0
    return x


def np_flip(x, perm):
    out = x[:, :, perm].copy()
    out[0] *= -1
    return out


def np_rotate(x, rng, deg=30.0, minor=1.0):
    main = rng.integers(0, 3)
    ang = [math.radians(rng.uniform(-deg, deg) if a == main else rng.uniform(-minor, minor)) for a in range(3)]
    cx, sx, cy, sy, cz, sz = (f(a) for a in ang for f in (math.cos, math.sin))
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return np.einsum("ij,jtv->itv", rz @ ry @ rx, x).astype(x.dtype)


def np_blur(x, rng, kernel=15, sigma=(0.1, 2.0)):
    s = rng.uniform(*sigma)
    half = kernel // 2
    w = np.exp(-np.arange(-half, half + 1) ** 2 / (2 * s * s))
    w /= w.sum()
    c, t, v = x.shape
    out = np.empty_like(x)
    padded = np.pad(x, ((0, 0), (half, half), (0, 0)), mode="edge")
    for ci in range(c):
        for vi in range(v):
            out[ci, :, vi] = np.convolve(padded[ci, :, vi], w, mode="valid")
    return out


def np_axis_mask(x, rng):
    x = x.copy()
    x[rng.integers(0, 3)] = 0
    return x


def numpy_view(batch: np.ndarray, rng: np.random.Generator, kind: str, layout) -> np.ndarray:
    joints = list(layout.upper_body)
    parts = [list(p) for p in layout.parts.values()]
    perm = np.asarray(layout.mirror_permutation())
    out = []
    for x in batch:
        x = np_shear(np_crop_resize(x, rng), rng)
        if kind == "ssa":
            x = np_frame_mask(np_part_mask(np_jitter(x, rng, joints), rng, parts), rng)
        elif kind == "extreme":
            if rng.random() < 0.5:
                x = np_flip(x, perm)
            if rng.random() < 0.5:
                x = np_rotate(x, rng)
            if rng.random() < 0.5:
                x = x + rng.normal(0, 0.01, x.shape).astype(x.dtype)
            if rng.random() < 0.5:
                x = np_blur(x, rng)
            if rng.random() < 0.5:
                x = np_axis_mask(x, rng)
        out.append(x)
    return np.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--T", type=int, default=75)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from ssal.augment import extreme_augment, general_augment, ssa_augment
    from ssal.skeleton import EGAIT16

    header("bench_augment: batched torch views vs per-sample NumPy (AimCLR feeder style)")
    x_np = (np.random.default_rng(0).standard_normal((args.batch, 3, args.T, 16)) * 0.3).astype(np.float32)
    x = torch.from_numpy(x_np)
    gen = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    rows = []
    for kind, builder in (("general", general_augment), ("ssa", ssa_augment), ("extreme", extreme_augment)):
        aug = builder({}, EGAIT16)

        def run_torch(aug=aug):
            aug(x, gen)

        def run_np(kind=kind):
            numpy_view(x_np, rng, kind, EGAIT16)

        res = {}
        for name, fn, reps in (("torch batched", run_torch, args.reps * 4), ("numpy per-sample", run_np, args.reps)):
            fn()
            wall, cpu = [], []
            for _ in range(reps):
                c0, t0 = time.process_time(), time.perf_counter()
                fn()
                wall.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            res[name] = (median(wall), median(cpu))
        rows.append((kind, res))
    print(f"batch {args.batch} x (3, {args.T}, 16) -> clip_len 50; median of reps; seq/s from wall time "
          f"(CPU-time based in brackets)")
    print(f"{'view':<9}{'torch seq/s':>22}{'numpy seq/s':>22}{'speed-up':>10}")
    for kind, res in rows:
        (tw, tc), (nw, nc) = res["torch batched"], res["numpy per-sample"]
        b = args.batch
        print(f"{kind:<9}{b / tw:>12.0f} [{b / tc:>7.0f}]{b / nw:>12.0f} [{b / nc:>7.0f}]{nw / tw:>9.1f}x")


if __name__ == "__main__":
    main()
