"""Running a model exported by ``ssal export`` to ONNX, through onnxruntime.

:func:`load_onnx` gives an :class:`OnnxEmotionModel`: the same ``predict`` / ``embed`` as a
checkpoint's :class:`~ssal.inference.model.EmotionModel`, with input preparation (reading,
preprocessing, resizing to ``clip_len``) from the file's ssal metadata
(:func:`read_onnx_metadata`, written by :mod:`ssal.inference.export`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..data.preprocess import PreprocessConfig
from ..errors import SsalInputError, display_path, stat_input
from ..skeleton import SkeletonLayout
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

    def embed(self, data: Any, batch_size: int | None = None) -> np.ndarray:
        """Embeddings ``(N, D)``, from an exported ``encoder.pt``."""
        if self.kind != "encoder":
            raise SsalInputError(None, "this ONNX model outputs probabilities; export encoder.pt for embeddings")
        with torch.inference_mode():
            return self._finite(self._run(self.prepare(data), batch_size, self.encoder.out_dim, self.encoder),
                                "features")

    def predict(self, data: Any, batch_size: int | None = None) -> np.ndarray:
        """Probabilities ``(N, num_classes)``, from an exported ``classifier.pt``."""
        if self.kind != "classifier":
            raise SsalInputError(None, "this ONNX model is an exported encoder without a classifier; "
                                       "export a classifier.pt to predict")
        with torch.inference_mode():
            return self._finite(self._run(self.prepare(data), batch_size, len(self.classes), self.encoder),
                                "probabilities")


#: Kinds of exported model: probabilities (a classifier) or embeddings (an encoder).
KINDS = ("classifier", "encoder")
#: Fields every exported file's metadata must hold (``clip_len`` may be ``null``).
REQUIRED_FIELDS = ("version", "kind", "layout", "classes", "preprocess", "clip_len", "out_dim")
#: Largest ssal metadata text read from a file (the JSON object of :func:`read_onnx_metadata`).
MAX_METADATA_CHARS = 4 * 2**20
#: Element types accepted for a graph's input and output.
_FLOAT_TYPES = ("tensor(float)", "tensor(double)", "tensor(float16)")


@dataclass(frozen=True)
class ExportMetadata:
    """The checked ssal metadata of an exported file (:func:`check_export_metadata`)."""

    kind: str
    layout: SkeletonLayout
    classes: list[str]
    preprocess: PreprocessConfig
    clip_len: int | None
    out_dim: int
    raw: dict[str, Any]
    #: Bytes of the largest activation of one sequence of ``clip_len`` frames, estimated from
    #: ``encoder_config`` on the meta device (0 without one); sizes the inference batches.
    sample_bytes: int = 0


def check_export_metadata(meta: Any, where: str) -> ExportMetadata:
    """Validate the ssal metadata object of an exported file (ONNX ``metadata_props["ssal"]``,
    TorchScript extra file ``ssal.json``): every field :func:`load_onnx` and
    :class:`~ssal.inference.model.EmotionModel` use, with the checkpoint validators of
    :mod:`ssal.training.checkpoint_fields`.

    * ``version``: exactly :data:`METADATA_VERSION`; ``kind``: one of :data:`KINDS`;
    * ``layout`` (a built-in layout), ``classes`` (1..MAX_CLASSES unique names), ``preprocess``
      (a typed :class:`PreprocessConfig`), ``clip_len`` (``null`` or 1..MAX_LENGTH frames);
    * ``out_dim``: a whole number in 1..MAX_OUTPUT_DIM, equal to ``len(classes)`` for a classifier;
    * optional, informational: ``source``, ``method`` (texts), ``feature`` (one of FEATURES),
      ``example_frames`` (1..MAX_LENGTH), ``encoder_config`` (a plain settings mapping that
      builds an encoder within the checkpoint limits: parameters, activation of one sequence of
      ``clip_len`` frames, estimated on the meta device; it sizes the inference batches).

    Every field must be plain JSON data within the settings-tree limits.

    Raises:
        SsalInputError: one line naming ``where`` and the field.
    """
    from ..data.preprocess import MAX_LENGTH
    from ..training import checkpoint_fields as fields

    if not isinstance(meta, Mapping):
        raise SsalInputError(where, f"ssal metadata must be a JSON object, got {type(meta).__name__}")
    if len(meta) > 64:
        raise SsalInputError(where, f"ssal metadata has {len(meta)} fields, expected at most 64")
    for key, value in meta.items():
        if not isinstance(key, str):
            raise SsalInputError(where, f"ssal metadata has a key of type {type(key).__name__}")
        fields.check_tree(value, where, key[:60])
    for name in REQUIRED_FIELDS:
        if name not in meta:
            raise SsalInputError(where, f"field {name!r}: missing from the ssal metadata (not written by `ssal export`?)")
    version = meta["version"]
    if type(version) is not int or version != METADATA_VERSION:
        shown = repr(version)[:40] if isinstance(version, (int, float, str)) else type(version).__name__
        raise SsalInputError(where, f"field 'version': unknown ssal metadata version {shown} "
                                    f"(this ssal reads version {METADATA_VERSION})")
    kind = fields.check_choice(meta["kind"], where, "kind", KINDS)
    layout = fields.check_layout(meta["layout"], where)
    classes = fields.check_classes(meta["classes"], where)
    if not isinstance(meta["preprocess"], Mapping):
        raise SsalInputError(where, f"field 'preprocess': must be a mapping, got {type(meta['preprocess']).__name__}")
    preprocess = fields.check_preprocess(meta["preprocess"], where)
    clip_len = fields.check_clip_len(meta["clip_len"], where)
    out_dim = fields.check_whole(meta["out_dim"], where, "out_dim", 1, fields.MAX_OUTPUT_DIM)
    if kind == "classifier" and out_dim != len(classes):
        raise SsalInputError(where, f"field 'out_dim': a classifier outputs one probability per class "
                                    f"({len(classes)}), got {out_dim}")
    fields.check_text(meta.get("source"), where, "source", limit=1000)
    fields.check_text(meta.get("method"), where, "method")
    if meta.get("feature") is not None:
        fields.check_choice(meta.get("feature"), where, "feature", fields.FEATURES)
    if meta.get("example_frames") is not None:
        fields.check_whole(meta.get("example_frames"), where, "example_frames", 1, MAX_LENGTH)
    cfg = fields.check_mapping(meta.get("encoder_config"), where, "encoder_config", required=False)
    sample_bytes = 0
    if cfg is not None:
        from .model import upgrade_encoder_config

        frames = clip_len or preprocess.length
        _, sample_bytes = fields.estimate_encoder(upgrade_encoder_config(cfg), layout, frames, where)
    return ExportMetadata(kind=kind, layout=layout, classes=classes, preprocess=preprocess, clip_len=clip_len,
                          out_dim=out_dim, raw=dict(meta), sample_bytes=sample_bytes)


def read_onnx_metadata(path: str | Path, session=None) -> dict[str, Any]:
    """The ssal metadata object stored in an exported ONNX file, checked by
    :func:`check_export_metadata`."""
    return _read_metadata(path, session).raw


def _read_metadata(path: str | Path, session=None) -> ExportMetadata:
    where = display_path(path)
    if session is None:
        session = _session(path)
    try:
        raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own exception types
        raise SsalInputError(where, f"cannot read the ONNX model's metadata ({str(exc)[:200]})") from None
    if raw is None:
        raise SsalInputError(where, "ONNX model was not exported by `ssal export` (no ssal metadata)")
    if len(raw) > MAX_METADATA_CHARS:
        raise SsalInputError(where, f"ONNX model's ssal metadata has {len(raw)} characters, more than the limit "
                                    f"of {MAX_METADATA_CHARS} (ssal.inference.onnx_model.MAX_METADATA_CHARS)")
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError):
        raise SsalInputError(where, "ONNX model's ssal metadata is not valid JSON") from None
    return check_export_metadata(meta, where)


def check_graph(session, meta: ExportMetadata, where: str) -> None:
    """Refuse a graph whose declared input and output do not fit ``meta``: one float input
    ``(N, 3, T, V)`` (V: the layout's joints; N dynamic; T dynamic or ``clip_len``) and a float
    output ``(N, out_dim)``, so that a model that cannot run on ssal's batches is refused when
    it is loaded, not when it predicts."""
    v = meta.layout.num_joints
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise SsalInputError(where, f"the ONNX model has {len(inputs)} inputs, expected one (N, 3, T, {v})")
    if not outputs:
        raise SsalInputError(where, "the ONNX model has no output")
    inp, out = inputs[0], outputs[0]
    if inp.type not in _FLOAT_TYPES or out.type not in _FLOAT_TYPES:
        raise SsalInputError(where, f"the ONNX model's input and output must be float tensors, got "
                                    f"{str(inp.type)[:40]} -> {str(out.type)[:40]}")
    shape = list(inp.shape) if inp.shape is not None else None

    def fixed(d: Any) -> bool:
        return isinstance(d, int) and not isinstance(d, bool) and d > 0

    expected = f"(N, 3, T, {v}) for layout {meta.layout.name!r}"
    if shape is None or len(shape) != 4:
        raise SsalInputError(where, f"the ONNX model's input has shape {_shape_text(shape)}, expected {expected}")
    if (fixed(shape[1]) and shape[1] != 3) or (fixed(shape[3]) and shape[3] != v):
        raise SsalInputError(where, f"the ONNX model's input has shape {_shape_text(shape)}, expected {expected}")
    if fixed(shape[0]):
        raise SsalInputError(where, f"the ONNX model's input has a fixed batch size of {shape[0]} "
                                    f"({_shape_text(shape)}); ssal needs a dynamic batch size")
    if fixed(shape[2]) and shape[2] != meta.clip_len:
        raise SsalInputError(where, f"the ONNX model's input has a fixed length of {shape[2]} frames, but field "
                                    f"'clip_len' is {meta.clip_len}")
    oshape = list(out.shape) if out.shape is not None else None
    if oshape is None or len(oshape) != 2 or not fixed(oshape[1]) or oshape[1] != meta.out_dim or fixed(oshape[0]):
        what = "probabilities" if meta.kind == "classifier" else "embeddings"
        raise SsalInputError(where, f"the ONNX model's output has shape {_shape_text(oshape)}, but its metadata "
                                    f"declares {what} (N, {meta.out_dim}) (field 'out_dim')")


def _shape_text(shape: list[Any] | None) -> str:
    if shape is None:
        return "(unknown)"
    return "(" + ", ".join(str(d) if isinstance(d, int) else "?" for d in shape[:8]) + (", ..." if len(shape) > 8 else "") + ")"


def disable_onnxruntime_telemetry() -> None:
    """Turn onnxruntime's telemetry off: imported without ``ORT_DISABLE_TELEMETRY`` in the
    environment, onnxruntime writes a device id and an event database under
    ``~/.cache/Microsoft/DeveloperTools`` (``$XDG_CACHE_HOME``); with it, reading a model writes
    nothing. Call before onnxruntime is imported (a user's explicit setting is kept); its
    telemetry events are switched off too when it is already imported."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    ort = sys.modules.get("onnxruntime")
    if ort is not None and hasattr(ort, "disable_telemetry_events"):
        try:
            ort.disable_telemetry_events()
        except Exception:  # noqa: BLE001 - a build without telemetry
            pass


def _onnxruntime(where: str | None = None):
    """onnxruntime, imported with its telemetry off (:func:`disable_onnxruntime_telemetry`)."""
    disable_onnxruntime_telemetry()
    try:
        import onnxruntime as ort
    except ImportError:
        raise SsalInputError(where, "running an ONNX model needs onnxruntime (pip install onnxruntime)") from None
    disable_onnxruntime_telemetry()
    return ort


def _session(path: str | Path):
    from ..checkpoint import MAX_CHECKPOINT_BYTES

    where = display_path(path)
    ort = _onnxruntime(where)
    st = stat_input(Path(path), where)
    if not stat.S_ISREG(st.st_mode):
        raise SsalInputError(where, "not a regular file" if not stat.S_ISDIR(st.st_mode)
                             else "is a directory, expected an ONNX file")
    if st.st_size > MAX_CHECKPOINT_BYTES:
        raise SsalInputError(where, f"ONNX file of {st.st_size} bytes is larger than the limit of "
                                    f"{MAX_CHECKPOINT_BYTES} bytes (ssal.checkpoint.MAX_CHECKPOINT_BYTES)")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: no warnings on stderr
    try:
        # onnxruntime prints "EP Error ... retrying" on stdout before it raises for a damaged
        # file; the refusal below is the one line the user sees.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise SsalInputError(where, f"not a readable ONNX model ({first})") from None


class OnnxRunner(nn.Module):
    """An onnxruntime session behind the module interface ``EmotionModel`` calls: float32
    ``(N, 3, T, V)`` in, the exported output (embeddings or probabilities) out; an output of
    another shape, or a failure inside onnxruntime, is a one-line error naming the file."""

    def __init__(self, session, out_dim: int, where: str | None = None) -> None:
        super().__init__()
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.out_dim = out_dim
        self.where = where

    def forward(self, x: Tensor) -> Tensor:
        arr = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        try:
            out = self.session.run(None, {self.input_name: arr})[0]
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own exception types
            first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            raise SsalInputError(self.where, f"onnxruntime cannot run the model on input {tuple(arr.shape)} "
                                             f"({first})") from None
        out = np.asarray(out)
        if out.shape != (arr.shape[0], self.out_dim):
            raise SsalInputError(self.where, f"the ONNX model returned shape {tuple(out.shape)} for input "
                                             f"{tuple(arr.shape)}, expected ({arr.shape[0]}, {self.out_dim})")
        return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))


def load_onnx(path: str | Path):
    """An :class:`~ssal.inference.model.EmotionModel` that runs an ``ssal export`` ONNX file through
    onnxruntime: ``predict`` for an exported classifier, ``embed`` for an exported encoder.

    The metadata are checked by :func:`check_export_metadata` and the graph's declared shapes
    against them by :func:`check_graph`; inference batches are sized from the stored encoder
    settings (as for a checkpoint, within ``INFERENCE_BATCH_BYTES``).
    """
    from ..training import checkpoint_fields as fields

    where = display_path(path)
    session = _session(path)
    meta = _read_metadata(path, session)
    check_graph(session, meta, where)
    raw = {**meta.raw, "_where": where}
    runner = OnnxRunner(session, meta.out_dim, where)
    return OnnxEmotionModel(encoder=runner, head=None, layout=meta.layout,  # type: ignore[arg-type]
                            classes=meta.classes, preprocess=meta.preprocess, clip_len=meta.clip_len, meta=raw,
                            kind=meta.kind, batch_size=fields.inference_batch(meta.sample_bytes, 512))


__all__ = ["KINDS", "METADATA_KEY", "METADATA_VERSION", "REQUIRED_FIELDS", "ExportMetadata", "OnnxEmotionModel",
           "OnnxRunner", "check_export_metadata", "check_graph",
           "disable_onnxruntime_telemetry", "load_onnx", "read_onnx_metadata"]
