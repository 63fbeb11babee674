"""Semi-supervised protocol: finetune on class-balanced fractions of the training labels.

For each label fraction and seed, a class-balanced random subset of the labelled training
sequences is drawn (:func:`ssal.data.splits.label_fraction`), a fresh encoder from
``make_encoder()`` is finetuned on it together with a fresh head, and the selected model is
evaluated on the test set. Passing a ``make_encoder`` that returns randomly initialised
encoders (and ``mode="supervised"``) gives the supervised reference at the same fractions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..config.schema import SemiConfig
from ..data.dataset import GaitDataset
from ..errors import SsalInputError
from .classifier import Augment, ClassifierSettings, evaluate, make_head, train_classifier
from .metrics import summarize_runs

#: ``sampler(y, fraction, seed) -> indices into y``: picks the labelled subset.
LabelSampler = Callable[[np.ndarray, float, int], np.ndarray]


def fraction_key(fraction: float) -> str:
    """The key of a label fraction in result dicts (``0.01 -> "0.01"``), JSON-safe."""
    return f"{fraction:g}"


def _default_sampler(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    from ..data.splits import label_fraction  # lazy: keeps evaluation importable on its own

    return np.asarray(label_fraction(y, fraction, seed), dtype=np.int64)


def _finetune_settings() -> ClassifierSettings:
    return ClassifierSettings.for_mode("finetune")


@dataclass(frozen=True)
class SemiSettings:
    """Settings of the semi-supervised protocol.

    Attributes:
        fractions: label fractions in (0, 1].
        seeds: one run per seed and fraction (the seed drives both the subset and training;
            it replaces ``classifier.seed``).
        classifier: the training settings of every run (default: the finetune protocol's);
            without a validation set, ``select`` becomes ``"last"``.
    """

    fractions: tuple[float, ...] = tuple(SemiConfig().fractions)  # eval.semi of the configuration
    seeds: tuple[int, ...] = tuple(SemiConfig().seeds)
    classifier: ClassifierSettings = field(default_factory=_finetune_settings)

    def replace(self, **changes: Any) -> SemiSettings:
        """A copy with the given fields changed (unknown names: :class:`SsalInputError`)."""
        try:
            return replace(self, **changes)
        except TypeError as exc:
            raise SsalInputError("semi", str(exc)) from None


def semi_supervised(
    make_encoder: Callable[[], nn.Module],
    train_ds: GaitDataset,
    val_ds: GaitDataset | None,
    test_ds: GaitDataset,
    settings: SemiSettings | None = None,
    *,
    sampler: LabelSampler | None = None,
    device: torch.device | str = "cpu",
    augment: Augment | None = None,
) -> dict[str, dict[str, Any]]:
    """Run the semi-supervised protocol; returns one summary per fraction.

    Args:
        make_encoder: returns a fresh encoder each call (pretrained weights loaded, or a random
            initialisation for the supervised reference).
        train_ds: the training split; its labelled sequences are subsampled.
        val_ds: validation split used for model selection (``None``: the last epoch is kept).
        test_ds: the test split every run is evaluated on.
        settings: fractions, seeds and the training settings of each run (:class:`SemiSettings`;
            ``classifier.mode`` ``"finetune"`` (default), ``"supervised"`` or ``"linear"``).
        sampler: picks the subset, default :func:`ssal.data.splits.label_fraction`
            (class-balanced, at least one sequence per class).
        device: where training and evaluation run.
        augment: passed to :func:`~ssal.evaluation.classifier.train_classifier`.

    Returns:
        ``{fraction_key: {"mean", "std", "macro_f1_mean", "macro_f1_std", "n_labels",
        "runs": [{"seed", "n_labels", "class_counts", "best_epoch", "report"}]}}`` where mean
        and std are test top-1 over seeds (sample std) and ``report`` is the test
        :func:`~ssal.evaluation.metrics.classification_report`.
    """
    st = settings if settings is not None else SemiSettings()
    fractions, seeds, base = tuple(st.fractions), tuple(st.seeds), st.classifier
    progress = base.progress
    sample = sampler or _default_sampler
    labelled = train_ds.labelled
    if len(labelled) == 0:
        raise SsalInputError(
            train_ds.meta.get("source"), "no labelled training sequences for semi-supervised runs"
        )
    for f in fractions:
        if not 0.0 < f <= 1.0:
            raise SsalInputError("fractions", f"label fraction {f} is not in (0, 1]")
    if val_ds is None:
        base = base.replace(select="last")
    y_lab = train_ds.y[labelled]
    results: dict[str, dict[str, Any]] = {}
    jobs = [(f, s) for f in fractions for s in seeds]
    runs: dict[str, list[dict[str, Any]]] = {fraction_key(f): [] for f in fractions}
    for fraction, seed in tqdm(jobs, desc="semi", disable=not progress):
        chosen = labelled[sample(y_lab, fraction, seed)]
        subset = train_ds.subset(chosen)
        encoder = make_encoder()
        # getattr: typed access on an nn.Module would be Tensor | Module
        head = make_head(int(getattr(encoder, "out_dim")), train_ds.num_classes)  # noqa: B009
        model, history = train_classifier(
            encoder, head, subset, val_ds, base.replace(seed=int(seed)), device=device, augment=augment,
        )
        runs[fraction_key(fraction)].append(
            {
                "seed": int(seed),
                "n_labels": int(len(chosen)),
                "class_counts": subset.class_counts(),
                "best_epoch": history["best_epoch"],
                "report": evaluate(model, test_ds, device=device),
            }
        )
    for fraction in fractions:
        key = fraction_key(fraction)
        summary = summarize_runs(runs[key])
        summary["fraction"] = float(fraction)
        summary["n_labels"] = [r["n_labels"] for r in runs[key]]
        results[key] = summary
    return results
