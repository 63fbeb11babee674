"""How long a benchmark spec's pretraining takes on this machine: a few epochs of each method on
the spec's full pretraining corpus, timed, and the projection to the schedule's epoch count.

    python benchmarks/bench_schedule_time.py bandai-affect --data ../shared/data/bandai-namco \
        --schedule default --epochs 3

Prints the machine, its load average before and after, the seconds per epoch of each method
(the median of the timed epochs after the first, which pays for start-up) and the projected
pretraining time of the schedule. Evaluation time is what a run's ``results.json`` records
under ``seconds_by_stage``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from ssal.experiments.corpus import read_evaluation, read_pretraining
from ssal.experiments.experiment import Experiment
from ssal.experiments.figures import machine_description
from ssal.experiments.folds import make_folds
from ssal.experiments.pretraining import run_pretraining
from ssal.experiments.runner import pretraining_schedule
from ssal.experiments.spec import load_spec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec")
    ap.add_argument("--data", required=True)
    ap.add_argument("--schedule", default="default")
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    spec = load_spec(args.spec)
    sched = spec.schedule(args.schedule)
    root = Path(args.data)
    load0 = os.getloadavg()
    t = time.perf_counter()
    ev = read_evaluation(root, spec.evaluation)
    folds = make_folds(ev, spec.split, sched.folds)
    held = sorted({ev.dataset.recording_ids[i] for f in folds for i in f.test})
    corpus, used = read_pretraining(root, spec.pretraining, held, sched.pretrain_limit)
    reading = time.perf_counter() - t
    print(f"machine: {machine_description('cpu')}; load average before: {load0[0]:.2f}")
    print(f"reading the spec's files: {reading:.1f} s ({len(corpus)} pretraining clips)")
    n = len(corpus)
    split = {"train": np.arange(n), "val": np.zeros(0, np.int64), "test": np.zeros(0, np.int64)}
    base = pretraining_schedule(sched, args.schedule).with_changes(pretrain_epochs=args.epochs)
    total = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        exp = Experiment(dataset=corpus, split=split, schedule=base, out=Path(tmp), progress=False,
                         log=lambda m: None)
        for m in spec.methods:
            if sched.methods and m.name not in sched.methods:
                continue
            path = run_pretraining(exp, m.name, m.method, m.set)
            from ssal.training.run_files import read_metrics

            secs = [r["seconds"] for r in read_metrics(path.parent)]
            per_epoch = statistics.median(secs[1:] if len(secs) > 1 else secs)
            total += per_epoch * sched.pretrain_epochs
            print(f"{m.name}: {per_epoch:.2f} s per epoch (epochs: {', '.join(f'{s:.1f}' for s in secs)}) -> "
                  f"{per_epoch * sched.pretrain_epochs / 60:.1f} min for {sched.pretrain_epochs} epochs")
    print(f"projected pretraining of schedule {args.schedule!r}: {total / 60:.1f} min; "
          f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
