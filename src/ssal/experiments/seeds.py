"""Evaluating pretrained encoders: every protocol on one encoder file, and on the encoders of
several pretraining seeds (the seed protocols' results merged as mean +- std over seeds)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..config import clip_len as config_clip_len
from ..evaluation import summarize_runs
from ..inference import load_encoder
from ..models.base import Encoder
from .experiment import Experiment
from .pretraining import seed_run_name
from .protocols import DEFAULT_PROTOCOLS, SEED_PROTOCOLS, evaluate_encoder


def evaluate_pretrained(exp: Experiment, name: str, encoder_path: Path, method: str,
                        protocols: Sequence[str] = DEFAULT_PROTOCOLS, feature: str = "output") -> dict[str, Any]:
    """``protocols`` on a pretrained encoder file; its pretraining history under ``"pretrain"``."""
    _, ck = load_encoder(encoder_path)
    clip_len = config_clip_len(ck["config"])

    def make(seed: int) -> Encoder:
        enc, _ = load_encoder(encoder_path, map_location=exp.device)
        return enc.train()

    exp.log(f"[{name}] evaluating ({', '.join(protocols)}; {feature} feature)")
    res = evaluate_encoder(exp, name, make, clip_len=clip_len, encoder_config=ck["encoder_config"],
                           pretrained=True, method=method, protocols=protocols, feature=feature)
    res["pretrain"] = {"epochs": len(ck.get("history", [])), "history": ck.get("history", [])}
    return res


def merge_seed_results(first: dict[str, Any], others: Sequence[Mapping[str, Any]],
                       protocols: Sequence[str] = SEED_PROTOCOLS) -> dict[str, Any]:
    """``first`` with each of ``protocols`` replaced by its mean +- std over ``[first, *others]``."""
    if not others:
        return first
    merged = dict(first)
    for proto in protocols:
        runs = [r[proto] for r in (first, *others) if r.get(proto)]
        if len(runs) == len(others) + 1:
            merged[proto] = summarize_runs(runs)
    return merged


def evaluate_seeds(exp: Experiment, name: str, method: str, runs: Sequence[tuple[int, Path]],
                   protocols: Sequence[str] = DEFAULT_PROTOCOLS,
                   feature: str = "output", suffix: str = "") -> dict[str, Any]:
    """Every protocol on the first seed's encoder, :data:`~.protocols.SEED_PROTOCOLS` on the
    others, merged; ``runs`` is ``[(seed, encoder.pt)]`` (:func:`~.pretraining.pretrain_seeds`)."""
    first_seed = runs[0][0]
    per_seed = [p for p in protocols if p in SEED_PROTOCOLS]
    results = []
    for i, (seed, path) in enumerate(runs):
        run_name = seed_run_name(name, seed, first_seed) + suffix
        results.append(evaluate_pretrained(exp, run_name, path, method, protocols=protocols if i == 0 else per_seed,
                                           feature=feature))
    merged = merge_seed_results(results[0], results[1:], per_seed)
    merged["pretrain_seeds"] = [seed for seed, _ in runs]
    return merged


__all__ = ["evaluate_pretrained", "evaluate_seeds", "merge_seed_results"]
