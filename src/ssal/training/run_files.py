"""The files of a run directory: what a run writes and leaves behind, preparing (or reopening)
the directory, validating a resumed ``checkpoint.pt``, writing ``encoder.pt`` and reading
``metrics.jsonl``. The loop that fills them is :mod:`ssal.training.engine`."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import load_checkpoint, save_checkpoint
from ..config import clip_len as config_clip_len
from ..config import validate_config
from ..data.dataset import GaitDataset
from ..errors import SsalInputError, display_path

#: Files a run writes before its first checkpoint. A directory holding only these (and
#: hidden temporary files) is a run killed before it saved anything: a plain rerun starts it
#: afresh, and so does ``--resume`` (there is nothing else to continue).
RUN_LEFTOVERS = ("config.yaml", "split.json", "metrics.jsonl")
#: Files a run writes (each replaced atomically through a temporary file beside it).
RUN_FILES = RUN_LEFTOVERS + ("checkpoint.pt", "encoder.pt")
#: Folder of a run's TensorBoard event files (``run.tensorboard``, rank 0).
TENSORBOARD_DIR = "tensorboard"


def _only_leftovers(out: Path) -> bool:
    from ..outputs import LOCK_NAME

    return all(e.name in RUN_LEFTOVERS or e.name == LOCK_NAME or (e.name.startswith(".") and e.name.endswith(".tmp"))
               or (e.name == TENSORBOARD_DIR and e.is_dir(follow_symlinks=False)) for e in os.scandir(out))


def _has_content(out: Path) -> bool:
    """Anything in ``out`` but the lock of the process writing it (:func:`ssal.outputs.output_lock`)."""
    from ..outputs import LOCK_NAME

    return any(e.name != LOCK_NAME for e in os.scandir(out))


def prepare_run_dir(out_dir: str | Path, resume: bool, overwrite: bool) -> tuple[Path, bool]:
    """Create the run directory, refusing to clobber a non-empty one without a flag.

    The lock file of the process writing the run (:func:`ssal.outputs.output_lock`, taken by
    the commands around the whole run) is no run content. Returns ``(directory, resume)``: ``resume`` turns false when the directory holds only the
    files of a run killed before its first checkpoint (:data:`RUN_LEFTOVERS`).
    """
    from ..outputs import check_output_dir

    out = Path(out_dir)
    check_output_dir(out, overwrite=True, what="run directory")  # a file, dangling link, unwritable place
    for name in RUN_FILES:
        if (out / name).is_dir():
            raise SsalInputError(out / name, "is a directory where the run writes a file")
    if out.exists() and not out.is_dir():
        raise SsalInputError(out, "run directory path exists and is not a directory")
    if resume and out.is_dir() and not (out / "checkpoint.pt").exists() and _only_leftovers(out):
        resume = False  # killed before its first checkpoint: start it afresh
        overwrite = True
    if resume:
        ck = out / "checkpoint.pt"
        if not ck.exists() and not ck.is_symlink():
            raise SsalInputError(out, "nothing to resume: no checkpoint.pt in this directory")
        if not ck.is_file():
            raise SsalInputError(ck, "checkpoint.pt is not a regular file (a directory or dangling link?)")
        # Temporary files of writes cut short by a crash (the renamed files are intact).
        for stale in out.glob(".*.tmp"):
            if stale.is_dir() and not stale.is_symlink():
                raise SsalInputError(stale, "a directory stands where a temporary file of the run is expected; "
                                            "remove it and resume again")
            stale.unlink(missing_ok=True)
        return out, True
    if out.exists() and _has_content(out) and not overwrite and not _only_leftovers(out):
        raise SsalInputError(
            out, "run directory is not empty; pass --resume to continue it or --overwrite to reuse it"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out, False


def check_run_checkpoint(path: Path) -> dict[str, Any]:
    """Load a run's ``checkpoint.pt`` and validate every field resuming reads (types, ranges),
    so a damaged or foreign checkpoint is one line naming the file and the field."""
    from . import checkpoint_fields as fields

    ck = load_checkpoint(path)
    where = display_path(path)
    if "config" not in ck:
        raise SsalInputError(where, "field 'config' is missing (not a checkpoint of a pretraining run)")
    config = fields.check_mapping(ck["config"], where, "config")
    assert config is not None  # a required mapping
    for section in ("data", "train", "model", "run"):
        if not isinstance(config.get(section), Mapping):
            raise SsalInputError(where, f"field 'config': section {section!r} is missing")
    try:
        ck["config"] = validate_config(config)
    except SsalInputError as exc:
        raise SsalInputError(where, f"field 'config': {exc.problem}") from None
    fields.check_layout(ck.get("layout"), where)
    for key in ("epoch", "step_in_epoch", "global_step"):
        value = ck.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**62:
            raise SsalInputError(where, f"field {key!r} must be a whole number >= 0, got {str(value)[:40]!r}")
    fields.check_tensor_dict(ck.get("model"), where, "model")
    for key in ("optimizer", "scheduler"):
        if not isinstance(ck.get(key), Mapping):
            raise SsalInputError(where, f"field {key!r} must be a mapping (a saved {key} state)")
    rng = ck.get("rng")
    if not isinstance(rng, Mapping) or not isinstance(rng.get("torch"), torch.Tensor):
        raise SsalInputError(where, "field 'rng' must hold the saved random state ('torch': a tensor)")
    expected = torch.get_rng_state()
    if rng["torch"].dtype != expected.dtype or rng["torch"].shape != expected.shape:
        raise SsalInputError(where, f"field 'rng': the random state has {rng['torch'].dtype} {tuple(rng['torch'].shape)}, "
                                    f"expected {expected.dtype} {tuple(expected.shape)}")
    history = ck.get("history", [])
    if not isinstance(history, list) or not all(isinstance(h, Mapping) for h in history):
        raise SsalInputError(where, "field 'history' must be a list of per-epoch records")
    gen = ck.get("aug_generator")
    if gen is not None and not isinstance(gen, torch.Tensor):
        raise SsalInputError(where, "field 'aug_generator' must be a random state tensor")
    return ck


def save_encoder(encoder: torch.nn.Module, config: Mapping[str, Any], dataset: GaitDataset,
                 path: Path, history: list[dict[str, Any]]) -> None:
    """Write the learner's evaluated encoder with what is needed to rebuild it (``ssal.load``)."""
    save_checkpoint({
        "stage": "pretrain",
        "feature": "output",  # embeddings are the encoder's output (see ssal.inference.load)
        "clip_len": config_clip_len(config),
        "config": dict(config),
        "encoder_config": dict(config["model"]["encoder"]),
        "layout": dataset.layout.name,
        "classes": dataset.classes,
        "num_frames": dataset.num_frames,
        "preprocess": dict(dataset.meta.get("preprocess") or {}),
        "encoder": {k: v.detach().cpu() for k, v in encoder.state_dict().items()},
        "history": history,
    }, path)


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The per-epoch records of a run (``metrics.jsonl``)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

__all__ = ["RUN_FILES", "RUN_LEFTOVERS", "TENSORBOARD_DIR", "check_run_checkpoint", "prepare_run_dir", "read_metrics",
           "save_encoder"]
