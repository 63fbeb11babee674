"""The from-scratch references of an architecture: the supervised reference (the same encoder
trained end to end from a random initialisation, protocols ``supervised`` and ``semi``) and the
random-init baseline (the frozen protocols on an untrained encoder, one initialisation per
pretraining seed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch

from ..config import clip_len as config_clip_len
from ..methods.registry import encoder_name
from ..models import build_encoder
from ..models.base import Encoder
from .experiment import Experiment, method_config
from .pretraining import schedule_seeds, seed_run_name
from .protocols import SCRATCH_PROTOCOLS, SEED_PROTOCOLS, evaluate_encoder
from .seeds import merge_seed_results


def reference_methods(methods: Sequence[str]) -> dict[str, str]:
    """``{architecture: method}``: for each encoder architecture among ``methods``, the first
    method that uses it; its settings are those of the architecture's references."""
    first: dict[str, str] = {}
    for m in methods:
        first.setdefault(encoder_name(m), m)
    return first


def fresh_encoder(cfg: Mapping[str, Any], exp: Experiment, seed: int) -> Encoder:
    """A randomly initialised encoder of ``cfg`` (the ``model.encoder`` section), seeded by ``seed``."""
    torch.manual_seed(seed)
    return build_encoder(cfg, exp.dataset.layout)


def evaluate_from_scratch(exp: Experiment, arch_method: str, supervised: Sequence[str] = SCRATCH_PROTOCOLS,
                          random: Sequence[str] = SEED_PROTOCOLS) -> tuple[dict[str, Any], dict[str, Any]]:
    """The supervised reference (protocols ``supervised``) and the random-init baselines
    (protocols ``random``, one initialisation per pretraining seed) of ``arch_method``'s encoder."""
    cfg = method_config(exp, arch_method)
    enc_cfg = cfg["model"]["encoder"]
    clip_len = config_clip_len(cfg)
    arch = enc_cfg["name"]

    def make(seed: int) -> Encoder:
        return fresh_encoder(enc_cfg, exp, seed).to(exp.device)

    exp.log(f"[supervised-{arch}] training from scratch")
    sup = evaluate_encoder(exp, f"supervised-{arch}", make, clip_len=clip_len, encoder_config=enc_cfg,
                           pretrained=False, protocols=tuple(supervised))
    exp.log(f"[random-{arch}] linear probe on a random initialisation")
    seeds = schedule_seeds(exp)
    rnds = []
    for seed in seeds:
        seed_exp = replace(exp, seed=seed)
        rnds.append(evaluate_encoder(seed_exp, seed_run_name(f"random-{arch}", seed, seeds[0]), make,
                                     clip_len=clip_len, encoder_config=enc_cfg, pretrained=False,
                                     protocols=tuple(random)))
    rnd = merge_seed_results(rnds[0], rnds[1:], [p for p in random if p in SEED_PROTOCOLS])
    rnd["init_seeds"] = list(seeds)
    return sup, rnd


__all__ = ["reference_methods", "fresh_encoder", "evaluate_from_scratch"]
