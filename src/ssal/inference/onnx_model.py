"""Running a model exported by ``ssal export`` to ONNX, through onnxruntime.

:func:`load_onnx` gives an :class:`OnnxEmotionModel`: the same ``predict`` / ``embed`` as a
checkpoint's :class:`~ssal.inference.model.EmotionModel`, with input preparation (reading,
preprocessing, resizing to ``clip_len``) from the file's ssal metadata
(:func:`read_onnx_metadata`, written by :mod:`ssal.inference.export`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..data.preprocess import PreprocessConfig
from ..errors import SsalInputError
from ..skeleton import get_layout
from .model import EmotionModel

#: Version of the ssal metadata object stored in exported files.
METADATA_VERSION = 1
#: Key of that object in the ONNX custom metadata (and the TorchScript extra file's stem).
METADATA_KEY = "ssal"


@dataclass
class OnnxEmotionModel(EmotionModel):
    """An :class:`EmotionModel` over an ONNX file written by ``ssal export`` (onnxruntime).

    ``encoder`` is an :class:`OnnxRunner`; the file computes either probabilities
    (``kind == "classifier"``, for :meth:`predict`) or embeddings (``"encoder"``, for
    :meth:`embed`). Input preparation (reading, preprocessing, resizing to ``clip_len``) is the
    checkpoint's, taken from the file's metadata.
    """

    kind: str = "classifier"

    def optimize(self) -> OnnxEmotionModel:
        return self  # onnxruntime optimises the graph itself

    @property
    def has_classifier(self) -> bool:
        return self.kind == "classifier"

    def embed(self, data: Any, batch_size: int = 512) -> np.ndarray:
        """Embeddings ``(N, D)``, from an exported ``encoder.pt``."""
        if self.kind != "encoder":
            raise SsalInputError(None, "this ONNX model outputs probabilities; export encoder.pt for embeddings")
        with torch.inference_mode():
            return self._run(self.prepare(data), batch_size, self.encoder.out_dim, self.encoder)

    def predict(self, data: Any, batch_size: int = 512) -> np.ndarray:
        """Probabilities ``(N, num_classes)``, from an exported ``classifier.pt``."""
        if self.kind != "classifier":
            raise SsalInputError(None, "this ONNX model is an exported encoder without a classifier; "
                                       "export a classifier.pt to predict")
        with torch.inference_mode():
            return self._run(self.prepare(data), batch_size, len(self.classes), self.encoder)


def read_onnx_metadata(path: str | Path, session=None) -> dict[str, Any]:
    """The ssal metadata object stored in an exported ONNX file."""
    if session is None:
        session = _session(path)
    raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if raw is None:
        raise SsalInputError(path, "ONNX model was not exported by `ssal export` (no ssal metadata)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        raise SsalInputError(path, "ONNX model's ssal metadata is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("version") != METADATA_VERSION:
        raise SsalInputError(path, f"ONNX model's ssal metadata has an unknown version ({meta.get('version')!r})")
    return meta


def _session(path: str | Path):
    try:
        import onnxruntime as ort
    except ImportError:
        raise SsalInputError(path, "running an ONNX model needs onnxruntime (pip install onnxruntime)") from None
    if not Path(path).is_file():
        raise SsalInputError(path, "file not found")
    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise SsalInputError(path, f"not a readable ONNX model ({str(exc).splitlines()[0][:200]})") from None


class OnnxRunner(nn.Module):
    """An onnxruntime session behind the module interface ``EmotionModel`` calls: float32
    ``(N, 3, T, V)`` in, the exported output (embeddings or probabilities) out."""

    def __init__(self, session, out_dim: int) -> None:
        super().__init__()
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        arr = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {self.input_name: arr})[0])


def load_onnx(path: str | Path):
    """An :class:`~ssal.inference.model.EmotionModel` that runs an ``ssal export`` ONNX file through
    onnxruntime: ``predict`` for an exported classifier, ``embed`` for an exported encoder."""
    session = _session(path)
    meta = read_onnx_metadata(path, session)
    runner = OnnxRunner(session, int(meta["out_dim"]))
    return OnnxEmotionModel(encoder=runner, head=None, layout=get_layout(meta["layout"]),  # type: ignore[arg-type]
                            classes=list(meta["classes"]), preprocess=PreprocessConfig.from_dict(meta["preprocess"]),
                            clip_len=meta.get("clip_len"), meta=meta, kind=str(meta["kind"]))


__all__ = ["METADATA_KEY", "METADATA_VERSION", "OnnxEmotionModel", "OnnxRunner", "load_onnx", "read_onnx_metadata"]
