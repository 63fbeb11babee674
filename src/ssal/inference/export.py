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
* Before any work (:func:`check_export_args`): the checkpoint must be a ``.pt`` file (an ONNX
  file is refused), ``--frames`` lies in 1..``MAX_LENGTH`` and, once the checkpoint's encoder is
  known, its activations at that length are estimated on the meta device against
  ``MAX_SAMPLE_ACTIVATION_BYTES`` and ``MAX_BYTES``; ``--opset`` lies in the range the
  installed exporter writes (:func:`opset_range`), and the written model's ``opset_import``
  is checked before the file is moved into place (the exporter silently keeps its own opset
  when it cannot convert).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import SsalInputError, display_path
from .onnx_model import METADATA_KEY, METADATA_VERSION

#: Export formats of ``ssal export``.
FORMATS = ("onnx", "torchscript")
#: File name endings of each format's output.
SUFFIXES: dict[str, tuple[str, ...]] = {"onnx": (".onnx",), "torchscript": (".pt", ".pth", ".ts")}
#: File name endings of a checkpoint ``ssal export`` reads.
CHECKPOINT_SUFFIXES = (".pt",)
#: Sequences alive at once while tracing (TorchScript: the example of 2 and the check of 3)
#: times the tensors of each activation alive at once (as ``INFERENCE_BATCH_BYTES`` counts).
_TRACE_SEQUENCES = 3 * 4


def opset_range() -> tuple[int, int]:
    """``(lowest, highest)`` ONNX opset the installed exporter writes: from the opset its
    operator library is written in (torchlib, 18) to the highest it converts to and the
    installed ``onnx`` knows. Lower opsets need a down-conversion that fails for ssal's graphs
    (``ReduceMean`` axes, ``DFT``) and leaves the opset unchanged."""
    try:
        from torch.onnx import _constants as torch_constants
        from torch.onnx._internal.exporter import _constants as exporter_constants

        lo, hi = int(exporter_constants.TORCHLIB_OPSET), int(torch_constants.ONNX_MAX_OPSET)
    except (ImportError, AttributeError):  # pragma: no cover - another torch layout
        lo, hi = 18, 23
    try:
        import onnx

        hi = min(hi, int(onnx.defs.onnx_opset_version()))
    except ImportError:  # pragma: no cover - checked again when exporting
        pass
    return lo, hi


def check_export_args(checkpoint: str | Path, fmt: str, frames: int | None = None, opset: int | None = None) -> None:
    """The checks of ``ssal export``'s arguments that need no file read (run before any work).

    Raises:
        SsalInputError: an unknown format, a checkpoint that is not a ``.pt`` file (an ONNX file
            in particular), ``frames`` outside 1..``MAX_LENGTH``, an ``opset`` outside
            :func:`opset_range` or given for TorchScript.
    """
    from ..data.preprocess import MAX_LENGTH

    if fmt not in FORMATS:
        raise SsalInputError(None, f"unknown export format {fmt!r}; choose {' or '.join(FORMATS)}")
    where = display_path(checkpoint)
    suffix = Path(checkpoint).suffix.lower()
    if suffix == ".onnx":
        raise SsalInputError(where, "is an ONNX file, already exported; `ssal export` reads a checkpoint "
                                    "(encoder.pt or classifier.pt)")
    if suffix not in CHECKPOINT_SUFFIXES:
        raise SsalInputError(where, f"`ssal export` reads a checkpoint ending in {' or '.join(CHECKPOINT_SUFFIXES)} "
                                    "(encoder.pt or classifier.pt)")
    if frames is not None and (isinstance(frames, bool) or not isinstance(frames, int) or not 1 <= frames <= MAX_LENGTH):
        raise SsalInputError("--frames", f"must be a whole number of frames from 1 to {MAX_LENGTH} "
                                         f"(ssal.data.preprocess.MAX_LENGTH), got {frames!r}")
    if opset is not None:
        if fmt != "onnx":
            raise SsalInputError("--opset", "applies to --format onnx only")
        lo, hi = opset_range()
        if isinstance(opset, bool) or not isinstance(opset, int) or not lo <= opset <= hi:
            raise SsalInputError("--opset", f"the installed exporter writes ONNX opsets {lo} to {hi}, got {opset!r}")


def check_trace_memory(model, frames: int) -> None:
    """Refuse ``frames`` whose example and trace would not fit in memory: the encoder's largest
    activation of one sequence at ``frames`` frames is estimated on the meta device (within
    ``MAX_SAMPLE_ACTIVATION_BYTES``), times the sequences and tensors alive while tracing
    (within ``ssal.data.preprocess.MAX_BYTES``)."""
    from ..data.preprocess import check_bytes
    from ..training import checkpoint_fields as fields
    from .model import upgrade_encoder_config

    cfg = model.meta.get("encoder_config")
    v = model.layout.num_joints
    sample = 3 * frames * v * 4
    if cfg is not None:
        try:
            _, sample = fields.estimate_encoder(upgrade_encoder_config(cfg), model.layout, frames, "--frames")
        except SsalInputError as exc:
            raise SsalInputError("--frames", f"{frames} frames: {exc.problem}") from None
    check_bytes(_TRACE_SEQUENCES * max(sample, 3 * frames * v * 4), "--frames",
                f"tracing the model on {frames} frames")


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
        opset: ONNX opset (default: the exporter's), within :func:`opset_range`.

    Returns:
        The metadata stored with the model.

    Raises:
        SsalInputError: the checks of :func:`check_export_args` and :func:`check_trace_memory`,
            an unreadable checkpoint, an exporter that did not write the requested opset
            (nothing is written then).
    """
    from .loading import load

    check_export_args(checkpoint, fmt, frames, opset)
    model = load(checkpoint, optimize=False)
    kind = "classifier" if model.has_classifier else "encoder"
    t = int(frames or model.clip_len or 75)
    check_trace_memory(model, t)
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
    from .onnx_model import disable_onnxruntime_telemetry

    disable_onnxruntime_telemetry()  # before the exporter's back end may import onnxruntime
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter's back end)
    except ImportError:
        raise SsalInputError(None, "ONNX export needs the packages onnx and onnxscript "
                                   "(pip install onnx onnxscript)") from None
    batch = torch.export.Dim("batch", min=1)
    time = torch.export.Dim("frames", min=1)
    # The exporter logs a failed opset conversion as a warning with a traceback and goes on
    # with its own opset: silenced here, checked on the written file below.
    quiet = [logging.getLogger(name) for name in ("onnxscript", "torch.onnx", "onnx_ir")]
    levels = [lg.level for lg in quiet]
    try:
        for lg in quiet:
            lg.setLevel(logging.CRITICAL)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                graph, (example,), dynamo=True, input_names=["x"],
                output_names=["probabilities" if graph.head is not None else "embedding"],
                dynamic_shapes=({0: batch, 2: time},), opset_version=opset, external_data=False,
                verbose=False, report=False,
            )
    finally:
        for lg, level in zip(quiet, levels):
            lg.setLevel(level)
    assert program is not None  # only the legacy exporter (dynamo=False) returns None
    program.model.metadata_props[METADATA_KEY] = json.dumps(meta)
    program.save(str(path), external_data=False)
    if opset is not None:
        written = _written_opset(path)
        if written != opset:
            raise SsalInputError("--opset", f"the exporter could not convert this model to opset {opset} "
                                            f"(it wrote opset {written}); nothing was written")


def _written_opset(path: Path) -> int | None:
    """The default-domain opset in a written ONNX file's ``opset_import``."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def _export_torchscript(model, example: Tensor, path: Path, meta: dict[str, Any]) -> None:
    from .model import fold_for_inference

    graph = InferenceGraph(fold_for_inference(model.encoder), model.head).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = torch.randn(3, 3, example.shape[2] + 5, example.shape[3])
        traced = torch.jit.trace(graph, example, check_inputs=[(other,)], check_tolerance=1e-4)
    torch.jit.save(traced, str(path), _extra_files={f"{METADATA_KEY}.json": json.dumps(meta)})



__all__ = ["CHECKPOINT_SUFFIXES", "FORMATS", "SUFFIXES", "InferenceGraph", "check_export_args", "check_trace_memory",
           "export_model", "opset_range"]
