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
    import stat

    from .data.preprocess import check_json_size
    from .errors import display_path, stat_input

    p = Path(path)
    where = display_path(p)
    st = stat_input(p, where)
    if not stat.S_ISREG(st.st_mode):
        raise SsalInputError(where, "config file is not a regular file")
    check_json_size(st.st_size, where)  # same budget as JSON files
    try:
        with open(p, "rb") as fh:
            text = fh.read(st.st_size + 1).decode("utf-8-sig")
        data = yaml.safe_load(text)
    except (yaml.YAMLError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise SsalInputError(where, f"not a valid YAML file ({(str(exc).splitlines() or [''])[0]})") from None
    except RecursionError:
        raise SsalInputError(where, "not a valid config file (nested too deeply)") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SsalInputError(where, "a config file must hold a mapping at the top level")
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


#: Allowed ranges of numeric settings: ``path -> (low, high, low_is_exclusive)``. A setting
#: outside its range (``train.epochs=-3``, ``train.lr=0``) is an error naming it.
RANGES: dict[str, tuple[float, float, bool]] = {
    "seed": (0, 2**63 - 1, False),
    "data.builtin_n": (1, 10**7, False),
    "data.builtin_seed": (0, 2**63 - 1, False),
    "data.val_fraction": (0.0, 0.99, False),
    "data.test_fraction": (0.0, 0.99, False),
    "data.split_seed": (0, 2**63 - 1, False),
    "train.lr": (0.0, 1e300, True),  # huge rates are allowed: they stop with "loss became nan"
    "train.weight_decay": (0.0, 1e4, False),
    "train.momentum": (0.0, 1.0, False),
    "train.batch_size": (1, 10**6, False),
    "train.epochs": (1, 10**7, False),
    "train.lr_gamma": (0.0, 1e4, True),
    "train.warmup_epochs": (0, 10**7, False),
    "run.knn_every": (0, 10**7, False),
    "run.knn_k": (1, 10**6, False),
    "run.knn_temperature": (0.0, 1e6, True),
    "run.max_steps": (1, 10**12, False),
    "run.threads": (1, 4096, False),
}
#: Settings whose default is ``None`` and which take a whole number when given.
OPTIONAL_INTS = ("run.max_steps", "run.threads")
#: Settings whose default is ``None`` and which take a text when given.
OPTIONAL_TEXTS = ("data.labels",)
#: Text settings that may also be a list of texts.
TEXT_OR_LIST = ("data.label_map",)


def _shown(value: Any) -> str:
    """A setting's value for a message: its type and (cut) text."""
    text = repr(value) if isinstance(value, str) else str(value)
    return f"{type(value).__name__} {text[:80]}"


def _check_range(path: str, number: float, value: Any) -> None:
    if path in RANGES:
        lo, hi, exclusive = RANGES[path]
        if number < lo or number > hi or (exclusive and number == lo):
            low = f"above {lo:g}" if exclusive else f"at least {lo:g}"
            raise SsalInputError(None, f"setting {path!r} must be {low} and at most {hi:g}, got {value!r}")


def _number(path: str, value: Any, whole: bool) -> int | float:
    try:
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError, OverflowError):
        number = None
    if number is None or number != number or number in (float("inf"), float("-inf")):
        raise SsalInputError(None, f"setting {path!r} must be a finite number, got {_shown(value)}")
    if whole:
        if number != int(number):
            raise SsalInputError(None, f"setting {path!r} must be a whole number, got {value!r}")
        result: int | float = int(value) if isinstance(value, int) else int(number)
    else:
        result = number
    _check_range(path, result, value)
    return result


def check_types(cfg: Mapping[str, Any], defaults: Mapping[str, Any] = DEFAULTS, where: str = "") -> dict[str, Any]:
    """Coerce settings to the type of their default, check their range, or raise.

    YAML reads ``1e30`` as a string and ``yes`` as a bool; a setting that cannot be the type of
    its default, or lies outside its range (:data:`RANGES`), is an error naming the setting
    instead of a traceback deep in the trainer (or a run that silently does nothing).
    """
    out = dict(cfg)
    for key, default in defaults.items():
        if key not in out:
            continue
        path = f"{where}.{key}" if where else str(key)
        value = out[key]
        if isinstance(default, dict):
            if default and not isinstance(value, Mapping):
                raise SsalInputError(None, f"setting {path!r} must be a section of settings, got {_shown(value)}")
            if isinstance(value, Mapping) and default:
                out[key] = check_types(value, default, path)
            continue
        if default is None:
            if value is None:
                continue
            if path in OPTIONAL_INTS:
                out[key] = _number(path, value, whole=True)
            elif path in OPTIONAL_TEXTS and not isinstance(value, str):
                raise SsalInputError(None, f"setting {path!r} must be a text (a path), got {_shown(value)}")
            continue
        if isinstance(default, str):
            ok = isinstance(value, str) or (
                path in TEXT_OR_LIST and isinstance(value, list) and value and all(isinstance(v, str) for v in value))
            if not ok:
                raise SsalInputError(None, f"setting {path!r} must be a text, got {_shown(value)}")
            continue
        if isinstance(default, list):
            if not isinstance(value, list) or len(value) > 10_000:
                raise SsalInputError(None, f"setting {path!r} must be a list, got {_shown(value)}")
            if all(isinstance(d, int) and not isinstance(d, bool) for d in default):
                out[key] = [_number(f"{path}[]", v, whole=True) for v in value]
                if any(v < 0 for v in out[key]):
                    raise SsalInputError(None, f"setting {path!r} must hold numbers >= 0, got {value!r}")
            continue
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise SsalInputError(None, f"setting {path!r} must be true or false, got {value!r}")
        elif isinstance(default, (int, float)):
            out[key] = _number(path, value, whole=isinstance(default, int))
    if not where:
        data = out.get("data")
        if isinstance(data, Mapping) and "val_fraction" in data and "test_fraction" in data:
            if float(data["val_fraction"]) + float(data["test_fraction"]) >= 1.0:
                raise SsalInputError(None, "settings 'data.val_fraction' + 'data.test_fraction' must be below 1")
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
