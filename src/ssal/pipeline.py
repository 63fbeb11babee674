"""End-to-end experiment pipelines: the demo, reproduction on user data, ablations.

A pipeline pretrains each method with :func:`ssal.engine.pretrain`, then evaluates every
encoder with the protocols of :mod:`ssal.evaluation` on one seeded stratified split, against
the same encoder architectures trained from scratch (the supervised reference) and left at
random initialisation. Results go to ``results.json``, ``report.md`` and PNG plots in the run
directory. Pretraining runs are resumable: an interrupted pipeline started again with
``resume=True`` skips finished methods and resumes unfinished ones from their checkpoints.
"""

from __future__ import annotations

import copy
import platform
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from .api import load, load_encoder, save_classifier
from .config import clip_len as config_clip_len
from .config import resolve_config
from .data.configured import load_configured_dataset
from .data.dataset import GaitDataset
from .data.splits import kfold, load_split, save_split, stratified_split
from .engine import pretrain, prepare_run_dir, read_metrics
from .errors import SsalInputError
from .methods.registry import available_methods, encoder_name
from .evaluation import (
    ClassifierSettings,
    KnnSettings,
    SemiSettings,
    evaluate,
    format_table,
    knn_evaluate,
    semi_supervised,
    summarize_runs,
    train_classifier,
    write_report,
)
from .models import build_encoder
from .models.base import BackboneFeatures, Encoder

#: The self-supervised methods, one per preset in ``ssal/methods/configs`` (the registry).
SSL_METHODS = available_methods()


@dataclass(frozen=True)
class PretrainSchedule:
    """The settings that shape the pretrained encoders (and the corpus they are trained on).

    A resumed pipeline reuses finished pretraining stages, so these must match on resume.
    """

    corpus_size: int = 2000
    pretrain_epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    lr_milestones: tuple[int, ...] = ()
    clip_len: int = 32
    queue_size: int = 1024
    momentum: float = 0.99
    # The kNN monitor of the pretraining runs (``run.knn_every``; recorded in their history).
    knn_every: int = 5
    # Pretraining seeds: kNN and the linear probes are reported as mean +- std over one
    # pretrained encoder per seed (finetune and semi-supervised use the first).
    pretrain_seeds: tuple[int, ...] = (0, 1, 2)
    # Encoder size: None keeps the preset (AimCLR's ST-GCN, widths 16..64, 256). The CPU
    # schedules use a reduced 5-layer plan ending at 64 channels, and the reports say so.
    channels: tuple[int, ...] | None = (16, 32, 32, 64, 64)
    strides: tuple[int, ...] | None = (1, 2, 1, 2, 1)
    image_channels: int | None = 16
    image_depth: int | None = 1

    def overrides(self, method: str) -> dict[str, Any]:
        """Config overrides of this schedule for one method."""
        model: dict[str, Any] = {
            "queue_size": self.queue_size,
            "momentum": self.momentum,
            "augment": {"general": {"clip_len": self.clip_len}},
        }
        enc: dict[str, Any] = {}
        if self.channels is not None:
            enc["channels"] = list(self.channels)
            enc["strides"] = list(self.strides) if self.strides is not None else None
            enc["hidden_dim"] = None  # the last width is the last entry of channels
        if method == "ssal" or encoder_name(method) == "cffn":
            if self.image_channels is not None:
                enc["image_channels"] = self.image_channels
            if self.image_depth is not None:
                enc["image_depth"] = self.image_depth
        if enc:
            model["encoder"] = enc
        return {
            "model": model,
            "train": {"epochs": self.pretrain_epochs, "batch_size": self.batch_size, "lr": self.lr,
                      "lr_milestones": list(self.lr_milestones)},
            "run": {"knn_every": self.knn_every},
        }


@dataclass(frozen=True)
class EvalSchedule:
    """The settings of the evaluation protocols (free to change on resume)."""

    # The linear protocol of SPEC (AimCLR's): raw frozen features, SGD lr 3.0, x0.1 at 80%.
    linear_epochs: int = 100
    linear_lr: float = 3.0
    # The second linear probe, on standardised features (``linear_std``): a smaller rate suits it.
    linear_std_lr: float = 0.3
    finetune_epochs: int = 6
    finetune_lr: float = 0.05
    semi_epochs: int = 5
    # Optimisation steps per semi-supervised run (None: exactly ``semi_epochs`` epochs).
    semi_steps: int | None = 40
    fractions: tuple[float, ...] = (0.01, 0.05, 0.1)
    seeds: tuple[int, ...] = (0, 1, 2)


_PRETRAIN_KEYS = tuple(f.name for f in fields(PretrainSchedule))
_EVAL_KEYS = tuple(f.name for f in fields(EvalSchedule))


@dataclass(frozen=True)
class Schedule:
    """How long each stage runs: a name, a :class:`PretrainSchedule` and an :class:`EvalSchedule`.
    ``quick``, ``default`` and ``full`` are built in.

    :meth:`of` and :meth:`with_changes` take the flat field names of both parts
    (``Schedule.of("mine", pretrain_epochs=2, linear_epochs=20)``); :meth:`to_dict` is the flat
    record written to ``schedule.json`` and ``results.json``.
    """

    name: str
    pretrain: PretrainSchedule = field(default_factory=PretrainSchedule)
    evaluation: EvalSchedule = field(default_factory=EvalSchedule)

    @classmethod
    def of(cls, name: str, **changes: Any) -> "Schedule":
        """The default schedule named ``name`` with flat field changes applied."""
        return cls(name=name).with_changes(**changes)

    def with_changes(self, **changes: Any) -> "Schedule":
        """A copy with flat field changes (``name`` or any field of either part) applied."""
        unknown = sorted(set(changes) - {"name", *_PRETRAIN_KEYS, *_EVAL_KEYS})
        if unknown:
            raise SsalInputError("schedule", f"unknown schedule field(s) {', '.join(unknown)}")
        pre = {k: v for k, v in changes.items() if k in _PRETRAIN_KEYS}
        ev = {k: v for k, v in changes.items() if k in _EVAL_KEYS}
        return replace(self, name=changes.get("name", self.name), pretrain=replace(self.pretrain, **pre),
                       evaluation=replace(self.evaluation, **ev))

    def to_dict(self) -> dict[str, Any]:
        """The flat record: ``name``, then the pretraining fields, then the evaluation fields."""
        return {"name": self.name, **asdict(self.pretrain), **asdict(self.evaluation)}

    def overrides(self, method: str) -> dict[str, Any]:
        """Config overrides of this schedule for one method (:meth:`PretrainSchedule.overrides`)."""
        return self.pretrain.overrides(method)


SCHEDULES: dict[str, Schedule] = {
    # A first look in about two minutes on 2 CPU cores: small corpus, few epochs, one seed.
    "quick": Schedule.of("quick", corpus_size=600, pretrain_epochs=4, batch_size=64, queue_size=256,
                      knn_every=2, linear_epochs=50, finetune_epochs=5, semi_epochs=3, semi_steps=20,
                      fractions=(0.05, 0.1), seeds=(0, 1), pretrain_seeds=(0,)),
    # The demo's default: about ten minutes on 2 CPU cores.
    "default": Schedule.of("default"),
    # Paper-scale: AimCLR's schedule and encoder (300 epochs, step at 250, 50-frame clips).
    "full": Schedule.of("full", pretrain_epochs=300, lr_milestones=(250,), clip_len=50, momentum=0.999,
                     channels=None, strides=None, image_channels=None, image_depth=None, knn_every=10,
                     linear_epochs=100, linear_lr=3.0, finetune_epochs=100, semi_epochs=100, semi_steps=None,
                     fractions=(0.01, 0.05, 0.1, 0.2, 0.5), seeds=(0, 1, 2, 3, 4)),
}




@dataclass
class Experiment:
    """One dataset, one split, one schedule: the shared state of a pipeline run."""

    dataset: GaitDataset
    split: dict[str, np.ndarray]
    schedule: Schedule
    out: Path
    device: str = "cpu"
    progress: bool = True
    seed: int = 0
    log: Callable[[str], None] = print
    config_overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def train(self) -> GaitDataset:
        return self.dataset.subset(self.split["train"])

    @property
    def val(self) -> GaitDataset:
        return self.dataset.subset(self.split["val"])

    @property
    def test(self) -> GaitDataset:
        return self.dataset.subset(self.split["test"])


def configured(section: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One section of the configuration (``"data"``, ``"run"``): the section of ``overrides``
    (config overrides) typed by its schema, the schema defaults where it names nothing."""
    from .config import DataConfig, RunConfig, typed_section

    schema = {"data": DataConfig, "run": RunConfig}[section]
    return asdict(typed_section(schema, (overrides or {}).get(section) or {}, None, f"{section}."))


def split_fractions(overrides: Mapping[str, Any] | None = None) -> tuple[float, float]:
    """``(data.val_fraction, data.test_fraction)`` of the configuration (see :func:`configured`)."""
    data = configured("data", overrides)
    return float(data["val_fraction"]), float(data["test_fraction"])


def knn_settings(overrides: Mapping[str, Any] | None = None, clip_len: int | None = None) -> KnnSettings:
    """The kNN protocol's settings: ``run.knn_k`` and ``run.knn_temperature`` of the configuration
    (see :func:`configured`)."""
    return KnnSettings.from_run(configured("run", overrides), clip_len)


def method_config(exp: Experiment, method: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The resolved pretraining configuration of ``method`` under the experiment's schedule."""
    from .config import deep_merge

    overrides = deep_merge(exp.schedule.overrides(method), exp.config_overrides, strict=False)
    overrides = deep_merge(overrides, {"seed": exp.seed, "run": {"device": exp.device, "progress": exp.progress}},
                           strict=False)
    if extra:
        overrides = deep_merge(overrides, extra, strict=False)
    return resolve_config(method, overrides=overrides)


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


def _fresh_encoder(cfg: Mapping[str, Any], exp: Experiment, seed: int) -> Encoder:
    torch.manual_seed(seed)
    return build_encoder(cfg, exp.dataset.layout)


#: The evaluated representation: the encoder's output (CFFN: the fused 128-d vector the paper
#: evaluates, Fig. 4; ST-GCN: AimCLR's 256-d pooled feature) or the pooled last feature maps of
#: every branch (``BackboneFeatures``; for ST-GCN the same as the output).
FEATURES = ("output", "backbone")
#: Protocols run on the encoders of the second and later pretraining seeds.
SEED_PROTOCOLS = ("knn", "linear", "linear_std")


def feature_description(encoder_config: Mapping[str, Any], view: torch.nn.Module, feature: str) -> str:
    """A short name of the evaluated feature, e.g. ``fused 128-d`` or ``pooled 256-d``, from the
    module the protocols read (the encoder, or its :class:`BackboneFeatures` view)."""
    dim = int(getattr(view, "out_dim"))
    if encoder_config.get("name") == "cffn":
        return f"fused {dim}-d" if feature == "output" else f"branch maps pooled {dim}-d"
    return f"pooled {dim}-d" if encoder_config.get("out_dim") is None or feature == "backbone" else f"fc {dim}-d"


def evaluate_encoder(exp: Experiment, name: str, make_encoder: Callable[[int], Encoder], *,
                     clip_len: int | None, encoder_config: Mapping[str, Any], pretrained: bool,
                     method: str | None = None,
                     protocols: Sequence[str] = ("knn", "linear", "linear_std", "finetune", "semi"),
                     classifier_files: Mapping[str, str] | None = None,
                     feature: str = "output") -> dict[str, Any]:
    """Run the protocols on encoders from ``make_encoder(seed)``; returns the method's results.

    For a pretrained encoder the full-label end-to-end protocol is ``finetune``; for a random
    initialisation it is ``supervised`` (the same loop, the reference every SSL number is read
    against). Model selection uses the validation split, never the test split. ``feature``
    (:data:`FEATURES`) picks the representation every protocol reads; the results name it
    under ``"feature"``.

    The trained linear and end-to-end classifiers are saved in ``exp.out / name`` under the
    file names of ``classifier_files`` (protocol -> file name; defaults: ``classifier.pt`` for
    linear, ``classifier_finetune.pt`` / ``classifier_supervised.pt`` for end to end; the
    ``linear_std`` probe is saved only when given a name).
    """
    if feature not in FEATURES:
        raise SsalInputError(None, f"unknown evaluation feature {feature!r}; use one of {', '.join(FEATURES)}")
    files = {"linear": "classifier.pt", "finetune": "classifier_finetune.pt",
             "supervised": "classifier_supervised.pt", **dict(classifier_files or {})}
    s = exp.schedule.evaluation
    train, val, test = exp.train, exp.val, exp.test
    base_make = make_encoder

    out: dict[str, Any] = {}

    def make_encoder(seed: int) -> Encoder | BackboneFeatures:
        enc = base_make(seed)
        view = BackboneFeatures(enc) if feature == "backbone" else enc
        if "feature" not in out:  # named from the first encoder a protocol builds
            out["feature"] = feature_description(encoder_config, view, feature)
        return view

    base = ClassifierSettings(clip_len=clip_len, progress=False, select="val", seed=exp.seed)
    run_dir = exp.out / name
    run_dir.mkdir(parents=True, exist_ok=True)
    # The two linear probes read the same frozen features (same encoder file and seed, same data).
    features: dict[str, np.ndarray] = {}
    if "knn" in protocols:
        out["knn"] = knn_evaluate(make_encoder(exp.seed), train, test, knn_settings(exp.config_overrides, clip_len),
                                  device=exp.device)
    end_to_end = "finetune" if pretrained else "supervised"

    def train_and_report(proto: str, mode: str, epochs: int, lr: float, standardize: bool = False,
                         feature_cache: dict[str, np.ndarray] | None = None) -> None:
        """Train one classifier protocol, score it on test, save it under ``files[proto]``."""
        settings = ClassifierSettings.for_mode(mode, **_run_fields(base), epochs=epochs, lr=lr,
                                               milestones=(int(epochs * 0.8),), standardize=standardize)
        model, hist = train_classifier(make_encoder(exp.seed), None, train, val, settings, device=exp.device,
                                       feature_cache=feature_cache)
        out[proto] = evaluate(model, test)
        out[proto]["best_epoch"] = hist["best_epoch"]
        if files.get(proto):
            save_classifier(run_dir / files[proto], model.encoder, model.head, encoder_config=encoder_config,
                            layout=exp.dataset.layout, classes=exp.dataset.classes,
                            preprocess=exp.dataset.meta.get("preprocess"), clip_len=clip_len, protocol=proto,
                            report=out[proto], method=method)

    if "linear_std" in protocols:
        train_and_report("linear_std", "linear", s.linear_epochs, s.linear_std_lr, standardize=True,
                         feature_cache=features)
    if "linear" in protocols:
        train_and_report("linear", "linear", s.linear_epochs, s.linear_lr, feature_cache=features)
    if "finetune" in protocols:
        train_and_report(end_to_end, end_to_end, s.finetune_epochs, s.finetune_lr)
    if "semi" in protocols and s.fractions:
        counter = {"n": 0}

        def factory() -> Encoder:
            counter["n"] += 1
            return make_encoder(exp.seed + counter["n"])

        sampler = None
        if train.groups is not None:
            # clips of one recording: draw whole recordings (ssal.data.splits, groups=)
            from .data.splits import label_fraction

            lab_groups = [train.groups[i] for i in train.labelled]

            def sampler(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
                return label_fraction(y, fraction, seed, groups=lab_groups)

        out["semi"] = {}
        for fraction in s.fractions:
            epochs = semi_epochs(s, fraction, len(train.labelled), train.num_classes)
            run = ClassifierSettings.for_mode(end_to_end, **_run_fields(base), epochs=epochs, lr=s.finetune_lr,
                                              milestones=(max(1, int(epochs * 0.8)),))
            out["semi"].update(semi_supervised(factory, train, val, test,
                                               SemiSettings(fractions=(fraction,), seeds=tuple(s.seeds),
                                                            classifier=run),
                                               sampler=sampler, device=exp.device))
    return out


def _run_fields(settings: ClassifierSettings) -> dict[str, Any]:
    """The non-schedule fields of ``settings`` (seed, selection, clip length, ...)."""
    return {k: getattr(settings, k) for k in ("seed", "select", "clip_len", "eval_batch_size", "progress")}


def semi_epochs(s: EvalSchedule | Schedule, fraction: float, n_labelled: int, num_classes: int,
                batch_size: int = 64) -> int:
    """Epochs of one semi-supervised run: at least ``s.semi_epochs``, and enough for
    ``s.semi_steps`` optimisation steps on the subset, so 1% runs are not starved of updates."""
    if isinstance(s, Schedule):
        s = s.evaluation
    if not s.semi_steps:
        return s.semi_epochs
    n = max(num_classes, int(round(fraction * n_labelled)))
    per_epoch = max(1, -(-n // batch_size))
    return max(s.semi_epochs, -(-s.semi_steps // per_epoch))


def evaluate_pretrained(exp: Experiment, name: str, encoder_path: Path, method: str,
                        protocols: Sequence[str] = ("knn", "linear", "linear_std", "finetune", "semi"),
                        feature: str = "output") -> dict[str, Any]:
    """All protocols on a pretrained encoder file."""
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


def schedule_seeds(exp: Experiment) -> tuple[int, ...]:
    """The pretraining seeds of the experiment's schedule (its own seed if the schedule has none)."""
    return tuple(int(s) for s in (exp.schedule.pretrain.pretrain_seeds or (exp.seed,)))


def seed_run_name(name: str, seed: int, first: int) -> str:
    """Run directory of pretraining seed ``seed``: ``name`` for the first seed, else ``name-seed<k>``."""
    return name if seed == first else f"{name}-seed{seed}"


def pretrain_seeds(exp: Experiment, name: str, method: str,
                   extra: Mapping[str, Any] | None = None) -> list[tuple[int, Path]]:
    """Pretrain ``method`` once per seed of the schedule; ``[(seed, encoder.pt)]``, first seed first."""
    from .config import deep_merge

    seeds = schedule_seeds(exp)
    out = []
    for seed in seeds:
        cfg = deep_merge(dict(extra or {}), {"seed": seed}, strict=False)
        out.append((seed, run_pretraining(exp, seed_run_name(name, seed, seeds[0]), method, cfg)))
    return out


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
                   protocols: Sequence[str] = ("knn", "linear", "linear_std", "finetune", "semi"),
                   feature: str = "output", suffix: str = "") -> dict[str, Any]:
    """Every protocol on the first seed's encoder, :data:`SEED_PROTOCOLS` on the others, merged."""
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


def evaluate_from_scratch(exp: Experiment, arch_method: str, supervised: Sequence[str] = ("finetune", "semi"),
                          random: Sequence[str] = SEED_PROTOCOLS,
                          ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The supervised reference (protocols ``supervised``) and the random-init baselines
    (protocols ``random``, one initialisation per pretraining seed) for one architecture."""
    cfg = method_config(exp, arch_method)
    enc_cfg = cfg["model"]["encoder"]
    clip_len = config_clip_len(cfg)
    arch = enc_cfg["name"]

    def make(seed: int) -> Encoder:
        return _fresh_encoder(enc_cfg, exp, seed).to(exp.device)

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


def pretraining_plots(histories: Mapping[str, list[dict[str, Any]]], folder: Path, loss_title: str,
                      knn: tuple[str, str]) -> dict[str, Path]:
    """Loss and (when monitored) kNN curves of pretraining runs: ``{caption: png}``; ``knn`` is
    (caption, title) of the kNN plot."""
    from .evaluation import plots

    made: dict[str, Path] = {}
    if any(histories.values()):
        made["Pretraining loss"] = plots.plot_curves(histories, "loss", folder / "pretrain_loss.png", title=loss_title)
        if any("knn_val_top1" in r for h in histories.values() for r in h):
            made[knn[0]] = plots.plot_curves(histories, "knn_val_top1", folder / "pretrain_knn.png", title=knn[1])
    return made


def make_plots(exp: Experiment, results: dict[str, Any], pretrained: Mapping[str, Path]) -> dict[str, Path]:
    """Pretraining curves, confusion matrices, the embedding map and the label-fraction curve."""
    from .evaluation import plots

    out = exp.out / "plots"
    out.mkdir(parents=True, exist_ok=True)
    made: dict[str, Path] = {}
    made.update(pretraining_plots({name: read_metrics(exp.out / name) for name in pretrained}, out,
                                  "Pretraining loss (InfoNCE + L_d where used)",
                                  ("kNN accuracy on the validation split during pretraining",
                                   "kNN top-1 (validation) during pretraining")))
    for name, res in results["methods"].items():
        for proto in ("linear", "finetune", "supervised"):
            entry = res.get(proto)
            if entry and "confusion" in entry:
                made[f"Confusion matrix: {name}, {proto} (test)"] = plots.plot_confusion(
                    np.asarray(entry["confusion"]), exp.dataset.classes, out / f"confusion_{name}_{proto}.png",
                    title=f"{name} {proto}: test top-1 {entry['top1'] * 100:.1f}%")
                break
    first = next(iter(pretrained), None)
    if first is not None:
        test = exp.test
        feats = load(pretrained[first]).embed(test)
        made[f"Embedding of the test split ({first} encoder)"] = plots.plot_embedding(
            feats, test.y, test.classes, out / f"embedding_{first}.png",
            title=f"{first} features of the test split (PCA), coloured by emotion")
    semi = {m: r["semi"] for m, r in results["methods"].items() if r.get("semi")}
    if semi:
        made["Accuracy against label fraction"] = plots.plot_fraction_curve(semi, out / "label_fraction.png")
    return made


def machine_description(device: str) -> str:
    """A one-line description of the hardware the run used."""
    import os

    cpu = platform.processor() or platform.machine()
    text = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores ({cpu}), torch {torch.__version__}, " \
           f"{torch.get_num_threads()} threads, device {device}"
    if device.startswith("cuda") and torch.cuda.is_available():
        text += f" ({torch.cuda.get_device_name()})"
    return text


def run_protocols(exp: Experiment, methods: Sequence[str], command: str,
                  references: bool = True) -> dict[str, Any]:
    """Pretrain and evaluate ``methods`` plus the from-scratch references; write the report."""
    t0 = time.perf_counter()
    results: dict[str, Any] = {"methods": {}, "dataset": describe(exp), "schedule": exp.schedule.to_dict(),
                               "notes": []}
    seed_runs = {m: pretrain_seeds(exp, m, m) for m in methods}
    pretrained = {m: runs[0][1] for m, runs in seed_runs.items()}
    for m, runs in seed_runs.items():
        results["methods"][m] = evaluate_seeds(exp, m, m, runs)
        if encoder_name(m) == "cffn":
            # SSAL is evaluated on the fused vector (the paper's); its branch maps pooled are
            # reported beside it, as the baselines' ST-GCN is read on its pooled maps.
            results["methods"][f"{m} (branch maps)"] = evaluate_seeds(
                exp, m, m, runs, protocols=SEED_PROTOCOLS, feature="backbone", suffix="/backbone")
    if references:
        for arch_method in dict.fromkeys(("ssal" if encoder_name(m) == "cffn" else "skeletonclr") for m in methods):
            sup, rnd = evaluate_from_scratch(exp, arch_method)
            arch = encoder_name(arch_method)
            results["methods"][f"supervised-{arch}"] = sup
            results["methods"][f"random-{arch}"] = rnd
    results["seconds"] = round(time.perf_counter() - t0, 1)
    results["notes"].extend(compare(results))
    plots = make_plots(exp, results, pretrained)
    dev = exp.device if exp.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    write_report(exp.out, results, plots, command=command, machine=machine_description(dev))
    return results


def entry_top1(entry: Any) -> float | None:
    """Top-1 of a single-run entry or the mean of a summary over seeds; None if absent."""
    if not isinstance(entry, Mapping):
        return None
    value = entry.get("top1", entry.get("mean"))
    return None if value is None else float(value)


def format_entry(entry: Mapping[str, Any]) -> str:
    """``"61.0%"`` for a single run, ``"61.0 ± 2.1%"`` for a summary over runs."""
    if "top1" in entry:
        return f"{entry['top1'] * 100:.1f}%"
    return f"{entry['mean'] * 100:.1f} ± {(entry.get('std') or 0) * 100:.1f}%"


def _run_top1(entry: Mapping[str, Any]) -> list[float]:
    """Top-1 of each run of an entry (seeds or label subsets, in order); one value for a single run."""
    runs = entry.get("runs")
    if isinstance(runs, list):
        return [float(r.get("report", r)["top1"]) for r in runs]
    return [float(entry["top1"])] if "top1" in entry else []


def _seed_verdict(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[str, str]:
    """``(word, detail)``: ``beats`` / ``ties with`` / ``loses to`` from the 95% t-interval of the
    paired difference over runs (run i against run i: the same seed or label subset), and the
    interval; ``("vs", "one run each, no interval, so no verdict")`` without pairs."""
    from .evaluation.uncertainty import seed_difference, verdict

    ra, rb = _run_top1(a), _run_top1(b)
    d = seed_difference(ra, rb) if len(ra) == len(rb) else None
    if d is None:
        return "vs", "one run each, no interval, so no verdict"
    word = {"beats": "beats", "ties": "ties with", "loses": "loses to"}[verdict(d)]
    return word, f"paired difference {d.mean * 100:+.1f} [{d.lo * 100:+.1f}, {d.hi * 100:+.1f}] points over {d.n} runs"


def compare(results: Mapping[str, Any]) -> list[str]:
    """Plain-language checks of the claims the demo is meant to show."""
    notes = []
    methods = results["methods"]
    for arch in ("cffn", "stgcn"):
        entry = methods.get(f"random-{arch}", {}).get("linear", {})
        runs = [r.get("report", r) for r in entry.get("runs", [entry])]
        one_class = [r for r in runs if r.get("per_class") and sum(v > 0 for v in r["per_class"].values()) <= 1]
        if one_class:
            notes.append(f"random-{arch}: the linear probe predicts one class ({len(one_class)} of {len(runs)} "
                         "initialisations). An untrained encoder in eval mode "
                         "(BatchNorm at its initial statistics) gives features that barely vary between sequences, "
                         "too little for SGD at lr 3.0 on raw features; the probe on standardised features "
                         "(linear_std) is the stronger random reference.")
    for m in SSL_METHODS:
        if m not in methods:
            continue
        arch = encoder_name(m)
        for proto, label in (("knn", "kNN"), ("linear", "linear"),
                             ("linear_std", "linear on standardised features")):
            rnd_entry = methods.get(f"random-{arch}", {}).get(proto)
            lin_entry = methods[m].get(proto)
            if entry_top1(rnd_entry) is not None and entry_top1(lin_entry) is not None:
                word, detail = _seed_verdict(lin_entry, rnd_entry)
                notes.append(f"{m}: {label} {format_entry(lin_entry)} {word} a random {arch} encoder "
                             f"({format_entry(rnd_entry)}): {detail}.")
        sup = methods.get(f"supervised-{arch}", {}).get("semi", {})
        for key, entry in (methods[m].get("semi") or {}).items():
            ref = sup.get(key)
            if ref and entry.get("mean") is not None and ref.get("mean") is not None:
                word, detail = _seed_verdict(entry, ref)
                notes.append(f"{m}: finetune at {float(key) * 100:g}% labels {format_entry(entry)} {word} "
                             f"supervised-from-scratch {format_entry(ref)}: {detail}.")
    return notes


def describe(exp: Experiment) -> dict[str, Any]:
    """Dataset facts for the report."""
    ds = exp.dataset
    return {"source": ds.meta.get("source", "?"), "sequences": len(ds), "frames": ds.num_frames,
            "joints": ds.layout.num_joints, "layout": ds.layout.name, "classes": ds.classes,
            "class_counts": ds.class_counts(),
            "split_sizes": {k: int(len(v)) for k, v in exp.split.items()}}


def check_schedule(out: Path, schedule: Schedule, *, resume: bool) -> None:
    """Record ``schedule`` in ``out / schedule.json``; on resume, refuse a different one.

    A resumed run reuses the finished pretraining stages of the directory, so mixing two
    schedules would silently compare encoders trained for different lengths.
    """
    import json

    from .checkpoint import atomic_write_text

    path = out / "schedule.json"
    current = json.loads(json.dumps(schedule.to_dict()))
    if resume and path.is_file():
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise SsalInputError(path, f"unreadable schedule record ({exc})") from None
        pretrain = json.loads(json.dumps(asdict(schedule.pretrain)))
        changed = sorted(k for k, v in pretrain.items() if saved.get(k) != v)
        if changed:
            raise SsalInputError(out, f"was started with the {saved.get('name', '?')!r} schedule; resuming with "
                                      f"{schedule.name!r} would change {', '.join(changed)}: use the same flags "
                                      f"or a new --out")
        # Evaluation settings (epochs of the probes, fractions, seeds) may change on resume.
    atomic_write_text(path, json.dumps(current, indent=2))


def prepare_experiment(out: str | Path, *, schedule: Schedule, data: Any = "builtin", labels: str | None = None,
                       label_map: str | None = None,
                       resume: bool = False, overwrite: bool = False, device: str = "cpu", progress: bool = True,
                       seed: int = 0, log: Callable[[str], None] = print,
                       config_overrides: Mapping[str, Any] | None = None) -> Experiment:
    """Load the data, make (or reload) the split and set up the run directory.

    ``data`` is a ``data`` section (:class:`~ssal.config.DataConfig` or a mapping: source and
    reading settings) or, with ``labels`` and ``label_map``, the source alone. The split keeps
    the dataset's groups (``data.group_by``) on one side.
    """
    from .config import deep_merge
    from .data.configured import data_section

    out = Path(out)
    if resume and not (out / "split.json").is_file():
        raise SsalInputError(out, "nothing to resume: no split.json in this directory")
    if not resume:
        prepare_run_dir(out, resume=False, overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    given = ({"source": data, "labels": labels, "label_map": label_map} if isinstance(data, (str, Path))
             else asdict(data) if not isinstance(data, Mapping) else dict(data))
    overrides = dict(config_overrides or {})
    section = data_section(deep_merge(given, overrides.get("data") or {}, strict=False))
    if section.source == "builtin":
        section = replace(section, builtin_n=schedule.pretrain.corpus_size)
    dataset = load_configured_dataset(section)
    if len(dataset.labelled) < len(dataset.classes) * 3:
        raise SsalInputError(section.source, "too few labelled sequences to evaluate (need at least 3 per class)")
    check_schedule(out, schedule, resume=resume)
    overrides["data"] = asdict(section)
    split_path = out / "split.json"
    if split_path.is_file() and resume:
        split = load_split(split_path)
    else:
        split = stratified_split(dataset.y, val=section.val_fraction, test=section.test_fraction, seed=seed,
                                 groups=dataset.groups)
        save_split(split, split_path)
    split = {k: np.asarray(v, dtype=np.int64) for k, v in split.items()}
    return Experiment(dataset=dataset, split=split, schedule=schedule, out=out, device=device, progress=progress,
                      seed=seed, log=log, config_overrides=overrides)


def run_demo(out: str | Path = "runs/demo", schedule: str | Schedule = "default", *,
             methods: Sequence[str] = SSL_METHODS, resume: bool = False, overwrite: bool = False,
             device: str = "cpu", progress: bool = True, command: str = "ssal demo",
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """The main job: pretrain SSAL, AimCLR and SkeletonCLR on the built-in corpus and compare."""
    sched = SCHEDULES[schedule] if isinstance(schedule, str) else schedule
    exp = prepare_experiment(out, schedule=sched, resume=resume, overwrite=overwrite, device=device,
                             progress=progress, log=log)
    return run_protocols(exp, methods, command)


def run_kfold(data: Any, out: str | Path, *, folds: int, schedule: Schedule, methods: Sequence[str],
              labels: str | None = None, label_map: str | None = None, device: str = "cpu",
              progress: bool = True, resume: bool = False,
              overwrite: bool = False, command: str = "ssal reproduce",
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """k-fold cross-validation of the linear and finetune protocols on user data.

    Each fold's test part is the fold; its validation part is a stratified ``data.val_fraction``
    (a tenth by default) of the rest.
    Fold results are summarised as mean +- std in ``kfold.json`` beside the main report.
    """
    base = prepare_experiment(out, schedule=schedule, data=data, labels=labels, label_map=label_map, resume=resume,
                              overwrite=overwrite, device=device, progress=progress, log=log)
    ds = base.dataset
    labelled = ds.labelled
    per_method: dict[str, list[dict[str, Any]]] = {}
    groups = np.asarray(ds.groups) if ds.groups is not None else None
    folds_of = kfold(ds.y[labelled], k=folds, seed=base.seed, groups=None if groups is None else groups[labelled])
    for f, (tr, te) in enumerate(folds_of):
        tr, te = labelled[tr], labelled[te]
        inner = stratified_split(ds.y[tr], val=split_fractions(base.config_overrides)[0], test=0.0,
                                 seed=base.seed + f, groups=None if groups is None else groups[tr])
        split = {"train": tr[inner["train"]], "val": tr[inner["val"]], "test": te}
        exp = replace(base, split=split, out=base.out / f"fold{f}")
        exp.out.mkdir(parents=True, exist_ok=True)
        # Pretraining gets this split, so it never sees the fold's test sequences.
        for m in methods:
            path = run_pretraining(exp, m, m)
            res = evaluate_pretrained(exp, m, path, m, protocols=("linear", "finetune"))
            per_method.setdefault(m, []).append(res)
    summary = {m: {p: summarize_runs([r[p] for r in runs]) for p in ("linear", "finetune")}
               for m, runs in per_method.items()}
    from .checkpoint import atomic_write_text
    import json

    atomic_write_text(base.out / "kfold.json", json.dumps(summary, indent=2, default=float))
    return summary


def ablation_variants() -> dict[str, dict[str, Any]]:
    """SSAL with each component switched off alone (config overrides of the ``ssal`` preset)."""
    return {
        "ssal (full)": {},
        "w/o upper-body jitter": {"model": {"augment": {"strong": {"jitter": False}}}},
        "w/o spatial mask": {"model": {"augment": {"strong": {"spatial_mask": False}}}},
        "w/o temporal mask": {"model": {"augment": {"strong": {"temporal_mask": False}}}},
        "w/o graph branch": {"model": {"encoder": {"use_graph": False}}},
        "w/o image branch": {"model": {"encoder": {"use_image": False}}},
        "w/o SimAM drop": {"model": {"use_drop": False}},
        "w/o L_d": {"model": {"use_ld": False}},
    }


def run_ablation(out: str | Path, schedule: Schedule, *, data: Any = "builtin", labels: str | None = None,
                 label_map: str | None = None,
                 variants: Sequence[str] | None = None, device: str = "cpu", progress: bool = True,
                 resume: bool = False, overwrite: bool = False, command: str = "ssal ablate",
                 log: Callable[[str], None] = print) -> dict[str, Any]:
    """Pretrain each SSAL ablation variant and compare kNN and linear accuracy."""
    exp = prepare_experiment(out, schedule=schedule, data=data, labels=labels, label_map=label_map, resume=resume,
                             overwrite=overwrite, device=device, progress=progress, log=log)
    table = ablation_variants()
    chosen = list(variants) if variants else list(table)
    unknown = [v for v in chosen if v not in table]
    if unknown:
        raise SsalInputError(None, f"unknown ablation variant(s) {unknown}; known: {list(table)}")
    t0 = time.perf_counter()
    results: dict[str, Any] = {"methods": {}, "dataset": describe(exp), "schedule": schedule.to_dict(), "notes": []}
    runs: dict[str, Path] = {}
    for i, name in enumerate(chosen):
        slug = f"variant{i}"
        seed_runs = pretrain_seeds(exp, slug, "ssal", copy.deepcopy(table[name]))
        runs[slug] = seed_runs[0][1]
        results["methods"][name] = evaluate_seeds(exp, slug, "ssal", seed_runs, protocols=SEED_PROTOCOLS)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    write_report(exp.out, results, {}, command=command, machine=machine_description(device))
    return results


__all__ = [
    "SCHEDULES", "Schedule", "PretrainSchedule", "EvalSchedule", "run_demo", "run_protocols", "run_kfold", "run_ablation", "ablation_variants",
    "prepare_experiment", "format_table",
]
