"""The study table of docs/results-real.md: every variant of a ``ssal benchmark`` study run
against its method's preset and the random-init encoder, paired on the same recordings.

    python benchmarks/study_table.py runs/affect-study --part val

For each variant (a representation whose name is not a preset, a ``random-*`` or ``raw-pose``)
prints its accuracy [95% CI] under the logistic probe, kNN and 2 labels per class, and the
paired difference (points, 95% bootstrap CI over recordings) to the preset it varies and to the
random initialisation, with the verdict word. ``--baseline NAME=PRESET`` overrides which
preset a variant is read against (default: the method field of the run's results).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ssal.evaluation.uncertainty import bootstrap_ci, paired_difference, verdict
from ssal.experiments.scoring import shared_units

PROTOCOLS = (("logistic", "recording acc."), ("knn", "kNN"), ("few2", "2 labels/class"))


def _diff(a: dict, b: dict, proto: str, part: str) -> str:
    units = shared_units(part, proto, a, b)
    d = paired_difference([a[proto][r] for r in units], [b[proto][r] for r in units])
    return f"{d.mean * 100:+.1f} [{d.lo * 100:+.1f}, {d.hi * 100:+.1f}] {verdict(d)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="a benchmark run directory")
    ap.add_argument("--part", default="val", choices=("val", "test"))
    args = ap.parse_args()
    run = Path(args.run)
    res = json.loads((run / "results.json").read_text())
    reps = res["representations"]
    scores = {name: json.loads((run / "scores" / f"{name}.json").read_text()) for name in reps}
    heads = [h for _, h in PROTOCOLS]
    print("| variant | " + " | ".join(heads) + " | vs preset: rec. acc. | vs preset: 2 labels | "
          "vs random: rec. acc. | vs random: 2 labels |")
    print("|---|" + "---|" * (len(heads) + 4))
    for name, rep in reps.items():
        if rep["kind"] != "method":
            continue
        sc = scores[name]
        cells = []
        for proto, _ in PROTOCOLS:
            units = shared_units(args.part, proto, sc)
            cells.append(bootstrap_ci([sc[proto][r] for r in units]).format())
        preset = rep["method"]
        rnd = scores[f"random-{rep['arch']}"]
        vs = []
        for ref in (scores.get(preset) if preset != name else None, rnd):
            for proto in ("logistic", "few2"):
                vs.append(_diff(sc, ref, proto, args.part) if ref is not None else "(the preset)")
        print(f"| {name} | " + " | ".join(cells) + " | " + " | ".join(vs) + " |")


if __name__ == "__main__":
    main()
