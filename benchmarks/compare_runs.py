"""Paired comparison of representations across ``ssal benchmark`` runs of one spec.

Every benchmark run keeps the per-recording scores of each representation in
``<run>/scores/<name>.json``. Runs of one spec (same folds and draws, e.g. the study with two
pretraining corpora) can be compared recording by recording:

    python benchmarks/compare_runs.py runs/affect-study-walk:skeletonclr runs/affect-study:skeletonclr \
        --part val

prints, for each protocol, both accuracies and the paired difference (first minus second) with
its 95% bootstrap CI over the shared recordings and the verdict word.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ssal.evaluation.uncertainty import bootstrap_ci, paired_difference, verdict
from ssal.experiments.scoring import shared_units

PROTOCOLS = ("logistic", "logistic_clip", "knn", "few1", "few2")


def load(ref: str) -> dict:
    run, _, name = ref.rpartition(":")
    path = Path(run) / "scores" / f"{name}.json"
    if not path.is_file():
        print(f"error: {path}: no scores of {name!r} in that run", file=sys.stderr)
        raise SystemExit(2)
    return json.loads(path.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("first", help="RUN_DIR:REPRESENTATION")
    ap.add_argument("second", help="RUN_DIR:REPRESENTATION")
    ap.add_argument("--part", default="test", choices=("test", "val"))
    args = ap.parse_args()
    a, b = load(args.first), load(args.second)
    print(f"| protocol | {args.first} | {args.second} | difference [95% CI] | |")
    print("|---|---|---|---|---|")
    for proto in PROTOCOLS:
        units = shared_units(args.part, proto, a, b)
        if not units:
            continue
        xa = [a[proto][r] for r in units]
        xb = [b[proto][r] for r in units]
        d = paired_difference(xa, xb)
        print(f"| {proto} (n={len(units)}) | {bootstrap_ci(xa).format()} | {bootstrap_ci(xb).format()} | "
              f"{d.mean * 100:+.1f} [{d.lo * 100:+.1f}, {d.hi * 100:+.1f}] | {verdict(d)} |")


if __name__ == "__main__":
    main()
