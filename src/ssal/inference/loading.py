"""``ssal.load``: a trained model from a checkpoint (``encoder.pt``, ``classifier.pt``) or an
ONNX export, ready to ``predict`` and ``embed``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from ..errors import SsalInputError, display_path
from ..models.base import BackboneFeatures, Encoder
from ..models.heads import LinearClassifier
from ..skeleton import get_layout
from ..training import checkpoint_fields as fields
from .model import EmotionModel, load_encoder, stored_clip_len
from .onnx_model import load_onnx


def load(path: str | Path, device: str | torch.device = "cpu", optimize: bool = True) -> EmotionModel:
    """Load ``encoder.pt`` (embeddings only), ``classifier.pt`` (embeddings and predictions) or
    a model exported to ONNX by ``ssal export`` (``.onnx``, run through onnxruntime).

    ``optimize`` (default): predictions run an inference copy of the encoder with BatchNorm
    folded into the convolutions (equal to the checkpoint's encoder up to float round-off).
    """
    if str(path).lower().endswith(".onnx"):
        return load_onnx(path)

    from ..training.engine import resolve_device

    device = resolve_device(device, "--device")  # auto, cpu, cuda[:N], mps: only where present
    encoder: Encoder | BackboneFeatures
    encoder, ck = load_encoder(path, map_location=device)
    where = display_path(path)
    # The checkpoint names the feature it was evaluated on: "output" (the encoder's output: CFFN's
    # fused vector, ST-GCN's pooled maps; "fused" in ssal 0.1) or "backbone" (pooled maps of
    # every branch). Files from ssal 0.1 without the key were evaluated on the backbone.
    feature = ck.get("feature", "backbone")
    if feature not in fields.FEATURES:
        raise SsalInputError(where, f"field 'feature': must be one of {fields.FEATURES}, got {str(feature)[:40]!r}")
    if feature == "backbone":
        encoder = BackboneFeatures(encoder).eval()
    classes = fields.check_classes(ck.get("classes"), where)
    head = None
    if "head" in ck:
        weights = fields.check_head(ck["head"], where, len(classes), int(encoder.out_dim))
        head = LinearClassifier(encoder.out_dim, len(classes))
        try:
            head.load_state_dict(weights)
        except RuntimeError as exc:
            raise SsalInputError(where, f"classifier head does not fit ({str(exc).splitlines()[0]})") from None
        head = head.to(device).eval()
    config = ck.get("config") if isinstance(ck.get("config"), Mapping) else {}
    preprocess = fields.check_preprocess(fields.stored_preprocess(ck, config, where), where)
    clip_len = stored_clip_len(ck, config, where)
    estimate = ck.get("_estimate") or {}
    ck["_batch_size"] = fields.inference_batch(int(estimate.get("sample_bytes", 0)), 512)
    ck["_where"] = where
    model = EmotionModel(encoder=encoder, head=head, layout=get_layout(ck["layout"]), classes=classes,
                         preprocess=preprocess, clip_len=clip_len, meta=ck, device=device,
                         batch_size=int(ck["_batch_size"]))
    return model.optimize() if optimize else model


__all__ = ["load"]
