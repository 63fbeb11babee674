"""The evaluation protocols of an experiment, as a registry.

Each protocol is an object of a :class:`Protocol` subclass with a ``name`` and one method,
``run(context) -> result``, registered in :data:`PROTOCOLS` in the order protocols run:

* ``knn``: temperature-weighted cosine kNN on frozen features (``run.knn_k``,
  ``run.knn_temperature`` of the configuration);
* ``linear_std``: the linear probe on standardised frozen features (``linear_std_lr``);
* ``linear``: SPEC's linear protocol, raw frozen features (``linear_epochs``, ``linear_lr``);
* ``finetune``: a pretrained encoder and a linear head trained end to end on every label
  (``finetune_epochs``, ``finetune_lr``);
* ``supervised``: the same loop from a random initialisation (the supervised-from-scratch
  reference every SSL number is read against);
* ``semi``: the end-to-end loop on class-balanced label fractions (``fractions``, ``seeds``,
  ``semi_epochs``, ``semi_steps``).

Settings come from the schedule's :class:`~.schedule.EvalSchedule`. :func:`evaluate_encoder`
runs the requested protocols through the registry. The random-init reference is not a protocol
but an encoder (``knn`` and the linear probes on it, :mod:`.references`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ..data.dataset import GaitDataset
from ..errors import SsalInputError
from ..evaluation import (
    ClassifierSettings,
    SemiSettings,
    default_config,
    evaluate,
    knn_evaluate,
    semi_supervised,
    train_classifier,
)
from ..inference import save_classifier
from ..models.base import BackboneFeatures, Encoder
from .experiment import Experiment, knn_settings
from .schedule import EvalSchedule, Schedule

#: The evaluated representation: the encoder's output (CFFN: the fused 128-d vector the paper
#: evaluates, Fig. 4; ST-GCN: AimCLR's 256-d pooled feature) or the pooled last feature maps of
#: every branch (``BackboneFeatures``; for ST-GCN the same as the output).
FEATURES = ("output", "backbone")
#: Protocols run on a pretrained encoder unless told otherwise.
DEFAULT_PROTOCOLS = ("knn", "linear", "linear_std", "finetune", "semi")
#: Protocols run on the encoders of the second and later pretraining seeds (and on random inits).
SEED_PROTOCOLS = ("knn", "linear", "linear_std")
#: Protocols of the supervised-from-scratch reference.
SCRATCH_PROTOCOLS = ("supervised", "semi")
#: Where the trained classifiers are saved in the run directory, by protocol (``linear_std``:
#: only when given a file name).
CLASSIFIER_FILES = {"linear": "classifier.pt", "finetune": "classifier_finetune.pt",
                    "supervised": "classifier_supervised.pt"}


def feature_description(encoder_config: Mapping[str, Any], view: nn.Module, feature: str) -> str:
    """A short name of the evaluated feature, e.g. ``fused 128-d`` or ``pooled 256-d``, from the
    module the protocols read (the encoder, or its :class:`BackboneFeatures` view)."""
    dim = int(getattr(view, "out_dim"))  # noqa: B009 - nn.Module types attributes as Tensor | Module
    if encoder_config.get("name") == "cffn":
        return f"fused {dim}-d" if feature == "output" else f"branch maps pooled {dim}-d"
    return f"pooled {dim}-d" if encoder_config.get("out_dim") is None or feature == "backbone" else f"fc {dim}-d"


def semi_val_every(s: EvalSchedule | Schedule, epochs: int) -> int:
    """Epochs between validation passes of a semi-supervised run of ``epochs`` epochs: about
    ``s.semi_validations`` passes, the last after the last epoch (every epoch if it is null)."""
    if isinstance(s, Schedule):
        s = s.evaluation
    if not s.semi_validations:
        return 1
    return max(1, -(-epochs // s.semi_validations))


def semi_epochs(s: EvalSchedule | Schedule, fraction: float, n_labelled: int, num_classes: int,
                batch_size: int | None = None) -> int:
    """Epochs of one semi-supervised run: at least ``s.semi_epochs``, and enough for
    ``s.semi_steps`` optimisation steps of ``batch_size`` (default: the finetune protocol's) on
    the subset, so 1% runs are not starved of updates."""
    if isinstance(s, Schedule):
        s = s.evaluation
    if not s.semi_steps:
        return s.semi_epochs
    if batch_size is None:
        batch_size = default_config("finetune").batch_size
    n = max(num_classes, int(round(fraction * n_labelled)))
    per_epoch = max(1, -(-n // batch_size))
    return max(s.semi_epochs, -(-s.semi_steps // per_epoch))


@dataclass
class ProtocolContext:
    """What a protocol reads: the experiment and its splits, the encoders to evaluate (a fresh
    one per seed), and where its classifiers are saved."""

    exp: Experiment
    make_encoder: Callable[[int], Encoder]
    feature: str
    clip_len: int | None
    encoder_config: Mapping[str, Any]
    pretrained: bool
    method: str | None
    run_dir: Path
    files: Mapping[str, str]
    train: GaitDataset
    val: GaitDataset
    test: GaitDataset
    #: The evaluated feature's name, from the first encoder a protocol builds.
    feature_name: str | None = None
    #: Frozen features shared by the two linear probes (same encoder file and seed, same data).
    features: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def schedule(self) -> EvalSchedule:
        return self.exp.schedule.evaluation

    @property
    def end_to_end(self) -> str:
        """The full-label end-to-end protocol: ``finetune`` if pretrained, else ``supervised``."""
        return "finetune" if self.pretrained else "supervised"

    def encoder(self, seed: int) -> nn.Module:
        """A fresh encoder from ``make_encoder(seed)``, as the module the protocols read."""
        enc = self.make_encoder(seed)
        view = BackboneFeatures(enc) if self.feature == "backbone" else enc
        if self.feature_name is None:
            self.feature_name = feature_description(self.encoder_config, view, self.feature)
        return view

    def classifier_settings(self, mode: str, **changes: Any) -> ClassifierSettings:
        """``mode``'s settings with ``changes``: the experiment's seed, selection on validation."""
        base = ClassifierSettings(clip_len=self.clip_len, progress=False, select="val", seed=self.exp.seed)
        run = {k: getattr(base, k) for k in ("seed", "select", "clip_len", "eval_batch_size", "progress")}
        return ClassifierSettings.for_mode(mode, **run, **changes)  # type: ignore[arg-type]

    def train_and_report(self, proto: str, mode: str, epochs: int, lr: float, standardize: bool = False,
                         feature_cache: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
        """Train one classifier protocol, score it on test, save it under ``files[proto]``."""
        settings = self.classifier_settings(mode, epochs=epochs, lr=lr, milestones=(int(epochs * 0.8),),
                                            standardize=standardize)
        model, hist = train_classifier(self.encoder(self.exp.seed), None, self.train, self.val, settings,
                                       device=self.exp.device, feature_cache=feature_cache)
        report = evaluate(model, self.test)
        report["best_epoch"] = hist["best_epoch"]
        if self.files.get(proto):
            ds = self.exp.dataset
            save_classifier(self.run_dir / self.files[proto], model.encoder, model.head,  # type: ignore[arg-type]
                            encoder_config=self.encoder_config, layout=ds.layout, classes=ds.classes,
                            preprocess=ds.meta.get("preprocess"), clip_len=self.clip_len, protocol=proto,
                            report=report, method=self.method)
        return report


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol: a name and :meth:`run`."""

    name: str
    #: True: only for a pretrained encoder; False: only for a random initialisation; None: any.
    for_pretrained: bool | None = None

    def run(self, ctx: ProtocolContext) -> dict[str, Any] | None:
        """The protocol's result on ``ctx``'s encoders (None: nothing to run)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Knn(Protocol):
    def run(self, ctx: ProtocolContext) -> dict[str, Any]:
        return knn_evaluate(ctx.encoder(ctx.exp.seed), ctx.train, ctx.test,
                            knn_settings(ctx.exp.config_overrides, ctx.clip_len), device=ctx.exp.device)


@dataclass(frozen=True)
class LinearProbe(Protocol):
    """A linear head on frozen features: raw (``linear_lr``) or standardised (``linear_std_lr``)."""

    standardize: bool = False

    def run(self, ctx: ProtocolContext) -> dict[str, Any]:
        s = ctx.schedule
        lr = s.linear_std_lr if self.standardize else s.linear_lr
        return ctx.train_and_report(self.name, "linear", s.linear_epochs, lr, standardize=self.standardize,
                                    feature_cache=ctx.features)


@dataclass(frozen=True)
class EndToEnd(Protocol):
    """Encoder and head trained end to end on every label (``finetune_epochs``, ``finetune_lr``)."""

    def run(self, ctx: ProtocolContext) -> dict[str, Any]:
        s = ctx.schedule
        return ctx.train_and_report(self.name, self.name, s.finetune_epochs, s.finetune_lr)


@dataclass(frozen=True)
class SemiSupervised(Protocol):
    """The end-to-end loop on each label fraction, over the schedule's label-subset seeds."""

    def run(self, ctx: ProtocolContext) -> dict[str, Any] | None:
        s = ctx.schedule
        if not s.fractions:
            return None
        train = ctx.train
        draws = itertools.count(1)

        def factory() -> nn.Module:
            return ctx.encoder(ctx.exp.seed + next(draws))

        result: dict[str, Any] = {}
        for fraction in s.fractions:
            epochs = semi_epochs(s, fraction, len(train.labelled), train.num_classes)
            run = ctx.classifier_settings(ctx.end_to_end, epochs=epochs, lr=s.finetune_lr,
                                          milestones=(max(1, int(epochs * 0.8)),),
                                          val_every=semi_val_every(s, epochs))
            result.update(semi_supervised(factory, train, ctx.val, ctx.test,
                                          SemiSettings(fractions=(fraction,), seeds=tuple(s.seeds), classifier=run),
                                          sampler=recording_sampler(train), device=ctx.exp.device))
        return result


def recording_sampler(train: GaitDataset) -> Callable[[np.ndarray, float, int], np.ndarray] | None:
    """The label-fraction sampler of a dataset of clips of recordings: whole recordings are
    drawn (:func:`ssal.data.splits.label_fraction` with ``groups``); None without groups."""
    if train.groups is None:
        return None
    from ..data.splits import label_fraction

    lab_groups = [train.groups[i] for i in train.labelled]

    def sampler(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
        return label_fraction(y, fraction, seed, groups=lab_groups)

    return sampler


#: The protocols by name, in the order :func:`evaluate_encoder` runs them.
PROTOCOLS: dict[str, Protocol] = {}


def register(protocol: Protocol) -> Protocol:
    """Add ``protocol`` to :data:`PROTOCOLS` (it runs after those registered before it)."""
    if protocol.name in PROTOCOLS:
        raise ValueError(f"protocol {protocol.name!r} is registered twice")
    PROTOCOLS[protocol.name] = protocol
    return protocol


for _protocol in (Knn("knn"), LinearProbe("linear_std", standardize=True), LinearProbe("linear"),
                  EndToEnd("finetune", for_pretrained=True), EndToEnd("supervised", for_pretrained=False),
                  SemiSupervised("semi")):
    register(_protocol)


def chosen_protocols(names: Sequence[str], pretrained: bool) -> list[Protocol]:
    """The registered protocols named in ``names``, in registry order; an unknown name, or a
    protocol for the other kind of encoder, is a one-line :class:`SsalInputError`."""
    unknown = [n for n in names if n not in PROTOCOLS]
    if unknown:
        raise SsalInputError(None, f"unknown protocol(s) {', '.join(map(str, unknown))}; "
                                   f"known: {', '.join(PROTOCOLS)}")
    chosen = [p for name, p in PROTOCOLS.items() if name in names]
    for p in chosen:
        if p.for_pretrained is not None and p.for_pretrained != pretrained:
            kind = "a pretrained encoder" if p.for_pretrained else "an encoder trained from scratch"
            raise SsalInputError(None, f"protocol {p.name!r} is for {kind}; the end-to-end protocol here is "
                                       f"{'finetune' if pretrained else 'supervised'!r}")
    return chosen


def evaluate_encoder(exp: Experiment, name: str, make_encoder: Callable[[int], Encoder], *,
                     clip_len: int | None, encoder_config: Mapping[str, Any], pretrained: bool,
                     method: str | None = None, protocols: Sequence[str] = DEFAULT_PROTOCOLS,
                     classifier_files: Mapping[str, str] | None = None,
                     feature: str = "output") -> dict[str, Any]:
    """Run ``protocols`` (names in :data:`PROTOCOLS`) on encoders from ``make_encoder(seed)``;
    returns the results by protocol.

    For a pretrained encoder the full-label end-to-end protocol is ``finetune``; for a random
    initialisation it is ``supervised``. Model selection uses the validation split, never the
    test split. ``feature`` (:data:`FEATURES`) picks the representation every protocol reads;
    the results name it under ``"feature"``. The trained classifiers are saved in
    ``exp.out / name`` under the file names of ``classifier_files`` (protocol -> file name;
    defaults: :data:`CLASSIFIER_FILES`).
    """
    if feature not in FEATURES:
        raise SsalInputError(None, f"unknown evaluation feature {feature!r}; use one of {', '.join(FEATURES)}")
    chosen = chosen_protocols(protocols, pretrained)
    run_dir = exp.out / name
    run_dir.mkdir(parents=True, exist_ok=True)
    ctx = ProtocolContext(exp=exp, make_encoder=make_encoder, feature=feature, clip_len=clip_len,
                          encoder_config=encoder_config, pretrained=pretrained, method=method, run_dir=run_dir,
                          files={**CLASSIFIER_FILES, **dict(classifier_files or {})},
                          train=exp.train, val=exp.val, test=exp.test)
    out: dict[str, Any] = {}
    for protocol in chosen:
        result = protocol.run(ctx)
        if ctx.feature_name is not None:
            out.setdefault("feature", ctx.feature_name)
        if result is not None:
            out[protocol.name] = result
    return out


__all__ = ["PROTOCOLS", "Protocol", "ProtocolContext", "register", "evaluate_encoder", "chosen_protocols",
           "FEATURES", "DEFAULT_PROTOCOLS", "SEED_PROTOCOLS", "SCRATCH_PROTOCOLS", "CLASSIFIER_FILES",
           "feature_description", "semi_epochs", "semi_val_every"]
