"""The notebook API: load a trained model and read emotions from gait arrays or files.

    >>> import ssal
    >>> model = ssal.load("runs/demo/ssal/classifier.pt")
    >>> probs = model.predict(array)          # (N, num_classes), rows sum to 1

``array`` may be a batch ``(N, 3, T, V)`` in the project's layout, raw sequences
``(N, T, V, 3)`` / ``(T, V, 3)`` (preprocessed like the training data), or a 3-D pose
estimator's Human3.6M output ``(T, 17, 3)`` / ``(N, T, 17, 3)`` (mapped onto the model's layout).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint import load_checkpoint, save_checkpoint
from ..config import clip_len as config_clip_len
from ..data.dataset import GaitDataset
from ..data.pose import make_upright
from ..data.preprocess import PreprocessConfig, sequences_to_dataset
from ..errors import SsalInputError, display_path
from ..models import build_encoder, upgrade_state_dict
from ..models.base import BackboneFeatures, Encoder
from ..skeleton import H36M17, SkeletonLayout, map_to_layout


def upgrade_encoder_config(cfg: Any) -> Any:
    """The encoder settings of a checkpoint written before ``hidden_dim`` existed (ssal 0.1),
    with the width those checkpoints had: the last layer at ``4 * base_channels``."""
    if not isinstance(cfg, Mapping) or "hidden_dim" in cfg or cfg.get("name") not in ("stgcn", "cffn"):
        return cfg
    if cfg.get("channels") is not None or cfg.get("use_graph") is False:
        return {**cfg, "hidden_dim": None}
    base = cfg.get("base_channels", 16)
    return {**cfg, "hidden_dim": 4 * base if isinstance(base, int) and not isinstance(base, bool) else None}


def load_encoder(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[Encoder, dict[str, Any]]:
    """Rebuild the encoder stored in ``path`` (``encoder.pt`` or ``classifier.pt``).

    Every field the rebuild reads is validated first (:mod:`ssal.training.checkpoint_fields`): the
    layout, the encoder settings (built on the meta device against the size limits before any
    memory is allocated), the clip length, the preprocessing and the weights. The sizes found
    are kept in ``checkpoint["_estimate"]`` (parameters, bytes of one sequence's largest
    activation).

    Returns:
        ``(encoder, checkpoint)``; the encoder is in eval mode on ``map_location``.
    """
    from ..data.preprocess import PreprocessConfig
    from ..training import checkpoint_fields as fields

    ck = load_checkpoint(path, map_location=map_location)
    where = display_path(path)
    if "encoder" not in ck or "encoder_config" not in ck:
        raise SsalInputError(where, "checkpoint holds no encoder (expected encoder.pt or classifier.pt)")
    layout = fields.check_layout(ck.get("layout"), where)
    enc_cfg = upgrade_encoder_config(fields.check_mapping(ck["encoder_config"], where, "encoder_config"))
    weights = fields.check_tensor_dict(ck["encoder"], where, "encoder")
    config = fields.check_mapping(ck.get("config"), where, "config", required=False)
    preprocess = fields.check_preprocess(fields.stored_preprocess(ck, config, where), where)
    clip = stored_clip_len(ck, config, where)
    frames = clip or preprocess.length or PreprocessConfig().length
    params, sample_bytes = fields.estimate_encoder(enc_cfg, layout, frames, where)
    ck["_estimate"] = {"parameters": params, "sample_bytes": sample_bytes, "frames": frames}
    encoder = build_encoder(enc_cfg, layout)
    try:
        # Checkpoints written before CFFN's ``graph`` submodule became ``graph_branch`` load too.
        encoder.load_state_dict(upgrade_state_dict(weights, encoder.state_dict()))
    except RuntimeError as exc:
        raise SsalInputError(where, f"encoder weights do not fit its configuration ({str(exc).splitlines()[0]})") from None
    return encoder.to(map_location).eval(), ck


def stored_clip_len(ck: Mapping[str, Any], config: Mapping[str, Any] | None, where: str) -> int | None:
    """The clip length a checkpoint's encoder is evaluated at: ``clip_len`` (classifiers),
    else the pretraining clip length of its ``config`` (encoder.pt); validated."""
    from ..training import checkpoint_fields as fields

    if ck.get("clip_len") is not None:
        return fields.check_clip_len(ck.get("clip_len"), where)
    try:
        value = config_clip_len(config if isinstance(config, Mapping) else None)
    except (TypeError, ValueError, AttributeError, OverflowError):
        raise SsalInputError(where, "field 'config': model.augment.general.clip_len is not a whole number") from None
    return fields.check_clip_len(value, where, "config.model.augment.general.clip_len")


def save_classifier(path: str | Path, encoder: Encoder, head: torch.nn.Module, *, encoder_config: Mapping[str, Any],
                    layout: SkeletonLayout, classes: list[str], preprocess: Mapping[str, Any] | None,
                    clip_len: int | None, protocol: str, report: Mapping[str, Any] | None = None,
                    method: str | None = None) -> None:
    """Write a classifier checkpoint (encoder + head + everything ``predict`` needs).

    A :class:`~ssal.models.base.BackboneFeatures` view is stored as its encoder plus
    ``feature: backbone``, so the encoder's weights keep the layout of ``encoder.pt``.
    """
    feature = "output"
    if isinstance(encoder, BackboneFeatures):
        encoder, feature = encoder.encoder, "backbone"
    save_checkpoint({
        "feature": feature,
        "stage": "classifier",
        "protocol": protocol,
        "method": method,
        "encoder_config": dict(encoder_config),
        "layout": layout.name,
        "classes": list(classes),
        "preprocess": dict(preprocess or {}),
        "clip_len": clip_len,
        "encoder": {k: v.detach().cpu() for k, v in encoder.state_dict().items()},
        "head": {k: v.detach().cpu() for k, v in head.state_dict().items()},
        "report": dict(report or {}),
    }, path)


@dataclass
class EmotionModel:
    """A trained encoder (and, for classifiers, a head) with the settings to prepare input."""

    encoder: Encoder | BackboneFeatures
    head: torch.nn.Module | None
    layout: SkeletonLayout
    classes: list[str]
    preprocess: PreprocessConfig
    clip_len: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    #: Largest inference batch (sized from the checkpoint's activation estimate, so that a
    #: batch stays within ``ssal.training.checkpoint_fields.INFERENCE_BATCH_BYTES``).
    batch_size: int = 512
    #: What ``embed`` / ``predict`` run: an inference copy of ``encoder`` with BatchNorm folded
    #: (:func:`ssal.models.fold.fold_batchnorm`, made by :func:`load`), or None for ``encoder``
    #: itself. ``encoder`` stays the checkpoint's module (to save, inspect or train); after
    #: changing its weights call :meth:`optimize` again.
    runner: torch.nn.Module | None = None

    def optimize(self) -> EmotionModel:
        """Rebuild :attr:`runner` from :attr:`encoder` (BatchNorm folded, channels-last ST-GCN)."""
        self.runner = fold_for_inference(self.encoder)
        return self

    def _features(self) -> torch.nn.Module:
        module = self.runner if self.runner is not None else self.encoder
        return module.eval()

    # ------------------------------------------------------------------ input preparation
    def read(self, path: str | os.PathLike[str]) -> GaitDataset:
        """Read a file or folder (BVH, ``.npz``, E-Gait ``.h5``, ``.ssal``, Human3.6M ``.npy``, or
        a video with the ``video`` extra: one sequence per stretch, :mod:`ssal.data.video`) onto
        the model's layout with the model's preprocessing, as ``ssal predict`` does."""
        from ..data.io import load_dataset

        return load_dataset(path, layout=self.layout, preprocess=self.preprocess)

    def prepare(self, data: Any, where: str | None = None) -> np.ndarray:
        """Turn a path, an array, a :class:`GaitDataset` or a list of sequences into ``(N, 3, T, V)``."""
        if isinstance(data, (str, os.PathLike)):
            where = where or display_path(data)
            data = self.read(data)
        if isinstance(data, GaitDataset):
            self.layout.check_array(data.x, where or str(data.meta.get("source") or "dataset"))
            return np.asarray(data.x, dtype=np.float32)
        if isinstance(data, (list, tuple)):
            return self._from_sequences([np.asarray(s, dtype=np.float64) for s in data], where)
        arr = np.asarray(data.detach().cpu() if torch.is_tensor(data) else data, dtype=np.float64)
        v = self.layout.num_joints
        if arr.ndim == 4 and arr.shape[1] == 3 and arr.shape[3] == v and arr.shape[-1] != 3:
            return self._checked(arr.astype(np.float32), where)
        if arr.ndim == 3 and arr.shape[-1] == 3:
            return self._from_sequences([arr], where)
        if arr.ndim == 4 and arr.shape[-1] == 3:
            return self._from_sequences(list(arr), where)
        raise SsalInputError(
            where, f"cannot read an array of shape {arr.shape}: expected (N, 3, T, {v}), (N, T, V, 3) or (T, V, 3)"
        )

    def _checked(self, x: np.ndarray, where: str | None) -> np.ndarray:
        if not np.isfinite(x).all():
            raise SsalInputError(where, "input holds NaN or infinite values")
        return x

    def _from_sequences(self, seqs: list[np.ndarray], where: str | None) -> np.ndarray:
        out = []
        for s in seqs:
            if s.ndim != 3 or s.shape[-1] != 3:
                raise SsalInputError(where, f"a sequence must be (T, V, 3), got {s.shape}")
            if s.shape[1] == H36M17.num_joints and self.layout.num_joints != H36M17.num_joints:
                # As the .npy / .npz pose reader does: map by joint name, turn y-down output upright.
                s, _ = make_upright(map_to_layout(s, H36M17, self.layout, where=where), self.layout)
            out.append(s)
        ds = sequences_to_dataset(out, None, [f"seq{i}" for i in range(len(out))], self.classes,
                                  layout=self.layout, config=self.preprocess, source=where or "<array>")
        return ds.x

    # ------------------------------------------------------------------ inference
    def default_batch_size(self) -> int:
        """The inference batch when none is given: ``PREDICT_BATCH_CPU`` on the CPU,
        ``PREDICT_BATCH_ACCELERATOR`` elsewhere (``ssal.config.schema``), within the memory bound."""
        from ..config.schema import PREDICT_BATCH_ACCELERATOR, PREDICT_BATCH_CPU

        wanted = PREDICT_BATCH_CPU if self.device.type == "cpu" else PREDICT_BATCH_ACCELERATOR
        return max(1, min(wanted, int(self.batch_size)))

    def _batches(self, x: np.ndarray, batch_size: int | None):
        from ..models.base import resize_time

        if batch_size is None:
            batch_size = self.default_batch_size()
        batch_size = max(1, min(int(batch_size), int(self.batch_size)))
        for i in range(0, len(x), batch_size):
            chunk = np.ascontiguousarray(x[i:i + batch_size], dtype=np.float32)
            if not chunk.flags.writeable:  # a read-only (cached or memory-mapped) corpus
                chunk = chunk.copy()
            xb = torch.from_numpy(chunk).to(self.device)
            yield resize_time(xb, self.clip_len)

    def _run(self, x: np.ndarray, batch_size: int | None, width: int, fn) -> np.ndarray:
        """``fn`` on each batch of ``x``, written into one preallocated ``(N, width)`` array."""
        out = np.empty((len(x), width), dtype=np.float32)
        i = 0
        for xb in self._batches(x, batch_size):  # batches may be smaller than asked (memory bound)
            out[i:i + len(xb)] = fn(xb).float().cpu().numpy()
            i += len(xb)
        return out

    @property
    def has_classifier(self) -> bool:
        """Whether :meth:`predict` can run (a classifier checkpoint, not a bare encoder)."""
        return self.head is not None

    @torch.inference_mode()
    def embed(self, data: Any, batch_size: int | None = None) -> np.ndarray:
        """Encoder features ``(N, D)`` of the input, ``batch_size`` sequences at a time (default:
        :meth:`default_batch_size`)."""
        x = self.prepare(data)
        features = self._features()
        out = self._run(x, batch_size, self.encoder.out_dim, features)
        return self._finite(out, "features")

    @torch.inference_mode()
    def predict(self, data: Any, batch_size: int | None = None) -> np.ndarray:
        """Emotion probabilities ``(N, num_classes)``; each row sums to 1. ``batch_size`` sequences
        run at a time (default: :meth:`default_batch_size`)."""
        if self.head is None:
            raise SsalInputError(None, "this checkpoint is a pretrained encoder without a classifier; "
                                       "train one with `ssal linear` or `ssal finetune` first")
        x = self.prepare(data)
        features, head = self._features(), self.head.eval()
        out = self._run(x, batch_size, len(self.classes), lambda xb: torch.softmax(head(features(xb)), dim=1))
        return self._finite(out, "probabilities")

    def _finite(self, out: np.ndarray, what: str) -> np.ndarray:
        """``out``, or a one-line error naming the checkpoint when its weights overflowed
        (extreme but finite values give NaN or inf)."""
        if not np.isfinite(out).all():
            raise SsalInputError(self.meta.get("_where"), f"the model produced non-finite {what}: its weights "
                                                          "overflow (a damaged or foreign checkpoint?)")
        return out

    def predict_labels(self, data: Any) -> list[str]:
        """The most probable emotion name per sequence."""
        return [self.classes[i] for i in self.predict(data).argmax(axis=1)]


def fold_for_inference(encoder: torch.nn.Module) -> torch.nn.Module:
    """An inference copy of an encoder (or its :class:`BackboneFeatures` view) with BatchNorm folded."""
    from ..models.fold import fold_batchnorm

    if isinstance(encoder, BackboneFeatures):
        return BackboneFeatures(fold_batchnorm(encoder.encoder)).eval()
    return fold_batchnorm(encoder)


