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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from .checkpoint import load_checkpoint, save_checkpoint
from .config import clip_len as config_clip_len
from .data.dataset import GaitDataset
from .data.pose import make_upright
from .data.preprocess import PreprocessConfig, sequences_to_dataset
from .errors import SsalInputError
from .models import build_encoder
from .models.base import BackboneFeatures, Encoder
from .models.heads import LinearClassifier
from .skeleton import H36M17, SkeletonLayout, get_layout, map_to_layout


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

    Returns:
        ``(encoder, checkpoint)``; the encoder is in eval mode on ``map_location``.
    """
    ck = load_checkpoint(path, map_location=map_location)
    if "encoder" not in ck or "encoder_config" not in ck:
        raise SsalInputError(path, "checkpoint holds no encoder (expected encoder.pt or classifier.pt)")
    layout = get_layout(ck["layout"])
    encoder = build_encoder(upgrade_encoder_config(ck["encoder_config"]), layout)
    try:
        encoder.load_state_dict(ck["encoder"])
    except RuntimeError as exc:
        raise SsalInputError(path, f"encoder weights do not fit its configuration ({str(exc).splitlines()[0]})") from None
    return encoder.to(map_location).eval(), ck


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

    encoder: Encoder
    head: torch.nn.Module | None
    layout: SkeletonLayout
    classes: list[str]
    preprocess: PreprocessConfig
    clip_len: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    # ------------------------------------------------------------------ input preparation
    def read(self, path: str | os.PathLike[str]) -> GaitDataset:
        """Read a file or folder (BVH, ``.npz``, E-Gait ``.h5``, ``.ssal``, Human3.6M ``.npy``)
        onto the model's layout with the model's preprocessing, as ``ssal predict`` does."""
        from .data.io import load_dataset

        return load_dataset(path, layout=self.layout, preprocess=self.preprocess)

    def prepare(self, data: Any, where: str | None = None) -> np.ndarray:
        """Turn a path, an array, a :class:`GaitDataset` or a list of sequences into ``(N, 3, T, V)``."""
        if isinstance(data, (str, os.PathLike)):
            data = self.read(data)
        if isinstance(data, GaitDataset):
            self.layout.check_array(data.x, where or "dataset")
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
    def _batches(self, x: np.ndarray, batch_size: int):
        from .evaluation.features import resize_time

        for i in range(0, len(x), batch_size):
            chunk = np.ascontiguousarray(x[i:i + batch_size], dtype=np.float32)
            if not chunk.flags.writeable:  # a read-only (cached or memory-mapped) corpus
                chunk = chunk.copy()
            xb = torch.from_numpy(chunk).to(self.device)
            yield resize_time(xb, self.clip_len)

    @torch.inference_mode()
    def embed(self, data: Any, batch_size: int = 512) -> np.ndarray:
        """Encoder features ``(N, D)`` of the input."""
        x = self.prepare(data)
        self.encoder.eval()
        feats = [self.encoder(xb).float().cpu() for xb in self._batches(x, batch_size)]
        return torch.cat(feats).numpy() if feats else np.zeros((0, self.encoder.out_dim), np.float32)

    @torch.inference_mode()
    def predict(self, data: Any, batch_size: int = 512) -> np.ndarray:
        """Emotion probabilities ``(N, num_classes)``; each row sums to 1."""
        if self.head is None:
            raise SsalInputError(None, "this checkpoint is a pretrained encoder without a classifier; "
                                       "train one with `ssal linear` or `ssal finetune` first")
        x = self.prepare(data)
        self.encoder.eval()
        self.head.eval()
        probs = [torch.softmax(self.head(self.encoder(xb)).float(), dim=1).cpu() for xb in self._batches(x, batch_size)]
        return torch.cat(probs).numpy() if probs else np.zeros((0, len(self.classes)), np.float32)

    def predict_labels(self, data: Any) -> list[str]:
        """The most probable emotion name per sequence."""
        return [self.classes[i] for i in self.predict(data).argmax(axis=1)]


def load(path: str | Path, device: str | torch.device = "cpu") -> EmotionModel:
    """Load ``encoder.pt`` (embeddings only) or ``classifier.pt`` (embeddings and predictions)."""
    device = torch.device(device)
    encoder, ck = load_encoder(path, map_location=device)
    # The checkpoint names the feature it was evaluated on: "output" (the encoder's output: CFFN's
    # fused vector, ST-GCN's pooled maps; "fused" in ssal 0.1) or "backbone" (pooled maps of
    # every branch). Files from ssal 0.1 without the key were evaluated on the backbone.
    if ck.get("feature", "backbone") == "backbone":
        encoder = BackboneFeatures(encoder).eval()
    head = None
    if "head" in ck:
        weight = ck["head"].get("fc.weight", next(iter(ck["head"].values())))
        head = LinearClassifier(encoder.out_dim, int(weight.shape[0]))
        try:
            head.load_state_dict(ck["head"])
        except RuntimeError as exc:
            raise SsalInputError(path, f"classifier head does not fit ({str(exc).splitlines()[0]})") from None
        head = head.to(device).eval()
    preprocess = PreprocessConfig.from_dict(ck.get("preprocess") or ck.get("config", {}).get("preprocess"))
    clip_len = ck.get("clip_len")
    if clip_len is None:
        # encoder.pt: the clip length the encoder was pretrained (and is evaluated) on.
        clip_len = config_clip_len(ck.get("config"))
    return EmotionModel(encoder=encoder, head=head, layout=get_layout(ck["layout"]), classes=list(ck["classes"]),
                        preprocess=preprocess, clip_len=None if clip_len is None else int(clip_len), meta=ck,
                        device=device)
