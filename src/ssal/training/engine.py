"""The pretraining engine: one loop for every method, checkpoints, resume, monitors.

The loop is plain PyTorch and device-agnostic (CPU; CUDA with bf16 autocast when present;
``run.amp: bf16`` turns bf16 autocast on for the CPU too, ``run.compile`` compiles the encoders).
It trains any learner of ``ssal.methods.learner.LEARNERS`` (``model.learner``) through the
contract of :class:`ssal.methods.learner.Learner` alone.
Randomness is derived from ``(seed, epoch)`` at the start of each epoch and the augmentation
generator's state is saved in every checkpoint, so a run stopped anywhere (even mid-epoch, by
SIGINT/SIGTERM) resumes to the same weights as an uninterrupted run.

Run directory (never deleted; a non-empty one needs ``resume`` or ``overwrite``)::

    config.yaml      resolved configuration
    split.json       seeded stratified train/val/test split
    metrics.jsonl    one JSON object per epoch (loss terms, lr, throughput, kNN accuracy)
    checkpoint.pt    last checkpoint (learner state, optimizer, scheduler, RNG, config)
    encoder.pt       final evaluated encoder + config, what evaluation and ``ssal.load`` read
    tensorboard/     with ``run.tensorboard: true``: per-step loss terms, per-epoch lr,
                     throughput and kNN accuracy (``pip install 'ssal[tensorboard]'``)
"""

from __future__ import annotations

import json
import math
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..checkpoint import atomic_write_text, save_checkpoint
from ..config import as_plain, dump_config, merge_typed
from ..config import clip_len as config_clip_len
from ..config.schema import AMP_MODES, Config, ModelConfig
from ..data.canonical import release_pages
from ..data.dataset import GaitDataset
from ..errors import SsalInputError, display_path
from .distributed import DistContext, session
from .monitor import knn_monitor
from .run_files import TENSORBOARD_DIR, check_run_checkpoint, prepare_run_dir, save_encoder

if TYPE_CHECKING:
    from ..methods.learner import Learner


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingInterrupted(RuntimeError):
    """SIGINT or SIGTERM arrived; a checkpoint was saved and the run can be resumed."""


@dataclass
class PretrainResult:
    """What :func:`pretrain` returns."""

    run_dir: Path
    epochs_done: int
    steps_done: int
    history: list[dict[str, Any]] = field(default_factory=list)


#: The device names ``--device`` / ``run.device`` accept (each only where it is present).
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N (N below the number of GPUs) or mps"


def resolve_device(name: Any, where: str = "run.device") -> torch.device:
    """The device a ``--device`` / ``run.device`` value names on this machine.

    ``auto``: CUDA when present, else the CPU. ``cpu``; ``cuda`` and ``cuda:N`` only when CUDA is
    present and ``N < torch.cuda.device_count()``; ``mps`` only when Apple's MPS backend is
    available. Anything else (``meta``, ``xpu``, a typo) and a device this machine lacks is one
    :class:`~ssal.errors.SsalInputError` line naming ``where`` (the flag or the setting).
    """
    text = str(name).strip()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        raise SsalInputError(where, f"unknown device {text[:40]!r}; choose {DEVICE_CHOICES}") from None
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise SsalInputError(where, f"device {text[:40]!r}: this machine has no CUDA GPU; choose {DEVICE_CHOICES}")
        if device.index is not None and device.index >= count:
            raise SsalInputError(where, f"device {text[:40]!r}: this machine has {count} CUDA GPU(s), "
                                        f"cuda:0 to cuda:{count - 1}")
        return device
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise SsalInputError(where, f"device {text[:40]!r}: the MPS backend is not available on this machine")
        if device.index not in (None, 0):
            raise SsalInputError(where, f"device {text[:40]!r}: there is one MPS device, mps or mps:0")
        return device
    raise SsalInputError(where, f"device {text[:40]!r} cannot run ssal; choose {DEVICE_CHOICES}")


def resolve_threads(value: Any, where: str = "run.threads") -> int | None:
    """``run.threads`` checked against this machine: ``None`` (torch's default) or 1 up to
    ``os.cpu_count()``. More threads than the machine has cores only slow a run down (and
    thousands exhaust the thread limits of the process), so they are refused with one line."""
    import os

    if value is None:
        return None
    cores = os.cpu_count() or 1
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SsalInputError(where, f"must be a whole number from 1 to {cores}, got {str(value)[:40]!r}")
    if value > cores:
        raise SsalInputError(where, f"{value} threads is more than the {cores} CPU cores of this machine "
                                    f"(os.cpu_count()); use at most {cores}")
    return int(value)


#: Most bytes of parameters and buffers (every encoder, head and memory bank) a learner may hold.
MAX_LEARNER_BYTES = 2**31


def check_learner_size(model_cfg: ModelConfig | Mapping[str, Any], layout: Any) -> None:
    """Build the learner of ``model_cfg`` on the meta device (no memory) and refuse one whose
    parameters and buffers exceed :data:`MAX_LEARNER_BYTES` (huge widths or memory banks)."""
    from ..methods.learners import build_learner

    try:
        with torch.device("meta"):
            learner = build_learner(model_cfg, layout)
    except SsalInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a setting the builders did not foresee
        raise SsalInputError(None, f"settings 'model': the learner cannot be built ({type(exc).__name__}: "
                                   f"{(str(exc).splitlines() or [''])[0][:200]})") from None
    nbytes = sum(t.numel() * t.element_size() for t in [*learner.parameters(), *learner.buffers()])
    if nbytes > MAX_LEARNER_BYTES:
        raise SsalInputError(None, f"settings 'model': the learner would hold {nbytes} bytes of weights and "
                                   f"buffers, more than the limit of {MAX_LEARNER_BYTES} (ssal.training.engine.MAX_LEARNER_BYTES)")


#: Most bytes of the largest activations of one training step, estimated before a run starts:
#: ``batch x views x`` the largest activation of one sequence at ``clip_len`` frames (float32;
#: views: 2, or 3 with a strong view). The same 1 GiB as the working memory of a read
#: (:data:`ssal.data.preprocess.MAX_BYTES`): a step keeps many activations of that size alive
#: for the backward pass, so a step past it needs tens of GB. SSAL's defaults (batch 128, 50
#: frames, E-Gait-16) estimate 0.16 GiB; 33 joints at 300 frames 0.9 GiB.
MAX_STEP_ACTIVATION_BYTES = 2**30


def check_step_size(settings: Config, layout: Any, num_sequences: int | None = None) -> int:
    """Refuse settings whose pretraining step would need activations beyond
    :data:`MAX_STEP_ACTIVATION_BYTES` (or one sequence beyond what ``ssal.load`` later accepts),
    from a forward pass of the encoder on the meta device (no memory); returns the estimate.

    The batch is ``train.batch_size`` (at most ``num_sequences``, the data's size, when given)."""
    import dataclasses

    from .checkpoint_fields import estimate_encoder

    model = settings.model
    frames = int(model.augment.general.clip_len)
    keys = "settings 'train.batch_size' and 'model.augment.general.clip_len'"
    try:
        _, sample = estimate_encoder(dataclasses.asdict(model.encoder), layout, frames, "settings",
                                     field="model.encoder")
    except SsalInputError as exc:
        problem = exc.problem.removeprefix("field 'model.encoder': ")
        raise SsalInputError(None, f"settings 'model.augment.general.clip_len' ({frames}) and 'model.encoder': "
                                   f"{problem}") from None
    batch = int(settings.train.batch_size)
    if num_sequences is not None:
        batch = max(1, min(batch, int(num_sequences)))
    views = 2 + (model.augment.strong_kind != "none")
    nbytes = batch * views * int(sample)
    if nbytes > MAX_STEP_ACTIVATION_BYTES:
        raise SsalInputError(None, f"{keys}: a step of {batch} sequences x {views} views x {frames} frames would "
                                   f"need an activation of {nbytes} bytes ({sample} per sequence), more than the "
                                   f"limit of {MAX_STEP_ACTIVATION_BYTES} (ssal.training.engine."
                                   f"MAX_STEP_ACTIVATION_BYTES); lower the batch size or the clip length")
    return nbytes


def epoch_seed(seed: int, epoch: int, stream: int) -> int:
    """A distinct, reproducible seed per (run seed, epoch, random stream)."""
    return (seed * 1_000_003 + epoch * 7_919 + stream * 104_729) % (2**63 - 1)


def lr_factor(epoch: float, milestones: list[int], gamma: float, warmup_epochs: int) -> float:
    """Linear warm-up, then step decay by ``gamma`` at each milestone."""
    factor = gamma ** sum(epoch >= m for m in milestones)
    if warmup_epochs > 0 and epoch < warmup_epochs:
        factor *= (epoch + 1) / (warmup_epochs + 1)
    return factor


def cosine_lr_factor(epoch: float, epochs: int, warmup_epochs: int, min_ratio: float) -> float:
    """``train.schedule: cosine`` as a factor of ``lr``: ``epoch / warmup_epochs`` during the
    warm-up (0 at the first epoch, as PSTL's ``adjust_learning_rate`` and MAE's ``lr_sched``),
    then ``min_ratio + (1 - min_ratio) (1 + cos(pi (epoch - warmup) / (epochs - warmup))) / 2``."""
    if epoch < warmup_epochs:
        return epoch / warmup_epochs
    span = max(epochs - warmup_epochs, 1)
    return min_ratio + (1.0 - min_ratio) * (1.0 + math.cos(math.pi * (epoch - warmup_epochs) / span)) / 2.0


def schedule_factor(train: Mapping[str, Any]) -> Callable[[int], float]:
    """The per-epoch factor of ``train.lr`` that ``train.schedule`` names."""
    warmup = int(train["warmup_epochs"])
    if str(train["schedule"]) == "cosine":
        epochs, ratio = int(train["epochs"]), float(train["min_lr"]) / float(train["lr"])
        return lambda e: cosine_lr_factor(e, epochs, warmup, ratio)
    milestones, gamma = [int(m) for m in train["lr_milestones"]], float(train["lr_gamma"])
    return lambda e: lr_factor(e, milestones, gamma, warmup)


def build_optimizer(params, train: Mapping[str, Any]) -> torch.optim.Optimizer:
    """The optimizer named in ``train`` (``sgd``, ``adamw``, or ``adam``: L2 in the gradient, PSTL's)."""
    name = str(train["optimizer"]).lower()
    if name == "sgd":
        return torch.optim.SGD(params, lr=train["lr"], momentum=train["momentum"],
                               weight_decay=train["weight_decay"], nesterov=bool(train["nesterov"]))
    if name == "adamw":
        return torch.optim.AdamW(params, lr=train["lr"], weight_decay=train["weight_decay"])
    if name == "adam":
        return torch.optim.Adam(params, lr=train["lr"], weight_decay=train["weight_decay"])
    raise SsalInputError(None, f"unknown optimizer {name!r} (choose sgd, adamw or adam)")


@contextmanager
def stop_signals() -> Iterator[dict[str, int | None]]:
    """Turn SIGINT/SIGTERM into a flag checked between steps (main thread only)."""
    flag: dict[str, int | None] = {"signal": None}

    def handler(signum, _frame):  # pragma: no cover - exercised by a subprocess test
        flag["signal"] = signum

    installed = []
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                installed.append((sig, signal.signal(sig, handler)))
            except ValueError:  # not the main thread
                pass
        yield flag
    finally:
        for sig, old in installed:
            signal.signal(sig, old)


def batches(num: int, batch_size: int, generator: torch.Generator, drop_last: bool = True) -> list[np.ndarray]:
    """A seeded permutation of ``range(num)`` cut into sorted index batches."""
    perm = torch.randperm(num, generator=generator).numpy()
    stop = (num // batch_size) * batch_size if drop_last and num >= batch_size else num
    return [np.sort(perm[i:i + batch_size]) for i in range(0, stop, batch_size)]


def load_batch(x: np.ndarray, idx: np.ndarray, device: torch.device) -> torch.Tensor:
    """Rows ``idx`` of ``x`` (an array or a memmap) as a float32 tensor on ``device``."""
    arr = np.asarray(x[idx], dtype=np.float32)
    # A memory-mapped corpus: drop the pages this batch touched, so resident memory stays
    # bounded by one batch however large the corpus (the OS re-reads them when needed).
    release_pages(x)
    tensor = torch.from_numpy(arr)
    if device.type == "cuda":
        tensor = tensor.pin_memory().to(device, non_blocking=True)
    return tensor


def amp_mode(value: Any) -> str:
    """The ``run.amp`` setting as one of :data:`AMP_MODES`."""
    if value is True:
        return "auto"
    if value is False or value is None:
        return "off"
    if value not in AMP_MODES:
        raise SsalInputError(None, f"setting 'run.amp' must be one of {', '.join(AMP_MODES)}, got {value!r}")
    return str(value)


def autocast_factory(device: torch.device, amp: Any):
    """A zero-argument context-manager factory for one training step's forward pass: bf16
    autocast on ``device`` for ``amp == "bf16"`` (and ``"auto"`` on CUDA), else a no-op."""
    mode = amp_mode(amp)
    if mode == "bf16" or (mode == "auto" and device.type == "cuda"):
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext


def compile_encoders(learner: Learner, backend: str = "inductor") -> None:
    """``run.compile``: the learner's ``compile_encoders(backend)`` (its encoders compiled in
    place; module structure and state-dict keys unchanged, so checkpoints of compiled and eager
    runs are interchangeable)."""
    learner.compile_encoders(backend)


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class StopReason(Enum):
    """Why :func:`train_epoch` returned (a diverged loss raises :class:`TrainingDiverged`)."""

    COMPLETED = "completed"  #: every step of the epoch ran
    MAX_STEPS = "max_steps"  #: ``run.max_steps`` was reached (a checkpoint was saved)
    SIGNAL = "signal"  #: SIGINT/SIGTERM on this or another rank (a checkpoint was saved)


@dataclass
class PretrainCallbacks:
    """Optional hooks of :func:`pretrain` (tests and tooling; none changes the training).

    ``on_learner_built(ctx, learner)`` runs once the learner is built, restored and wrapped,
    before the first step; ``on_finished(ctx, learner, result)`` runs on every rank after the
    final encoder was written.
    """

    on_learner_built: Callable[[DistContext, Learner], None] | None = None
    on_finished: Callable[[DistContext, Learner, PretrainResult], None] | None = None


@dataclass
class RunSetup:
    """What :func:`open_run` settles: the run directory, the effective config, data and split."""

    run_dir: Path
    #: The configuration as plain values (what ``config.yaml`` and checkpoints store) ...
    config: dict[str, Any]
    #: ... and typed once, at the door: the sections components receive (``settings.model``).
    settings: Config
    checkpoint: dict[str, Any] | None
    dataset: GaitDataset
    split: dict[str, Any]
    train_idx: np.ndarray

    @property
    def run(self) -> dict[str, Any]:
        return self.config["run"]


@dataclass
class EpochStats:
    """The running totals of the epoch in progress (read by :func:`finish_epoch`)."""

    first_step: int
    num_steps: int
    t0: float
    seen: int = 0
    sums: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainingState:
    """Everything :func:`train_epoch` and :func:`finish_epoch` advance."""

    learner: Learner
    model: torch.nn.Module  # DistributedDataParallel under torchrun, else the learner itself
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    aug_gen: torch.Generator
    aug_state: torch.Tensor | None  # restored augmentation state for a mid-epoch resume
    epochs: int
    batch_size: int  # global
    start_epoch: int = 0
    start_step: int = 0
    global_step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    epoch: EpochStats | None = None


def pretrain(config: Mapping[str, Any], out_dir: str | Path, *, dataset: GaitDataset | None = None,
             split: Mapping[str, Any] | None = None, resume: bool = False,
             overwrite: bool = False, callbacks: PretrainCallbacks | None = None) -> PretrainResult:
    """Self-supervised pretraining of ``config["method"]`` on ``config["data"]``.

    Args:
        config: a resolved configuration (:func:`ssal.config.resolve_config`).
        out_dir: the run directory (see module docstring).
        dataset: an already loaded dataset (else loaded from ``config["data"]``).
        split: the train/val/test index arrays to use (else a seeded stratified split made
            from ``config["data"]``); pretraining sees only the ``train`` part, the kNN monitor
            reads ``val``. Pipelines pass their own split so a test part is never pretrained on.
        resume: continue from ``out_dir/checkpoint.pt`` with its saved configuration.
        overwrite: allow a non-empty ``out_dir`` for a fresh run (files are replaced, not deleted).
        callbacks: optional hooks (:class:`PretrainCallbacks`).

    Raises:
        TrainingDiverged: the loss became NaN/inf (the last good checkpoint is kept).
        TrainingInterrupted: SIGINT/SIGTERM; a checkpoint was written, ``resume`` continues.

    Launched by ``torchrun`` this is one rank of a DDP run (``ssal.training.distributed``,
    docs/distributed.md): ``train.batch_size`` is the global batch, only rank 0 writes files.
    """
    run = config.get("run") or {}
    resolve_threads(run.get("threads"))
    with session(resolve_device(run.get("device", "auto"))) as ctx:
        return _pretrain(ctx, config, out_dir, dataset=dataset, split=split, resume=resume, overwrite=overwrite,
                         callbacks=callbacks or PretrainCallbacks())


def _pretrain(ctx: DistContext, config: Mapping[str, Any], out_dir: str | Path, *,
              dataset: GaitDataset | None, split: Mapping[str, Any] | None, resume: bool,
              overwrite: bool, callbacks: PretrainCallbacks) -> PretrainResult:
    """:func:`pretrain` in one process (rank ``ctx.rank`` of ``ctx.world_size``)."""
    settings = merge_typed(Config, [(config, None)])  # typed once, here; a hand-made dict too
    config = as_plain(settings)
    apply_allocator_policy(config["run"])
    check_tensorboard(config["run"])
    setup = open_run(ctx, config, out_dir, dataset=dataset, split=split, resume=resume, overwrite=overwrite,
                     settings=settings)
    state = build_training(ctx, setup)
    if callbacks.on_learner_built is not None:
        callbacks.on_learner_built(ctx, state.learner)
    if state.start_epoch == 0 and state.start_step == 0:
        save_snapshot(ctx, setup, state, 0)
    with stop_signals() as stop, open_tensorboard(ctx, setup) as writer:
        for epoch in range(state.start_epoch, state.epochs):
            reason = train_epoch(ctx, setup, state, epoch, stop, writer)
            if reason is StopReason.SIGNAL:
                raise TrainingInterrupted(
                    f"stopped by signal {stop['signal'] if stop['signal'] is not None else 'on another rank'}; "
                    "checkpoint saved, resume with --resume"
                )
            if reason is StopReason.MAX_STEPS:
                break
            finish_epoch(ctx, setup, state, epoch, writer)
    ctx.sync_buffers(state.learner)  # every rank ends with rank 0's BatchNorm statistics
    if ctx.is_main:
        save_encoder(state.learner.evaluated_encoder, setup.config, setup.dataset, setup.run_dir / "encoder.pt",
                     state.history)
    result = PretrainResult(run_dir=setup.run_dir, epochs_done=len(state.history), steps_done=state.global_step,
                            history=state.history)
    if callbacks.on_finished is not None:
        callbacks.on_finished(ctx, state.learner, result)
    return result


def apply_allocator_policy(run: Mapping[str, Any]) -> None:
    """Set the host allocator policy ``run.allocator`` (:mod:`ssal.training.allocator`) of a validated
    configuration (its choices are checked by the schema)."""
    from .allocator import set_allocator_policy

    set_allocator_policy(str(run["allocator"]))


def check_tensorboard(run: Mapping[str, Any]) -> None:
    """Refuse ``run.tensorboard`` where the tensorboard package is not importable."""
    if not run.get("tensorboard"):
        return
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise SsalInputError(None, "setting 'run.tensorboard' needs the tensorboard package "
                                   "(pip install 'ssal[tensorboard]')") from None


@contextmanager
def open_tensorboard(ctx: DistContext, setup: RunSetup) -> Iterator[Any]:
    """A ``SummaryWriter`` on ``<run_dir>/tensorboard`` for ``run.tensorboard`` on rank 0 (else
    ``None``), closed however the block ends."""
    if not setup.run.get("tensorboard") or not ctx.is_main:
        yield None
        return
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(setup.run_dir / TENSORBOARD_DIR))
    try:
        yield writer
    finally:
        writer.close()


def _open_run_dir(out_dir: str | Path, resume: bool, overwrite: bool) -> tuple[Path, dict[str, Any] | None]:
    run_dir, resuming = prepare_run_dir(out_dir, resume, overwrite)
    return run_dir, (check_run_checkpoint(run_dir / "checkpoint.pt") if resuming else None)


def _open_split(run_dir: Path, config: Mapping[str, Any], dataset: GaitDataset, resume: bool,
                given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The resumed run's ``split.json``, else ``given`` or a seeded stratified split (by the
    dataset's groups: clips of one recording, or one ``data.group_by`` unit, on one side), saved
    with ``config.yaml`` (rank 0's file work)."""
    from ..data.splits import load_split, save_split, stratified_split

    split_path = run_dir / "split.json"
    if resume and split_path.is_file():
        return load_split(split_path)
    d = config["data"]
    if given is not None:
        chosen = {k: np.asarray(v, dtype=np.int64) for k, v in given.items()}
    else:
        chosen = stratified_split(dataset.y, val=d["val_fraction"], test=d["test_fraction"], seed=d["split_seed"],
                                  groups=dataset.groups)
    save_split(chosen, split_path)
    atomic_write_text(run_dir / "config.yaml", dump_config(config))
    return chosen


def open_run(ctx: DistContext, config: Mapping[str, Any], out_dir: str | Path, *,
             dataset: GaitDataset | None, split: Mapping[str, Any] | None, resume: bool,
             overwrite: bool, settings: Config | None = None) -> RunSetup:
    """Open (or resume) the run directory, merge the configuration with a resumed checkpoint's,
    load the dataset and settle the split (``split.json``, ``config.yaml``).

    Rank 0 does the file work; every other rank receives its result (no shared disk needed).
    """
    run_dir, checkpoint = ctx.on_main(_open_run_dir, out_dir, resume, overwrite)
    if checkpoint is not None:
        # The experiment is the checkpoint's; the ``run`` section (device, progress, max_steps)
        # belongs to this invocation. The merged configuration is this run's door: typed here.
        settings = merge_typed(Config, [({**checkpoint["config"], "run": dict(config["run"])}, None)])
    elif settings is None:
        settings = merge_typed(Config, [(config, None)])
    config = as_plain(settings)
    run = config["run"]
    threads = resolve_threads(run.get("threads"))
    if threads:
        torch.set_num_threads(threads)
    if dataset is None:
        from ..data.configured import load_configured_dataset

        dataset = load_configured_dataset(config["data"])
    # The sizes the settings imply, before anything is written (config.yaml, split.json).
    check_learner_size(settings.model, dataset.layout)
    check_step_size(settings, dataset.layout, len(dataset))
    chosen: dict[str, Any] = ctx.on_main(_open_split, run_dir, config, dataset, checkpoint is not None, split)
    # Batches are read from dataset.x by sorted row index, so a memory-mapped corpus streams.
    train_idx = np.sort(np.asarray(chosen["train"], dtype=np.int64))
    return RunSetup(run_dir=run_dir, config=config, settings=settings, checkpoint=checkpoint, dataset=dataset,
                    split=chosen, train_idx=train_idx)


def _restore(ctx: DistContext, setup: RunSetup, state: TrainingState) -> None:
    """Load a resumed checkpoint's model, optimizer, scheduler, counters and random streams."""
    from ..models import upgrade_state_dict

    checkpoint = setup.checkpoint
    assert checkpoint is not None
    ck_where = display_path(setup.run_dir / "checkpoint.pt")
    for what, target in (("model", state.learner), ("optimizer", state.optimizer), ("scheduler", state.scheduler)):
        try:
            saved = checkpoint[what]
            if what == "model":  # CFFN's old ``graph`` keys load as ``graph_branch``
                saved = upgrade_state_dict(saved, state.learner.state_dict())
            target.load_state_dict(saved)
        except Exception as exc:  # noqa: BLE001 - any mismatch of a stored state is a bad file
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise SsalInputError(ck_where, f"field {what!r} does not fit this run's {what} ({first})") from None
    state.start_epoch = int(checkpoint["epoch"])
    state.start_step = int(checkpoint["step_in_epoch"])
    state.global_step = int(checkpoint["global_step"])
    state.history = list(checkpoint.get("history", []))
    state.aug_state = checkpoint.get("aug_generator")
    try:
        _set_rng_state(checkpoint["rng"])
        if state.aug_state is not None:
            torch.Generator(device=ctx.device).set_state(state.aug_state)
    except Exception as exc:  # noqa: BLE001
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise SsalInputError(ck_where, f"field 'rng' or 'aug_generator' is not a valid random state ({first})") from None
    if ctx.rank > 0:  # a rank's own streams; None (other world size) reseeds from the epoch
        own = checkpoint.get("rank_states") or []
        own = own[ctx.rank] if len(own) == ctx.world_size else None
        state.aug_state = own["aug_generator"] if own else None
        if own:
            _set_rng_state(own["rng"])


def build_training(ctx: DistContext, setup: RunSetup) -> TrainingState:
    """Build the learner, optimizer and scheduler, check the batch size against the data and
    the ranks, restore a resumed checkpoint, compile the encoders (``run.compile``) and wrap
    the learner for DDP."""
    from ..methods.learners import build_learner

    config, run, train = setup.config, setup.run, setup.config["train"]
    torch.manual_seed(int(config["seed"]))
    check_learner_size(setup.settings.model, setup.dataset.layout)
    learner = ctx.prepare(build_learner(setup.settings.model, setup.dataset.layout),
                          run["dist_bn"]).to(ctx.device)
    optimizer = build_optimizer(list(learner.trainable_parameters()), train)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule_factor(train))
    num_train = len(setup.train_idx)
    if num_train < 2:
        raise SsalInputError(config["data"]["source"], "too few training sequences to pretrain on")
    batch_size = min(int(train["batch_size"]), num_train)
    # Under torchrun the batch is global: rank r trains on rows [r*per, (r+1)*per) of each one.
    per_rank = ctx.per_rank_batch(batch_size)
    if per_rank < 1:
        raise SsalInputError(None, f"train.batch_size ({batch_size}) is smaller than the number of "
                                   f"ranks ({ctx.world_size})")
    state = TrainingState(learner=learner, model=learner, optimizer=optimizer, scheduler=scheduler,
                          aug_gen=torch.Generator(device=ctx.device), aug_state=None,
                          epochs=int(train["epochs"]), batch_size=per_rank * ctx.world_size)
    if setup.checkpoint is not None:
        _restore(ctx, setup, state)
    if run.get("compile"):
        learner.compile_encoders(str(run["compile_backend"]))
    state.model = ctx.wrap(learner)
    return state


def checkpoint_state(ctx: DistContext, setup: RunSetup, state: TrainingState, epoch: int,
                     step_in_epoch: int) -> dict[str, Any]:
    """The checkpoint of the run at ``(epoch, step_in_epoch)`` (every rank joins the gather)."""
    return {
        "config": setup.config, "layout": setup.dataset.layout.name, "classes": setup.dataset.classes,
        "epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": state.global_step,
        "model": state.learner.state_dict(), "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(), "rng": _rng_state(),
        "aug_generator": state.aug_gen.get_state(), "history": state.history,
        **({"rank_states": ctx.all_gather_object({"rng": _rng_state(), "aug_generator": state.aug_gen.get_state()})}
           if ctx.active else {}),
    }


def _start_epoch(ctx: DistContext, setup: RunSetup, state: TrainingState, epoch: int) -> None:
    """Seed the epoch's augmentation and global streams (or restore them mid-epoch)."""
    seed = int(setup.config["seed"])
    if epoch == state.start_epoch and state.start_step > 0 and state.aug_state is not None:
        state.aug_gen.set_state(state.aug_state)
    else:
        state.aug_gen.manual_seed(ctx.rank_seed(epoch_seed(seed, epoch, 1)))
        torch.manual_seed(ctx.rank_seed(epoch_seed(seed, epoch, 2)))
        if epoch != state.start_epoch:
            state.start_step = 0
    state.learner.set_epoch(epoch)
    state.learner.train()


def train_epoch(ctx: DistContext, setup: RunSetup, state: TrainingState, epoch: int,
                stop: Mapping[str, int | None], writer: Any = None) -> StopReason:
    """Run the steps of ``epoch`` from ``state.start_step``; returns why it stopped.

    ``writer`` (a TensorBoard ``SummaryWriter`` or ``None``) receives each step's ``loss`` and
    every other scalar the learner's step returns, at the global step.

    On :attr:`StopReason.MAX_STEPS` and :attr:`StopReason.SIGNAL` a checkpoint has been saved
    (rank 0). Raises :class:`TrainingDiverged` on a NaN/inf loss (nothing saved).
    """
    from ..methods.learner import LOSS_KEY

    config, run, dataset = setup.config, setup.run, setup.dataset
    perm_gen = torch.Generator().manual_seed(epoch_seed(int(config["seed"]), epoch, 0))
    plan = batches(len(setup.train_idx), state.batch_size, perm_gen)
    _start_epoch(ctx, setup, state, epoch)
    stats = state.epoch = EpochStats(first_step=state.start_step, num_steps=len(plan), t0=time.perf_counter())
    autocast = autocast_factory(ctx.device, run["amp"])
    max_steps = run.get("max_steps")
    with tqdm(total=len(plan), initial=state.start_step, desc=f"{config['method']} epoch {epoch + 1}/{state.epochs}",
              disable=not run["progress"] or not ctx.is_main, leave=False, dynamic_ncols=True) as bar:
        for step in range(state.start_step, len(plan)):
            rows = plan[step]
            xb = load_batch(dataset.x, setup.train_idx[ctx.shard(rows)], ctx.device)
            with autocast():
                out = state.model(xb, state.aug_gen)
            loss = out[LOSS_KEY]
            if not isinstance(loss, torch.Tensor):
                raise TypeError(f"the learner's step returned {type(loss).__name__} as {LOSS_KEY!r}, not a tensor")
            # Decided together, so that every rank takes the same branch.
            diverged, signalled = ctx.any_flags(not torch.isfinite(loss.detach()), stop["signal"] is not None)
            if diverged:
                last = setup.run_dir / "checkpoint.pt"
                kept = (f"the last good checkpoint is kept in {last}" if last.is_file()
                        else "no checkpoint had been written yet; lower the learning rate")
                raise TrainingDiverged(f"loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}; {kept}")
            state.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            state.optimizer.step()
            state.global_step += 1
            stats.seen += len(rows)
            for key, value in out.items():
                scalar = _scalar(value)
                if scalar is not None:
                    stats.sums[key] = stats.sums.get(key, 0.0) + scalar
                    if writer is not None:
                        writer.add_scalar(key, scalar, state.global_step)
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
            if not ctx.active:
                signalled = stop["signal"] is not None
            if signalled or (max_steps is not None and state.global_step >= int(max_steps)):
                bar.close()
                _save_stopped(ctx, setup, state, epoch, step + 1 == len(plan), step + 1)
                return StopReason.SIGNAL if signalled else StopReason.MAX_STEPS
    return StopReason.COMPLETED


def _scalar(value: Any) -> float | None:
    """A logged part of a step's output: a one-element tensor or a number (else ``None``)."""
    if isinstance(value, torch.Tensor):
        return float(value.detach()) if value.numel() == 1 else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _save_stopped(ctx: DistContext, setup: RunSetup, state: TrainingState, epoch: int, done_epoch: bool,
                  next_step: int) -> None:
    """The checkpoint of a run stopped after step ``next_step`` (the epoch's last, if ``done_epoch``)."""
    if done_epoch:
        state.scheduler.step()
    ck = checkpoint_state(ctx, setup, state, epoch + 1 if done_epoch else epoch, 0 if done_epoch else next_step)
    if ctx.is_main:
        save_checkpoint(ck, setup.run_dir / "checkpoint.pt")


def finish_epoch(ctx: DistContext, setup: RunSetup, state: TrainingState, epoch: int,
                 writer: Any = None) -> dict[str, Any]:
    """Close a completed epoch: its metrics record (loss terms averaged over steps and ranks,
    lr, throughput), the lr schedule step, the kNN monitor (``run.knn_every``), the checkpoint
    and ``metrics.jsonl``; ``writer`` (TensorBoard) receives ``lr``, ``seq_per_s`` and
    ``knn_val_top1`` (when measured) at the global step. Returns the record."""
    stats = state.epoch
    assert stats is not None
    run = setup.run
    elapsed = time.perf_counter() - stats.t0
    steps = max(stats.num_steps - stats.first_step, 1)
    record = {"epoch": epoch + 1, "step": state.global_step, "lr": state.optimizer.param_groups[0]["lr"],
              "seconds": round(elapsed, 3), "seq_per_s": round(stats.seen / max(elapsed, 1e-9), 2)}
    record.update({k: v / steps for k, v in ctx.mean_over_ranks(stats.sums).items()})
    state.scheduler.step()
    knn_every = int(run["knn_every"])
    if knn_every and ((epoch + 1) % knn_every == 0 or epoch + 1 == state.epochs):
        record["knn_val_top1"] = ctx.on_main(knn_monitor, state.learner.evaluated_encoder, setup.dataset, setup.split,
                                             run, ctx.device, config_clip_len(setup.config))
    if writer is not None:
        for key in ("lr", "seq_per_s", "knn_val_top1"):
            if key in record:
                writer.add_scalar(key, record[key], state.global_step)
    state.history.append(record)
    state.start_step = 0
    save_snapshot(ctx, setup, state, epoch + 1)
    ck = checkpoint_state(ctx, setup, state, epoch + 1, 0)
    if ctx.is_main:
        save_checkpoint(ck, setup.run_dir / "checkpoint.pt")
        # Rewritten whole from the history so a resumed run never holds duplicate epochs.
        atomic_write_text(setup.run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in state.history))
    return record


def save_snapshot(ctx: DistContext, setup: RunSetup, state: TrainingState, epoch: int) -> None:
    """Write ``snapshots/encoder-e<epoch>.pt`` when ``run.snapshot_every`` asks for this epoch
    (epoch 0: the initialisation; rank 0 only)."""
    every = int(setup.run.get("snapshot_every") or 0)
    if not every or not ctx.is_main or (epoch % every and epoch != state.epochs):
        return
    folder = setup.run_dir / "snapshots"
    folder.mkdir(exist_ok=True)
    save_encoder(state.learner.evaluated_encoder, setup.config, setup.dataset, folder / f"encoder-e{epoch:04d}.pt",
                 state.history)


__all__ = [
    "PretrainResult", "TrainingDiverged", "TrainingInterrupted", "pretrain",
    "resolve_device", "resolve_threads", "check_step_size", "MAX_STEP_ACTIVATION_BYTES", "lr_factor",
    "epoch_seed", "PretrainCallbacks", "StopReason", "open_run", "build_training",
    "train_epoch", "finish_epoch", "RunSetup", "TrainingState",
]
