"""Design choices measured on the validation split of the built-in corpus, never on its test split.

The demo splits the 2,000-sequence corpus 1,600 / 200 / 200 (seed 0). This study splits the
demo's *training* part again (a stratified ninth, seed 1, for model selection) and scores on
the demo's *validation* part, so the demo's test split stays unseen by every choice made here.

For each centring mode and each (method, augmentation variant) it pretrains with the demo's
``default`` schedule and reports kNN, the SPEC linear probe (raw features, lr 3.0) and the
probe on standardised features, beside randomly initialised encoders of both architectures.
It made the table in docs/results.md ("How the defaults were chosen"); about 12 minutes per
centring mode on 2 CPU cores with the default variants.

    python scripts/validation_study.py --center per_frame first_frame --out runs/validation_study
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ssal.config import clip_len as config_clip_len
from ssal.data.splits import stratified_split
from ssal.data.synthetic import load_builtin
from ssal.evaluation.report import to_jsonable
from ssal.experiments.experiment import Experiment, method_config
from ssal.experiments.pretraining import run_pretraining
from ssal.experiments.protocols import evaluate_encoder
from ssal.experiments.references import fresh_encoder
from ssal.experiments.schedule import SCHEDULES
from ssal.experiments.seeds import evaluate_pretrained

#: Config overrides tried against the preset. The augmentation ones change the general set T
#: (and so every view that starts with T).
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "shift-only crop": {"model": {"augment": {"general": {"crop_ratio": [1.0, 1.0]}}}},
    "shift-only crop, shear 0.2": {"model": {"augment": {"general": {"crop_ratio": [1.0, 1.0],
                                                                      "shear_amplitude": 0.2}}}},
    "queue 256": {"model": {"queue_size": 256}},
    "temperature 0.2": {"model": {"temperature": 0.2}},
}
PROTOCOLS = ("knn", "linear", "linear_std")


def tuning_experiment(center: str, out: Path) -> Experiment:
    """The demo's corpus and split, re-split so that scoring uses the demo's validation part."""
    sched = SCHEDULES["default"]
    ds = load_builtin(sched.pretrain.corpus_size, 0, center=center)
    demo = stratified_split(ds.y, val=0.1, test=0.1, seed=0)
    inner = stratified_split(ds.y[demo["train"]], val=1 / 9, test=0.0, seed=1)
    split = {"train": demo["train"][inner["train"]], "val": demo["train"][inner["val"]], "test": demo["val"]}
    out.mkdir(parents=True, exist_ok=True)
    return Experiment(dataset=ds, split={k: np.asarray(v, np.int64) for k, v in split.items()}, schedule=sched,
                      out=out, progress=False, log=lambda m: None,
                      config_overrides={"data": {"builtin_n": sched.pretrain.corpus_size, "center": center}})


def score(res: dict[str, Any]) -> dict[str, float]:
    return {p: round(100 * res[p]["top1"], 1) for p in PROTOCOLS if p in res}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--center", nargs="+", default=["per_frame", "first_frame"])
    ap.add_argument("--methods", nargs="+", default=["ssal", "aimclr", "skeletonclr"])
    ap.add_argument("--variants", nargs="+", default=["default"], choices=list(VARIANTS))
    ap.add_argument("--epochs", type=int, help="pretraining epochs (default: the demo's)")
    ap.add_argument("--out", default="runs/validation_study")
    args = ap.parse_args()

    rows: list[dict[str, Any]] = []
    for center in args.center:
        exp = tuning_experiment(center, Path(args.out) / center)
        if args.epochs:
            exp = replace(exp, schedule=exp.schedule.with_changes(pretrain_epochs=args.epochs))
        for arch_method in ("ssal", "skeletonclr"):
            cfg = method_config(exp, arch_method)
            enc_cfg = cfg["model"]["encoder"]
            res = evaluate_encoder(exp, f"random-{enc_cfg['name']}",
                                   lambda seed, c=enc_cfg, e=exp: fresh_encoder(c, e, seed),
                                   clip_len=config_clip_len(cfg), encoder_config=enc_cfg, pretrained=False,
                                   protocols=PROTOCOLS)
            rows.append({"center": center, "method": f"random {enc_cfg['name']}", "variant": "-", **score(res)})
            print(json.dumps(rows[-1]), flush=True)
        for method in args.methods:
            for variant in args.variants:
                name = f"{method}-v{list(VARIANTS).index(variant)}"
                t0 = time.perf_counter()
                path = run_pretraining(exp, name, method, VARIANTS[variant])
                res = evaluate_pretrained(exp, name, path, method, protocols=PROTOCOLS)
                rows.append({"center": center, "method": method, "variant": variant, **score(res),
                             "seconds": round(time.perf_counter() - t0)})
                print(json.dumps(rows[-1]), flush=True)

    print("\n| centring | encoder | variant | kNN | linear (SPEC) | linear (std. features) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['center']} | {r['method']} | {r['variant']} | {r['knn']} | {r['linear']} | {r['linear_std']} |")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "study.json").write_text(json.dumps(to_jsonable(rows), indent=2))


if __name__ == "__main__":
    main()
