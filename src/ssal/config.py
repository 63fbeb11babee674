"""Strict run configuration: packaged YAML presets, command-line overrides, resolved copy.

Priority: command line (``--set key.sub=value``) > method preset (``methods/configs/*.yaml``)
> :data:`DEFAULTS`. Every key given by a user must already exist in the merged defaults: an
unknown key is an error naming the key, never silently ignored. The resolved configuration is
written into the run directory (``config.yaml``) so a run explains itself.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from .errors import SsalInputError

#: Settings shared by every method. The ``model`` and ``train`` sections come from the method
#: preset (``ssal.methods.configs``), which may only refine the keys listed here for ``train``.
DEFAULTS: dict[str, Any] = {
    "method": "ssal",
    "seed": 0,
    "data": {
        # "builtin" (the synthetic corpus), or a path readable by ssal.data.io.load_dataset.
        "source": "builtin",
        # Size and seed of the built-in corpus (ignored for files).
        "builtin_n": 2000,
        "builtin_seed": 0,
        # Optional explicit labels file (E-Gait labels.h5, BVH labels.csv).
        "labels": None,
        # Names of the label values 0, 1, ...: "egait" (happy, angry, sad, neutral), "step"
        # (angry, neutral, happy, sad; STEP's code) or comma-separated names (SPEC: disputed).
        "label_map": "egait",
        # Centring of raw sources and the built-in corpus (ssal.data.preprocess): "per_frame"
        # (pose relative to the pelvis), "first_frame" (E-Gait's walking path kept) or "none".
        # .ssal corpora are stored preprocessed and keep theirs.
        "center": "per_frame",
        # Seeded stratified split (SPEC: there is no official E-Gait split).
        "val_fraction": 0.1,
        "test_fraction": 0.1,
        "split_seed": 0,
    },
    "train": {
        "optimizer": "sgd",
        "lr": 0.1,
        "weight_decay": 1.0e-4,
        "momentum": 0.9,
        "nesterov": False,
        "batch_size": 128,
        "epochs": 300,
        "lr_milestones": [250],
        "lr_gamma": 0.1,
        "warmup_epochs": 0,
    },
    "model": {},
    "run": {
        # "auto" takes CUDA when present, else the CPU.
        "device": "auto",
        # Mixed precision of the training step: "auto" (bf16 autocast on CUDA, fp32 on the CPU),
        # "bf16" (bf16 autocast on any device, the CPU included), "off" (fp32). The losses are
        # always computed in fp32. true / false of ssal 0.1 read as "auto" / "off".
        "amp": "auto",
        # torch.compile of the encoders' feature_maps (query and key encoder), off by default.
        "compile": False,
        # torch.compile backend when compile is on: "inductor" (code generation; needs a C/C++
        # compiler on the CPU), or "aot_eager" / "eager" (tracing only, for checks).
        "compile_backend": "inductor",
        # kNN monitor on the validation split every N epochs (0 = off).
        "knn_every": 5,
        "knn_k": 20,
        "knn_temperature": 0.1,
        # Stop after this many optimisation steps in total (None = run all epochs); for tests.
        "max_steps": None,
        # torch intra-op threads (None = torch's default).
        "threads": None,
        "tensorboard": False,
        "progress": True,
        # BatchNorm under torchrun (docs/distributed.md): "shuffle" (MoCo's shuffle-BN for the
        # key encoder), "sync" (SyncBatchNorm everywhere, CUDA only) or "local" (per-rank BN).
        "dist_bn": "shuffle",
    },
}


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any], where: str = "",
               strict: bool = True) -> dict[str, Any]:
    """``override`` merged into a copy of ``base``; unknown keys are an error when ``strict``."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in out:
            if strict:
                known = ", ".join(sorted(map(str, out))) or "none"
                raise SsalInputError(None, f"unknown setting {path!r} (known here: {known})")
            out[key] = copy.deepcopy(value)
        elif isinstance(out[key], dict) and isinstance(value, Mapping):
            # A section that is empty in the base accepts any keys (validated by its owner).
            out[key] = deep_merge(out[key], value, path, strict=strict and bool(out[key]))
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Turn ``["train.epochs=5", "model.queue_size=512"]`` into a nested dict (YAML values)."""
    result: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise SsalInputError(None, f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError as exc:
            raise SsalInputError(None, f"override {item!r}: value is not valid YAML ({exc})") from None
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SsalInputError(None, f"override {item!r} conflicts with another override")
        node[parts[-1]] = value
    return result


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from ``path`` (clear one-line errors for missing or malformed files)."""
    p = Path(path)
    if not p.is_file():
        raise SsalInputError(p, "config file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SsalInputError(p, f"not a valid YAML file ({str(exc).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SsalInputError(p, "a config file must hold a mapping at the top level")
    return data


def resolve_config(method: str = "ssal", config_file: str | Path | None = None,
                   overrides: Mapping[str, Any] | Iterable[str] | None = None) -> dict[str, Any]:
    """Defaults <- method preset <- optional YAML file <- overrides, strictly merged."""
    from .methods.moco import load_method_config  # methods are downstream of config

    preset = load_method_config(method)
    cfg = deep_merge(DEFAULTS, {"method": method}, strict=True)
    cfg["model"] = copy.deepcopy(preset.get("model", {}))
    cfg = deep_merge(cfg, {k: v for k, v in preset.items() if k != "model"}, strict=True)
    if config_file is not None:
        cfg = deep_merge(cfg, read_yaml(config_file), strict=True)
    if overrides:
        if not isinstance(overrides, Mapping):
            overrides = parse_overrides(overrides)
        cfg = deep_merge(cfg, overrides, strict=True)
    return check_types(cfg)


def check_types(cfg: Mapping[str, Any], defaults: Mapping[str, Any] = DEFAULTS, where: str = "") -> dict[str, Any]:
    """Coerce settings whose default is a number or a switch to that type, or raise.

    YAML reads ``1e30`` as a string and ``yes`` as a bool; a setting that cannot be the type of
    its default is an error naming the setting instead of a traceback deep in the trainer.
    """
    out = dict(cfg)
    for key, default in defaults.items():
        if key not in out:
            continue
        path = f"{where}.{key}" if where else str(key)
        value = out[key]
        if isinstance(default, dict):
            if isinstance(value, Mapping) and default:
                out[key] = check_types(value, default, path)
            continue
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise SsalInputError(None, f"setting {path!r} must be true or false, got {value!r}")
        elif isinstance(default, (int, float)):
            try:
                number = float(value) if not isinstance(value, bool) else None
            except (TypeError, ValueError):
                number = None
            if number is None or number != number or number in (float("inf"), float("-inf")):
                raise SsalInputError(None, f"setting {path!r} must be a finite number, got {value!r}")
            if isinstance(default, int):
                if number != int(number):
                    raise SsalInputError(None, f"setting {path!r} must be a whole number, got {value!r}")
                out[key] = int(number)
            else:
                out[key] = number
    return out


def clip_len(config: Mapping[str, Any] | None) -> int | None:
    """The pretraining clip length of a resolved configuration (``None`` if it names none).

    Evaluation resizes whole sequences to this length, so the encoder sees the temporal
    scale it was pretrained on.
    """
    augment = ((config or {}).get("model") or {}).get("augment") or {}
    value = (augment.get("general") or {}).get("clip_len")
    return None if value is None else int(value)


def dump_config(cfg: Mapping[str, Any]) -> str:
    """The configuration as YAML text (key order kept)."""
    return yaml.safe_dump(dict(cfg), sort_keys=False)
