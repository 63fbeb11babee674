"""Export a trained model to ONNX or TorchScript, and run an exported ONNX model.

``ssal export --checkpoint C --format onnx|torchscript --out F`` writes one self-contained file:

* from ``encoder.pt``: ``(N, 3, T, V) -> (N, D)`` embeddings (what :meth:`EmotionModel.embed`
  returns);
* from ``classifier.pt``: ``(N, 3, T, V) -> (N, num_classes)`` probabilities (softmax included,
  what :meth:`EmotionModel.predict` returns).

Batch size N and clip length T are dynamic. The input is the model's tensor layout after
preprocessing and after resizing to the checkpoint's clip length (``clip_len`` in the metadata);
:func:`load_onnx` does both, so ``ssal predict --checkpoint model.onnx`` reads the same files as
with the checkpoint and gives the same probabilities (to float round-off).

Choices (written down here because the issue left them open):

* ONNX uses PyTorch's dynamo exporter (``torch.onnx.export(..., dynamo=True)``). It exports the
  AFF branch's ``rfft2`` / ``irfft2`` as ONNX ``DFT`` nodes, which onnxruntime runs; no matmul
  reformulation of the FFT is needed. What broke it before was CFFN's submodule named
  ``graph`` (``torch.fx.GraphModule.graph``), now ``graph_branch``. The checkpoint's own
  encoder is exported in eval mode; onnxruntime folds BatchNorm into the convolutions itself.
* TorchScript is a trace (``torch.jit.trace``) of the BatchNorm-folded inference encoder
  (:mod:`ssal.models.fold`) that ``predict`` runs, checked at another batch size and length.
* The metadata that ``predict`` needs (classes, layout, preprocessing, clip length, kind) is
  stored in the file: ONNX ``metadata_props["ssal"]``, TorchScript extra file ``ssal.json``,
  both the same JSON object.
* The output file is written atomically (a temporary file renamed into place).
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import SsalInputError
from .onnx_model import METADATA_KEY, METADATA_VERSION

#: Export formats of ``ssal export``.
FORMATS = ("onnx", "torchscript")


class InferenceGraph(nn.Module):
    """What an exported file computes: ``encoder(x)`` or ``softmax(head(encoder(x)))``."""

    def __init__(self, encoder: nn.Module, head: nn.Module | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (N, 3, T, V) -> embeddings (N, D) or probabilities (N, num_classes)."""
        feature = self.encoder(x)
        if self.head is None:
            return feature
        return torch.softmax(self.head(feature), dim=1)


def _metadata(model, kind: str, frames: int, source: str | Path) -> dict[str, Any]:
    ck = model.meta
    return {
        "version": METADATA_VERSION,
        "kind": kind,
        "source": Path(source).name,
        "layout": model.layout.name,
        "classes": list(model.classes),
        "preprocess": model.preprocess.to_dict(),
        "clip_len": model.clip_len,
        "example_frames": frames,
        "out_dim": int(model.encoder.out_dim) if kind == "encoder" else len(model.classes),
        "feature": ck.get("feature", "backbone"),
        "method": ck.get("method") or (ck.get("config") or {}).get("method"),
        "encoder_config": ck.get("encoder_config"),
    }


def _atomic_target(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    return Path(tmp)


def export_model(checkpoint: str | Path, fmt: str, out: str | Path, *, frames: int | None = None,
                 opset: int | None = None) -> dict[str, Any]:
    """Export ``checkpoint`` (``encoder.pt`` or ``classifier.pt``) to ``out`` as ``fmt``.

    Args:
        checkpoint: an ssal checkpoint with an encoder (and, for probabilities, a head).
        fmt: ``"onnx"`` or ``"torchscript"``.
        out: the output file (written atomically; an existing file is replaced).
        frames: T of the example input used to trace (default: the checkpoint's clip length,
            else 75). The exported model accepts any T and batch size.
        opset: ONNX opset (default: the exporter's).

    Returns:
        The metadata stored with the model.
    """
    from .loading import load

    if fmt not in FORMATS:
        raise SsalInputError(None, f"unknown export format {fmt!r}; choose {' or '.join(FORMATS)}")
    model = load(checkpoint, optimize=False)
    kind = "classifier" if model.has_classifier else "encoder"
    t = int(frames or model.clip_len or 75)
    if t < 1:
        raise SsalInputError(None, f"--frames must be >= 1, got {frames}")
    meta = _metadata(model, kind, t, checkpoint)
    v = model.layout.num_joints
    example = torch.randn(2, 3, t, v, generator=torch.Generator().manual_seed(0))
    out = Path(out)
    tmp = _atomic_target(out)
    try:
        with torch.no_grad():
            if fmt == "onnx":
                _export_onnx(InferenceGraph(model.encoder, model.head).eval(), example, tmp, meta, opset)
            else:
                _export_torchscript(model, example, tmp, meta)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return meta


def _export_onnx(graph: InferenceGraph, example: Tensor, path: Path, meta: dict[str, Any],
                 opset: int | None) -> None:
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter's back end)
    except ImportError:
        raise SsalInputError(None, "ONNX export needs the packages onnx and onnxscript "
                                   "(pip install onnx onnxscript)") from None
    batch = torch.export.Dim("batch", min=1)
    time = torch.export.Dim("frames", min=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            graph, (example,), dynamo=True, input_names=["x"],
            output_names=["probabilities" if graph.head is not None else "embedding"],
            dynamic_shapes=({0: batch, 2: time},), opset_version=opset, external_data=False,
            verbose=False, report=False,
        )
    assert program is not None  # only the legacy exporter (dynamo=False) returns None
    program.model.metadata_props[METADATA_KEY] = json.dumps(meta)
    program.save(str(path), external_data=False)


def _export_torchscript(model, example: Tensor, path: Path, meta: dict[str, Any]) -> None:
    from .model import fold_for_inference

    graph = InferenceGraph(fold_for_inference(model.encoder), model.head).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = torch.randn(3, 3, example.shape[2] + 5, example.shape[3])
        traced = torch.jit.trace(graph, example, check_inputs=[(other,)], check_tolerance=1e-4)
    torch.jit.save(traced, str(path), _extra_files={f"{METADATA_KEY}.json": json.dumps(meta)})



__all__ = ["FORMATS", "InferenceGraph", "export_model"]
