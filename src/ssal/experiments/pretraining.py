"""Pretraining the methods of an experiment: one run directory per method and pretraining seed,
resumed from its checkpoint when interrupted, reused when finished."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..methods.registry import available_methods
from ..training.engine import pretrain
from .experiment import Experiment, method_config

#: The self-supervised methods, one per preset of the method registry.
SSL_METHODS = available_methods()


def run_pretraining(exp: Experiment, name: str, method: str, extra: Mapping[str, Any] | None = None) -> Path:
    """Pretrain (or resume, or reuse) ``method`` into ``exp.out / name``; returns encoder.pt."""
    run_dir = exp.out / name
    encoder_path = run_dir / "encoder.pt"
    if encoder_path.is_file():
        exp.log(f"[{name}] pretrained encoder found, reusing {encoder_path}")
        return encoder_path
    cfg = method_config(exp, method, extra)
    resume = (run_dir / "checkpoint.pt").is_file()
    exp.log(f"[{name}] {'resuming' if resume else 'pretraining'} {method} "
            f"({cfg['train']['epochs']} epochs, {len(exp.split['train'])} sequences)")
    t0 = time.perf_counter()
    pretrain(cfg, run_dir, dataset=exp.dataset, split=exp.split, resume=resume, overwrite=not resume)
    exp.log(f"[{name}] pretraining took {time.perf_counter() - t0:.0f} s")
    return encoder_path


def schedule_seeds(exp: Experiment) -> tuple[int, ...]:
    """The pretraining seeds of the experiment's schedule (its own seed if the schedule has none)."""
    return tuple(int(s) for s in (exp.schedule.pretrain.pretrain_seeds or (exp.seed,)))


def seed_run_name(name: str, seed: int, first: int) -> str:
    """Run directory of pretraining seed ``seed``: ``name`` for the first seed, else ``name-seed<k>``."""
    return name if seed == first else f"{name}-seed{seed}"


def pretrain_seed(exp: Experiment, name: str, method: str, seed: int,
                  extra: Mapping[str, Any] | None = None) -> tuple[int, Path]:
    """Pretrain ``method`` with ``seed`` into its seed's run directory (:func:`seed_run_name`);
    ``(seed, encoder.pt)``."""
    from ..config import deep_merge

    cfg = deep_merge(dict(extra or {}), {"seed": seed}, strict=False)
    return seed, run_pretraining(exp, seed_run_name(name, seed, schedule_seeds(exp)[0]), method, cfg)


def seed_run_dirs(exp: Experiment, name: str) -> list[tuple[int, Path]]:
    """``[(seed, run directory)]`` of ``name``'s pretraining seeds, first seed first."""
    seeds = schedule_seeds(exp)
    return [(seed, exp.out / seed_run_name(name, seed, seeds[0])) for seed in seeds]


def pretrain_seeds(exp: Experiment, name: str, method: str, extra: Mapping[str, Any] | None = None,
                   before: Callable[[int, Path], None] | None = None) -> list[tuple[int, Path]]:
    """Pretrain ``method`` once per seed of the schedule; ``[(seed, encoder.pt)]``, first seed first.

    ``before(seed, run_dir)`` is called before each seed's run (e.g. a progress line)."""
    out = []
    for seed, run_dir in seed_run_dirs(exp, name):
        if before is not None:
            before(seed, run_dir)
        out.append(pretrain_seed(exp, name, method, seed, extra))
    return out


__all__ = ["SSL_METHODS", "run_pretraining", "schedule_seeds", "seed_run_name", "seed_run_dirs", "pretrain_seed",
           "pretrain_seeds"]
