"""Supervised training of a classifier on top of an encoder: linear, finetune, supervised.

Three protocols share one loop (SPEC section 3):

* ``linear``: the encoder is frozen *in eval mode* (BatchNorm statistics frozen, every
  parameter ``requires_grad=False``) and only the head is trained. Because the encoder is
  frozen and no augmentation is used, features are computed once and the head is trained on
  them, which gives the same result as running the encoder each step, much faster.
* ``finetune``: encoder and head trained end to end, starting from pretrained weights.
* ``supervised``: the same as ``finetune``; the caller passes a freshly initialised encoder.
  It is the reference for every self-supervised number.

Model selection uses the validation split (``select="val"``: best validation top-1, ties
broken by the lower validation loss, the earliest epoch winning remaining ties) or takes the
last epoch (``select="last"``); the test set is never seen here. The selected state is kept in
memory (a deep copy of the state dict) and loaded into the returned model.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..config.schema import FinetuneProbeConfig, LinearProbeConfig
from ..data.dataset import GaitDataset
from ..errors import SsalInputError
from ..models.base import iter_batches, resize_time
from .features import SequenceData, as_array, extract_features
from .metrics import accuracy, classification_report

Mode = Literal["linear", "finetune", "supervised"]
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


_L, _F = LinearProbeConfig(), FinetuneProbeConfig()  # the defaults (schema: eval.linear, eval.finetune)


@dataclass(frozen=True)
class LinearConfig:
    """Linear-evaluation schedule (AimCLR's): SGD lr 3.0, no weight decay, 100 epochs,
    learning rate x0.1 at epoch 80 (``eval.linear`` of the configuration)."""

    epochs: int = _L.epochs
    lr: float = _L.lr
    weight_decay: float = _L.weight_decay
    momentum: float = _L.momentum
    milestones: tuple[int, ...] = tuple(_L.milestones)
    gamma: float = _L.gamma
    schedule: str = _L.schedule
    batch_size: int = _L.batch_size


@dataclass(frozen=True)
class FinetuneConfig:
    """Finetune / supervised schedule (``eval.finetune`` of the configuration; SPEC gives no
    numbers, see :class:`ssal.config.schema.FinetuneProbeConfig`)."""

    epochs: int = _F.epochs
    lr: float = _F.lr
    weight_decay: float = _F.weight_decay
    momentum: float = _F.momentum
    milestones: tuple[int, ...] = tuple(_F.milestones)
    gamma: float = _F.gamma
    schedule: str = _F.schedule
    batch_size: int = _F.batch_size


def default_config(mode: Mode) -> LinearConfig | FinetuneConfig:
    """The default schedule of a protocol."""
    if mode == "linear":
        return LinearConfig()
    if mode in ("finetune", "supervised"):
        return FinetuneConfig()
    raise SsalInputError("mode", f"unknown evaluation mode {mode!r}; use linear, finetune or supervised")


def make_head(in_dim: int, num_classes: int) -> nn.Module:
    """A fresh linear classification head (``ssal.models.heads.LinearClassifier`` if present)."""
    try:
        from ..models.heads import LinearClassifier
    except ImportError:
        return nn.Linear(in_dim, num_classes)
    return LinearClassifier(in_dim, num_classes)


class Classifier(nn.Module):
    """An encoder followed by a classification head.

    Args:
        encoder: maps ``(N, 3, T, V)`` to ``(N, D)``.
        head: maps ``(N, D)`` to ``(N, num_classes)`` logits.
        clip_len: if set, sequences are resampled to this many frames before the encoder.
        freeze_encoder: keep the encoder in eval mode even when the classifier is in train mode
            (the linear protocol).
    """

    #: ``(mean, std)`` of the training features while a standardised linear head trains.
    feature_stats: tuple[torch.Tensor, torch.Tensor]

    def __init__(
        self,
        encoder: nn.Module,
        head: nn.Module,
        clip_len: int | None = None,
        freeze_encoder: bool = False,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.clip_len = clip_len
        self.freeze_encoder = freeze_encoder

    def train(self, mode: bool = True) -> Classifier:
        super().train(mode)
        if self.freeze_encoder:
            self.encoder.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` for sequences ``(N, 3, T, V)``."""
        return self.head(self.encoder(resize_time(x, self.clip_len)))

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(N, num_classes)`` (softmax), computed in eval mode without
        gradients; the module's train/eval mode is restored afterwards."""
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                return F.softmax(self(x), dim=1)
        finally:
            self.train(was_training)


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def predict(
    model: Classifier,
    data: SequenceData,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted classes ``(N,)`` and probabilities ``(N, num_classes)`` for every sequence."""
    x = as_array(data)
    device = device if device is not None else _device_of(model)
    model.to(device)
    probs = [model.predict_proba(xb) for xb in iter_batches(x, batch_size, device)]
    if not probs:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    p = torch.cat(probs).cpu().numpy()
    return p.argmax(axis=1).astype(np.int64), p


def evaluate(
    model: Classifier,
    ds: GaitDataset,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> dict[str, Any]:
    """A :func:`~ssal.evaluation.metrics.classification_report` of ``model`` on the labelled
    sequences of ``ds``."""
    idx = ds.labelled
    if len(idx) == 0:
        raise SsalInputError(ds.meta.get("source"), "no labelled sequences to evaluate on")
    x = ds.x if len(idx) == len(ds) else ds.x[idx]
    pred, _ = predict(model, x, batch_size, device)
    return classification_report(ds.y[idx], pred, ds.classes)


# --------------------------------------------------------------------------------------
# Training machinery
# --------------------------------------------------------------------------------------


def _batch_slices(n: int, batch_size: int) -> list[slice]:
    """Batches covering ``range(n)``; a last batch of one sample joins the previous batch (a
    single sample would break BatchNorm in train mode)."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    ends = starts[1:] + [n]
    return [slice(a, b) for a, b in zip(starts, ends)]


def _make_optimizer(
    params: Sequence[nn.Parameter],
    lr: float,
    momentum: float,
    weight_decay: float,
    schedule: str,
    milestones: Sequence[int],
    gamma: float,
    epochs: int,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if schedule == "step":
        sched: torch.optim.lr_scheduler.LRScheduler = torch.optim.lr_scheduler.MultiStepLR(
            opt, milestones=list(milestones), gamma=gamma
        )
    elif schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    else:
        raise SsalInputError("schedule", f"unknown schedule {schedule!r}; use step or cosine")
    return opt, sched


class _Selector:
    """Keeps a deep copy of the best state seen so far (or simply the last one)."""

    def __init__(self, select: str) -> None:
        self.select = select
        self.best_key: tuple[float, float] | None = None
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None

    def update(self, epoch: int, module: nn.Module, val_acc: float | None, val_loss: float | None) -> None:
        if self.select == "last":
            self.best_epoch = epoch
            return
        key = (float(val_acc), -float(val_loss))  # type: ignore[arg-type]
        if self.best_key is None or key > self.best_key:
            self.best_key, self.best_epoch = key, epoch
            self.best_state = copy.deepcopy(module.state_dict())

    def restore(self, module: nn.Module) -> None:
        if self.best_state is not None:
            module.load_state_dict(self.best_state)


def _labelled(ds: GaitDataset, what: str) -> np.ndarray:
    idx = ds.labelled
    if len(idx) == 0:
        raise SsalInputError(ds.meta.get("source"), f"no labelled sequences in the {what} set")
    return idx


def _step(
    model: nn.Module, opt: torch.optim.Optimizer, xb: torch.Tensor, yb: torch.Tensor
) -> tuple[float, int]:
    logits = model(xb)
    loss = F.cross_entropy(logits, yb)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach()) * len(yb), int((logits.argmax(1) == yb).sum())


def _val_metrics(logits: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    loss = float(F.cross_entropy(logits, y))
    return accuracy(y.cpu().numpy(), logits.argmax(1).cpu().numpy()), loss


def protocol_schedule(mode: Mode, **overrides: Any) -> LinearConfig | FinetuneConfig:
    """The protocol's default schedule with every non-``None`` override applied."""
    cfg = default_config(mode)
    try:
        return replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    except TypeError as exc:
        raise SsalInputError("schedule", str(exc)) from None


Fetch = Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor]]
Validate = Callable[[], tuple[float, float]]


def _rows_tensor(rows: np.ndarray, device: torch.device | str) -> torch.Tensor:
    return torch.as_tensor(rows, device=device)


def _feature_data(
    model: Classifier,
    train_ds: GaitDataset,
    val_ds: GaitDataset | None,
    device: torch.device | str,
    batch_size: int,
    progress: bool,
    standardize: bool = False,
    cache: dict[str, np.ndarray] | None = None,
) -> tuple[Fetch, Validate | None]:
    """Batches of precomputed features (linear protocol: frozen encoder, no augmentation),
    optionally standardised with the training statistics (kept in ``model.feature_stats``).
    ``cache`` (``"train"`` / ``"val"`` -> features) is read if filled and filled if empty."""

    def encode(ds: GaitDataset, key: str) -> tuple[torch.Tensor, torch.Tensor]:
        idx = ds.labelled
        if cache is not None and key in cache:
            f = cache[key]
        else:
            x = ds.x if len(idx) == len(ds) else ds.x[idx]
            f = extract_features(model.encoder, x, batch_size, device, model.clip_len, progress)
            if cache is not None:
                cache[key] = f
        return torch.from_numpy(f).to(device), torch.as_tensor(ds.y[idx], device=device)

    x_train, y_train = encode(train_ds, "train")
    if standardize:
        # The affine map is folded into the linear head afterwards (fold_standardisation).
        mean, std = feature_statistics(x_train)
        x_train = (x_train - mean) / std
        model.feature_stats = (mean, std)

    def fetch(rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        r = _rows_tensor(rows, device)
        return x_train[r], y_train[r]

    if val_ds is None:
        return fetch, None
    x_val, y_val = encode(val_ds, "val")
    if standardize:
        x_val = (x_val - mean) / std

    def validate() -> tuple[float, float]:
        model.head.eval()
        with torch.inference_mode():
            return _val_metrics(model.head(x_val), y_val)

    return fetch, validate


def feature_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and standard deviation (floored at 1e-6) of ``(N, D)`` features."""
    mean = features.mean(dim=0)
    std = features.std(dim=0, unbiased=False).clamp_min(1e-6) if len(features) > 1 else torch.ones_like(mean)
    return mean, std


def fold_standardisation(head: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
    """Rewrite a linear head trained on ``(f - mean) / std`` so that it takes raw ``f``.

    ``W ((f - m) / s) + b = (W / s) f + (b - W (m / s))``.
    """
    fc = head if isinstance(head, nn.Linear) else getattr(head, "fc", None)
    if not isinstance(fc, nn.Linear):
        raise TypeError("the linear protocol needs a head that is (or holds as .fc) an nn.Linear")
    with torch.no_grad():
        w = fc.weight / std
        fc.bias.sub_(fc.weight @ (mean / std))
        fc.weight.copy_(w)


def _sequence_data(
    model: Classifier,
    train_ds: GaitDataset,
    val_ds: GaitDataset | None,
    device: torch.device | str,
    batch_size: int,
    augment: Augment | None,
    generator: torch.Generator,
) -> tuple[Fetch, Validate | None]:
    """Batches of (optionally augmented) sequences (finetune / supervised protocols)."""
    train_idx = train_ds.labelled
    y_train = torch.as_tensor(train_ds.y[train_idx], device=device)

    def fetch(rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = np.ascontiguousarray(train_ds.x[train_idx[rows]], dtype=np.float32)
        xb = torch.from_numpy(x).to(device)
        if augment is not None:
            xb = augment(xb, generator)
        return xb, y_train[_rows_tensor(rows, device)]

    if val_ds is None:
        return fetch, None
    val_idx = val_ds.labelled
    x_val = val_ds.x if len(val_idx) == len(val_ds) else val_ds.x[val_idx]
    y_val = torch.as_tensor(val_ds.y[val_idx], device=device)

    def validate() -> tuple[float, float]:
        model.eval()
        with torch.inference_mode():
            logits = torch.cat([model(xb) for xb in iter_batches(x_val, batch_size, device)])
            return _val_metrics(logits, y_val)

    return fetch, validate


def _train_epoch(
    model: Classifier,
    fit_module: nn.Module,
    opt: torch.optim.Optimizer,
    fetch: Fetch,
    perm: np.ndarray,
    batch_size: int,
) -> tuple[float, float]:
    """One pass over the shuffled training rows; returns mean loss and training top-1."""
    model.train()
    total_loss, correct = 0.0, 0
    for sl in _batch_slices(len(perm), batch_size):
        xb, yb = fetch(np.sort(perm[sl]))
        loss_sum, n_ok = _step(fit_module, opt, xb, yb)
        total_loss += loss_sum
        correct += n_ok
    return total_loss / len(perm), correct / len(perm)


@dataclass(frozen=True)
class ClassifierSettings:
    """Every setting of one classifier-training run (the protocol and its schedule).

    Build it with :meth:`for_mode`, which fills the schedule from the protocol's defaults
    (:class:`LinearConfig` for ``linear``, :class:`FinetuneConfig` for ``finetune`` and
    ``supervised``); the field defaults here are the linear protocol's.

    Attributes:
        mode: ``"linear"``, ``"finetune"`` or ``"supervised"``.
        epochs, lr, weight_decay, momentum, milestones, gamma, schedule, batch_size: the SGD
            schedule (``schedule``: ``"step"`` at ``milestones`` by ``gamma``, or ``"cosine"``).
        seed: seeds the global torch RNG (dropout), the shuffling and the augmentation.
        select: ``"val"`` (best validation epoch) or ``"last"``.
        clip_len: if set, sequences are resampled to this many frames before the encoder.
        eval_batch_size: batch size of feature extraction and validation.
        progress: show a progress bar.
        standardize: linear only; train on standardised features, folded into the head.
        val_every: score the validation split every this many epochs and after the last
            (``select="val"`` keeps the best of those epochs).
    """

    mode: Mode = "linear"
    epochs: int = LinearConfig.epochs
    lr: float = LinearConfig.lr
    weight_decay: float = LinearConfig.weight_decay
    momentum: float = LinearConfig.momentum
    milestones: tuple[int, ...] = LinearConfig.milestones
    gamma: float = LinearConfig.gamma
    schedule: str = LinearConfig.schedule
    batch_size: int = LinearConfig.batch_size
    seed: int = 0
    select: Literal["val", "last"] = "val"
    clip_len: int | None = None
    eval_batch_size: int = 256
    progress: bool = False
    standardize: bool = False
    val_every: int = 1

    @classmethod
    def for_mode(cls, mode: Mode, **changes: Any) -> ClassifierSettings:
        """The protocol's default schedule for ``mode`` with every non-``None`` change applied."""
        base = asdict(default_config(mode))
        return cls(mode=mode, **base).replace(**changes)

    def replace(self, **changes: Any) -> ClassifierSettings:
        """A copy with every non-``None`` change applied (unknown names: :class:`SsalInputError`)."""
        values = {k: v for k, v in changes.items() if v is not None}
        if "milestones" in values:
            values["milestones"] = tuple(int(m) for m in values["milestones"])
        try:
            return replace(self, **values)
        except TypeError as exc:
            raise SsalInputError("schedule", str(exc)) from None

    def schedule_config(self) -> LinearConfig | FinetuneConfig:
        """The schedule part as the protocol's config class (what ``history["config"]`` records)."""
        cls = LinearConfig if self.mode == "linear" else FinetuneConfig
        return cls(epochs=self.epochs, lr=self.lr, weight_decay=self.weight_decay, momentum=self.momentum,
                   milestones=tuple(self.milestones), gamma=self.gamma, schedule=self.schedule,
                   batch_size=self.batch_size)


def train_classifier(
    encoder: nn.Module,
    head: nn.Module | None,
    train_ds: GaitDataset,
    val_ds: GaitDataset | None = None,
    settings: ClassifierSettings | None = None,
    *,
    device: torch.device | str = "cpu",
    augment: Augment | None = None,
    feature_cache: dict[str, np.ndarray] | None = None,
) -> tuple[Classifier, dict[str, Any]]:
    """Train a classification head (and, except for ``linear``, the encoder) on ``train_ds``.

    ``settings`` (default: ``ClassifierSettings.for_mode("linear")``) holds the protocol, its
    schedule, the seed and the model selection; see :class:`ClassifierSettings`.

    ``settings.standardize`` (linear only): train the head on frozen features standardised with the
    training set's per-dimension mean and std, then fold that affine map into the head, so the
    saved classifier still takes raw features. Off by default: the linear protocol of SPEC
    (AimCLR's) trains on the raw features with lr 3.0. On, one learning rate (about 0.3) suits
    every encoder whatever its feature scale, which also rescues the near-constant features
    of a randomly initialised encoder in eval mode: the stronger reference for that baseline.

    ``feature_cache`` (linear only): a dict shared by several linear runs on the *same* frozen
    encoder, training and validation sets; their features are extracted by the first run and
    reused by the others (the caller vouches that encoder and data are the same).

    ``augment(x, generator)`` transforms each training batch (finetune / supervised only).
    ``head=None`` creates :func:`make_head`. The global torch RNG is seeded with
    ``settings.seed`` (dropout); shuffling and augmentation use their own seeded generators.
    Only labelled sequences are used.

    Returns:
        ``(model, history)``: the :class:`Classifier` holding the selected state, and
        ``{"mode", "select", "best_epoch", "best_val_top1", "config", "epochs": [{"epoch",
        "lr", "loss", "train_top1", "val_top1", "val_loss"}, ...]}`` (1-based epochs; val
        entries are ``None`` without a validation set).
    """
    st = settings if settings is not None else ClassifierSettings.for_mode("linear")
    default_config(st.mode)  # an unknown mode is an input error
    cfg = st.schedule_config()
    mode, seed, select, standardize = st.mode, st.seed, st.select, st.standardize
    clip_len, eval_batch_size, progress = st.clip_len, st.eval_batch_size, st.progress
    if select not in ("val", "last"):
        raise SsalInputError("select", f"unknown model selection {select!r}; use val or last")
    has_val = val_ds is not None and len(val_ds.labelled) > 0
    if select == "val" and not has_val:
        raise SsalInputError(
            "select", "model selection on validation needs a labelled validation set; use select='last'"
        )
    if standardize and mode != "linear":
        raise SsalInputError("standardize", "feature standardisation applies to the linear protocol only")
    if mode == "linear" and augment is not None:
        raise SsalInputError("augment", "the linear protocol uses no augmentation")
    if st.val_every < 1:
        raise SsalInputError("val_every", f"must be a positive number of epochs (got {st.val_every})")
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise SsalInputError(
            "schedule", f"epochs and batch_size must be positive (got {cfg.epochs}, {cfg.batch_size})"
        )
    n_train = len(_labelled(train_ds, "training"))

    torch.manual_seed(seed)
    if head is None:
        # getattr: typed access on an nn.Module would be Tensor | Module
        head = make_head(int(getattr(encoder, "out_dim")), train_ds.num_classes)  # noqa: B009
    linear = mode == "linear"
    model = Classifier(encoder, head, clip_len=clip_len, freeze_encoder=linear).to(device)
    encoder.requires_grad_(not linear)
    head.requires_grad_(True)
    fit_module: nn.Module = head if linear else model
    val = val_ds if has_val else None
    if linear:
        fetch, validate = _feature_data(model, train_ds, val, device, eval_batch_size, progress, standardize,
                                        feature_cache)
    else:
        gen = torch.Generator(device=device).manual_seed(seed)
        fetch, validate = _sequence_data(model, train_ds, val, device, eval_batch_size, augment, gen)

    opt, sched = _make_optimizer(
        list(fit_module.parameters()), cfg.lr, cfg.momentum, cfg.weight_decay, cfg.schedule,
        cfg.milestones, cfg.gamma, cfg.epochs,
    )
    rng = np.random.default_rng(seed)
    selector = _Selector(select)
    history: list[dict[str, Any]] = []
    for epoch in tqdm(range(1, cfg.epochs + 1), desc=mode, disable=not progress, leave=False):
        current_lr = opt.param_groups[0]["lr"]
        perm = rng.permutation(n_train)
        loss, train_acc = _train_epoch(model, fit_module, opt, fetch, perm, cfg.batch_size)
        sched.step()
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"{mode} training diverged at epoch {epoch} (loss {loss}); lower the learning rate"
            )
        scored = validate is not None and (epoch % st.val_every == 0 or epoch == cfg.epochs)
        val_acc, val_loss = validate() if scored and validate is not None else (None, None)
        history.append({"epoch": epoch, "lr": current_lr, "loss": loss, "train_top1": train_acc,
                        "val_top1": val_acc, "val_loss": val_loss})
        if scored or validate is None:
            selector.update(epoch, fit_module, val_acc, val_loss)

    selector.restore(fit_module)
    if linear and standardize:
        fold_standardisation(model.head, *model.feature_stats)
        del model.feature_stats
    model.eval()
    return model, {
        "mode": mode,
        "select": select,
        "best_epoch": selector.best_epoch,
        "best_val_top1": history[selector.best_epoch - 1]["val_top1"],
        "config": asdict(cfg),
        "epochs": history,
    }
