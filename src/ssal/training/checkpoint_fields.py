"""Validation of what a checkpoint says about its model, before anything is built.

A checkpoint (``encoder.pt``, ``classifier.pt``, a run's ``checkpoint.pt``) is user input: it
may come from anywhere. Its metadata are checked here field by field (type, range, size) so
that any bad value is one line naming the file, the field and the problem:

* ``layout``: a built-in layout name; ``classes``: 1..:data:`MAX_CLASSES` unique names;
  ``clip_len``: ``None`` or 1..``MAX_LENGTH`` frames; ``preprocess``: the typed
  :class:`~ssal.data.preprocess.PreprocessConfig`; ``feature``: ``"output"`` (``"fused"``) or
  ``"backbone"``;
  settings trees (``config``, ``encoder_config``): plain JSON-like values, at most
  :data:`MAX_TREE_NODES` nodes and :data:`MAX_TREE_DEPTH` levels;
* ``encoder_config`` goes through the same :func:`ssal.models.build_encoder` as a run's
  settings, first on PyTorch's ``meta`` device (shapes only, no memory): the parameter count
  must stay within :data:`MAX_ENCODER_PARAMETERS` and the largest activation of one sequence
  of ``clip_len`` frames within :data:`MAX_SAMPLE_ACTIVATION_BYTES`; only then is the real
  encoder built;
* weight dictionaries (``encoder``, ``head``, ``model``): string keys, tensor values, at most
  :data:`ssal.checkpoint.MAX_CHECKPOINT_BYTES` in total; the classifier head must be
  ``fc.weight`` ``(len(classes), feature size)`` and ``fc.bias`` ``(len(classes),)``.

The limits are generic (they do not name today's encoder widths), module attributes read at
call time, documented in docs/data.md ("Limits").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from ..errors import SsalInputError

#: Most parameters of an encoder rebuilt from a checkpoint (2**27: 512 MiB as float32).
MAX_ENCODER_PARAMETERS = 2**27
#: Largest single activation of one input sequence, in bytes (float32), estimated on the meta
#: device; inference batches are sized so that a batch stays within
#: :data:`INFERENCE_BATCH_BYTES`.
MAX_SAMPLE_ACTIVATION_BYTES = 64 * 2**20
#: Memory budget of one inference batch's largest activations (x4 for the tensors alive at once).
INFERENCE_BATCH_BYTES = 2**30
#: Most class names a checkpoint may list.
MAX_CLASSES = 1000
#: Longest class name.
MAX_NAME_CHARS = 200
#: Most nodes (values, list items, mapping entries) in a settings tree of a checkpoint.
MAX_TREE_NODES = 100_000
#: Deepest nesting of a settings tree.
MAX_TREE_DEPTH = 32
#: Features a checkpoint may name: the encoder's output ("fused" in ssal 0.1) or the backbone's.
FEATURES = ("output", "fused", "backbone")
#: Widest model output an exported file may declare (embedding size or class count).
MAX_OUTPUT_DIM = 2**16


def _fail(where: str, field: str, problem: str) -> SsalInputError:
    return SsalInputError(where, f"field {field!r}: {problem}")


def check_tree(value: Any, where: str, field: str) -> Any:
    """Refuse a settings tree that is not plain data (str, numbers, bools, None, lists,
    string-keyed mappings), too deep or too large."""
    count = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_TREE_NODES:
            raise _fail(where, field, f"more than {MAX_TREE_NODES} entries")
        if depth > MAX_TREE_DEPTH:
            raise _fail(where, field, f"nested deeper than {MAX_TREE_DEPTH} levels")
        if isinstance(node, Mapping):
            for k, v in node.items():
                if not isinstance(k, str):
                    raise _fail(where, field, f"a key of type {type(k).__name__}, expected text")
                stack.append((v, depth + 1))
        elif isinstance(node, (list, tuple)):
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise _fail(where, field, f"holds a non-finite number ({node})")
        elif not (node is None or isinstance(node, (str, int, bool))):
            raise _fail(where, field, f"holds a {type(node).__name__}, expected plain settings")
        elif isinstance(node, str) and len(node) > 100_000:
            raise _fail(where, field, "holds a text longer than 100000 characters")
    return value


def check_mapping(value: Any, where: str, field: str, required: bool = True) -> dict[str, Any] | None:
    """A settings mapping (checked by :func:`check_tree`), or ``None`` when absent and optional."""
    if value is None and not required:
        return None
    if not isinstance(value, Mapping):
        raise _fail(where, field, f"must be a mapping, got {type(value).__name__}")
    check_tree(value, where, field)
    return dict(value)


def check_whole(value: Any, where: str, field: str, lo: int, hi: int, what: str = "a whole number") -> int:
    """``value`` as a whole number in ``[lo, hi]`` (not a bool, not a float such as ``4.0``)."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        shown = repr(value) if isinstance(value, (int, float, str, type(None))) else type(value).__name__
        raise _fail(where, field, f"must be {what} from {lo} to {hi}, got {shown[:60]}")
    return int(value)


def check_choice(value: Any, where: str, field: str, choices: tuple[str, ...]) -> str:
    """``value`` as one of the texts ``choices``."""
    if not isinstance(value, str) or value not in choices:
        shown = repr(value[:40]) if isinstance(value, str) else type(value).__name__
        raise _fail(where, field, f"must be one of {', '.join(choices)}, got {shown}")
    return value


def check_text(value: Any, where: str, field: str, limit: int = MAX_NAME_CHARS, optional: bool = True) -> str | None:
    """``value`` as a text of at most ``limit`` characters (``None`` when optional)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise _fail(where, field, f"must be a text of at most {limit} characters, got "
                                  f"{type(value).__name__ if not isinstance(value, str) else f'{len(value)} characters'}")
    return value


def check_layout(value: Any, where: str, field: str = "layout"):
    """The built-in :class:`~ssal.skeleton.SkeletonLayout` named by ``value``."""
    from ..skeleton import LAYOUTS

    if not isinstance(value, str) or value not in LAYOUTS:
        shown = value if isinstance(value, str) else type(value).__name__
        raise _fail(where, field, f"unknown skeleton layout {shown!r}; built in: {', '.join(LAYOUTS)}")
    return LAYOUTS[value]


def check_classes(value: Any, where: str, field: str = "classes") -> list[str]:
    """1..MAX_CLASSES unique, non-empty class names."""
    if not isinstance(value, (list, tuple)):
        raise _fail(where, field, f"must be a list of class names, got {type(value).__name__}")
    if not 1 <= len(value) <= MAX_CLASSES:
        raise _fail(where, field, f"must list 1 to {MAX_CLASSES} class names, got {len(value)}")
    if not all(isinstance(c, str) and 0 < len(c) <= MAX_NAME_CHARS for c in value):
        raise _fail(where, field, f"class names must be texts of 1 to {MAX_NAME_CHARS} characters")
    if len(set(value)) != len(value):
        raise _fail(where, field, "class names repeat")
    return list(value)


def check_clip_len(value: Any, where: str, field: str = "clip_len") -> int | None:
    """``None`` or a whole number of frames in ``[1, MAX_LENGTH]``."""
    from ..data.preprocess import MAX_LENGTH

    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LENGTH:
        raise _fail(where, field, f"must be a whole number of frames from 1 to {MAX_LENGTH}, got {value!r}")
    return int(value)


def check_preprocess(value: Any, where: str, field: str = "preprocess"):
    """The typed :class:`~ssal.data.preprocess.PreprocessConfig` of a stored mapping."""
    from ..data.preprocess import PreprocessConfig

    if value is not None and not isinstance(value, Mapping):
        raise _fail(where, field, f"must be a mapping, got {type(value).__name__}")
    try:
        return PreprocessConfig.from_dict(dict(value) if value else None)
    except SsalInputError as exc:
        raise _fail(where, field, exc.one_line()) from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise _fail(where, field, str(exc)) from None


def stored_preprocess(ck: Mapping[str, Any], config: Mapping[str, Any] | None, where: str) -> Any:
    """The preprocessing mapping of a checkpoint: ``preprocess``, else ``config.preprocess``
    (``None`` when neither is given); never a truth test on a value of unknown type."""
    value = ck.get("preprocess")
    if value is None or (isinstance(value, Mapping) and not value):
        value = (config or {}).get("preprocess") if isinstance(config, Mapping) else None
    if value is not None and not isinstance(value, Mapping):
        raise _fail(where, "preprocess", f"must be a mapping, got {type(value).__name__}")
    return value


def check_tensor_dict(value: Any, where: str, field: str, max_bytes: int | None = None) -> dict[str, torch.Tensor]:
    """A ``{name: tensor}`` weight dictionary (non-empty, plain dense tensors, finite floats)."""
    from ..checkpoint import MAX_CHECKPOINT_BYTES

    limit = MAX_CHECKPOINT_BYTES if max_bytes is None else max_bytes
    if not isinstance(value, Mapping):
        raise _fail(where, field, f"must be a dictionary of weight tensors, got {type(value).__name__}")
    if not value:
        raise _fail(where, field, "holds no weights")
    total = 0
    for k, t in value.items():
        if not isinstance(k, str):
            raise _fail(where, field, f"a weight name of type {type(k).__name__}, expected text")
        if not isinstance(t, torch.Tensor):
            raise _fail(where, field, f"weight {k[:80]!r} is a {type(t).__name__}, not a tensor")
        if t.layout != torch.strided or t.is_quantized or t.is_complex():
            raise _fail(where, field, f"weight {k[:80]!r} is not a plain real tensor")
        total += t.numel() * t.element_size()
        if total > limit:
            raise _fail(where, field, f"weights larger than {limit} bytes")
        if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all()):
            raise _fail(where, field, f"weight {k[:80]!r} holds NaN or infinite values")
    return dict(value)


def estimate_encoder(cfg: Mapping[str, Any], layout, frames: int, where: str,
                     field: str = "encoder_config") -> tuple[int, int]:
    """``(parameter count, bytes of the largest activation of one sequence)`` of the encoder
    ``cfg`` on ``layout`` at ``frames`` frames, from a build and a forward pass on the meta
    device (no memory allocated); refuses the limits above.

    Raises:
        SsalInputError: a setting the encoder refuses, or a size beyond the limits.
    """
    from ..models import build_encoder

    check_tree(cfg, where, field)
    try:
        with torch.device("meta"):
            enc = build_encoder(cfg, layout)
        enc = enc.to("meta")
    except SsalInputError as exc:
        raise _fail(where, field, exc.problem) from None
    except Exception as exc:  # noqa: BLE001 - any failure of a hostile setting is a bad file
        raise _fail(where, field, f"the encoder cannot be built ({type(exc).__name__}: {exc})") from None
    params = sum(p.numel() for p in enc.parameters())
    if params == 0:
        raise _fail(where, field, "the encoder would have no parameters")
    if params > MAX_ENCODER_PARAMETERS:
        raise _fail(where, field, f"the encoder would have {params} parameters, more than the limit of "
                                  f"{MAX_ENCODER_PARAMETERS} (ssal.training.checkpoint_fields.MAX_ENCODER_PARAMETERS)")
    largest = [0]

    def hook(_module, _inputs, output) -> None:
        outs = output if isinstance(output, (tuple, list)) else (output,)
        for o in outs:
            if isinstance(o, torch.Tensor):
                largest[0] = max(largest[0], o.numel() * 4)

    handles = [m.register_forward_hook(hook) for m in enc.modules()]
    try:
        with torch.no_grad():
            enc.eval()(torch.empty(1, 3, int(frames), layout.num_joints, device="meta"))
    except Exception as exc:  # noqa: BLE001
        raise _fail(where, field, f"the encoder cannot run on {frames} frames ({type(exc).__name__}: {exc})") from None
    finally:
        for h in handles:
            h.remove()
    if largest[0] > MAX_SAMPLE_ACTIVATION_BYTES:
        raise _fail(where, field, f"one sequence of {frames} frames would need activations of {largest[0]} bytes, "
                                  f"more than the limit of {MAX_SAMPLE_ACTIVATION_BYTES} "
                                  f"(ssal.training.checkpoint_fields.MAX_SAMPLE_ACTIVATION_BYTES)")
    return int(params), int(largest[0])


def inference_batch(sample_bytes: int, requested: int) -> int:
    """The inference batch size that keeps a batch's activations within
    :data:`INFERENCE_BATCH_BYTES` (at least 1, at most ``requested``)."""
    if sample_bytes <= 0:
        return max(1, int(requested))
    return max(1, min(int(requested), INFERENCE_BATCH_BYTES // (4 * int(sample_bytes))))


def check_head(value: Any, where: str, num_classes: int, in_dim: int, field: str = "head") -> dict[str, torch.Tensor]:
    """A linear classifier head: ``fc.weight`` ``(num_classes, in_dim)``, ``fc.bias`` ``(num_classes,)``."""
    head = check_tensor_dict(value, where, field)
    expected = {"fc.weight": (num_classes, in_dim), "fc.bias": (num_classes,)}
    if set(head) != set(expected):
        raise _fail(where, field, f"expected the weights {sorted(expected)}, got {sorted(head)[:10]}")
    for name, shape in expected.items():
        if tuple(head[name].shape) != shape:
            raise _fail(where, field, f"{name} has shape {tuple(head[name].shape)}, expected {shape} "
                                      f"({num_classes} classes, feature size {in_dim})")
        if not head[name].is_floating_point():
            raise _fail(where, field, f"{name} holds {head[name].dtype} values, expected floats")
    return head
