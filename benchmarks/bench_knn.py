"""kNN evaluation time against the size of the memory bank (1k, 10k, 100k features).

Times ``ssal.evaluation.knn.knn_predict`` (cosine similarity in chunks, top-k, weighted votes) of
a fixed set of query features against banks of random 128-d features with 4 classes. Feature
extraction is not included (see ``bench_predict.py`` for encoder throughput).

    python benchmarks/bench_knn.py [--banks 1000 10000 100000] [--queries 1000] [--k 20] [--reps 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import header, median


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--banks", type=int, nargs="+", default=[1000, 10_000, 100_000])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()

    from ssal.evaluation.knn import knn_predict

    header("bench_knn: weighted cosine kNN time vs memory-bank size")
    rng = np.random.default_rng(0)
    queries = rng.standard_normal((args.queries, args.dim)).astype(np.float32)
    print(f"{args.queries} queries, dim {args.dim}, k {args.k}, 4 classes")
    print(f"{'bank':>9}{'median s':>10}{'queries/s':>11}{'ms / 1k bank':>14}")
    for n in args.banks:
        bank = rng.standard_normal((n, args.dim)).astype(np.float32)
        y = rng.integers(0, 4, n)
        knn_predict(bank, y, queries[:10], k=args.k, num_classes=4)
        ts = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            knn_predict(bank, y, queries, k=args.k, num_classes=4)
            ts.append(time.perf_counter() - t0)
        t = median(ts)
        print(f"{n:>9}{t:>10.3f}{args.queries / t:>11.0f}{1000 * t / (n / 1000):>14.2f}", flush=True)


if __name__ == "__main__":
    main()
