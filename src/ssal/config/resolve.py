"""Resolve a run configuration: method preset, YAML file and ``--set`` overrides, typed.

Priority: command line (``--set key.sub=value``) > optional YAML file (``--config``) > method
preset (``ssal/config/methods/<method>.yaml``) > the schema defaults (:mod:`ssal.config.schema`).
Each layer is merged into the OmegaConf structured schema, which types its values and refuses
unknown keys; a wrong type, an unknown key or a value outside its range is one
:class:`~ssal.errors.SsalInputError` line naming the key, what it must be and what was given.
The resolved configuration is a plain ``dict`` (what ``config.yaml`` and checkpoints hold);
:func:`typed_config` gives the same as :class:`~ssal.config.schema.Config` dataclasses.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ..errors import SsalInputError
from . import yaml_safe
from .schema import (
    ENCODER_SCHEMAS,
    STRONG_SCHEMAS,
    AugmentConfig,
    Config,
    DataConfig,
    EncoderConfig,
    ModelConfig,
)
from .yaml_safe import MAX_YAML_BYTES

S = TypeVar("S")

#: The largest settings file read (a configuration is a few kB; this refuses a wrong file early):
#: the one YAML size budget, :data:`ssal.config.yaml_safe.MAX_YAML_BYTES`.
MAX_CONFIG_BYTES = MAX_YAML_BYTES

#: The settings every method shares, as plain values (``model`` is the preset's: see
#: :func:`resolve_config`). Derived from :class:`~ssal.config.schema.Config`.
DEFAULTS: dict[str, Any] = {**dataclasses.asdict(Config()), "model": {}}


def _ranges(cls: type, prefix: str = "") -> dict[str, tuple[float, float, bool]]:
    out: dict[str, tuple[float, float, bool]] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            out.update(_ranges(hints[f.name], f"{prefix}{f.name}."))
        elif "ge" in f.metadata or "gt" in f.metadata:
            exclusive = "gt" in f.metadata
            out[f"{prefix}{f.name}"] = (f.metadata["gt" if exclusive else "ge"], f.metadata.get("le", math.inf), exclusive)
    return out


#: Allowed ranges of the shared numeric settings: ``path -> (low, high, low_is_exclusive)``,
#: read from the schema's field metadata.
RANGES: dict[str, tuple[float, float, bool]] = {
    k: v for k, v in _ranges(Config).items() if not k.startswith("model.")
}


# ----------------------------------------------------------------------------- messages


def _shown(value: Any) -> str:
    """A given value for a message: its type and (cut) text."""
    if value is None:
        return "null"
    text = repr(value) if isinstance(value, str) else str(value)
    return f"{type(value).__name__} {text[:80]}"


def _type_name(hint: Any) -> str:
    """``Optional[list[int]]`` -> ``'a list of whole numbers or null'``."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Union:
        inner = [a for a in args if a is not type(None)]
        return f"{_type_name(inner[0])} or null"
    if typing.get_origin(hint) is list:
        return f"a list of {_type_name(args[0]).replace('a ', '', 1)}s" if args else "a list"
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a text"}.get(hint, "a value")


def _unwrap(hint: Any) -> tuple[Any, bool]:
    """``(base type, null allowed)`` of a field annotation."""
    if typing.get_origin(hint) is typing.Union:
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return inner[0], True
    return hint, hint is Any


def _node(obj: Any, parts: list[str]) -> tuple[Any, Any]:
    """The schema object at ``parts`` and the annotation of its last part (``None`` if unknown)."""
    hint = None
    for part in parts:
        if not dataclasses.is_dataclass(obj) or part not in {f.name for f in dataclasses.fields(obj)}:
            return None, None
        hint = typing.get_type_hints(type(obj))[part]
        obj = getattr(obj, part)
    return obj, hint


# ----------------------------------------------------------------------------- typing


def _variant(layers: list[Mapping[str, Any]], key: str, default: str, schemas: Mapping[str, type], path: str) -> Any:
    """A fresh instance of the schema that the last layer giving ``key`` names (else ``default``)."""
    name = default
    for layer in layers:
        name = layer.get(key, name)
    if not isinstance(name, str) or name not in schemas:  # a list or a mapping is no name either
        raise SsalInputError(None, f"setting {path!r} must be one of {', '.join(schemas)}, got {_shown(name)}")
    return schemas[name]()


def _choose_variants(obj: Any, layers: list[Mapping[str, Any]], prefix: str) -> Any:
    """A schema instance whose encoder / strong-view sections are the variants ``layers`` name."""
    if isinstance(obj, EncoderConfig):
        return _variant(layers, "name", obj.name, ENCODER_SCHEMAS, f"{prefix}name")
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if not dataclasses.is_dataclass(value):
            continue
        if isinstance(obj, AugmentConfig) and f.name == "strong":
            setattr(obj, f.name, _variant(layers, "strong_kind", obj.strong_kind, STRONG_SCHEMAS,
                                          f"{prefix}strong_kind"))
            continue
        sub = [layer[f.name] for layer in layers if isinstance(layer.get(f.name), Mapping)]
        setattr(obj, f.name, _choose_variants(value, sub, f"{prefix}{f.name}."))
    return obj


def _check_given_types(obj: Any, layer: Mapping[str, Any], where: str | None, prefix: str) -> None:
    """Refuse what OmegaConf would coerce silently: a non-boolean for a switch (``yes``, ``1``),
    a boolean for a number, a non-text for a text, a scalar for a section."""
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    for key, value in layer.items():
        if key not in names:
            continue  # OmegaConf names the unknown key
        path = f"{prefix}{key}"
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise SsalInputError(where, f"setting {path!r} must be a section of settings, got {_shown(value)}")
            _check_given_types(current, value, where, f"{path}.")
            continue
        base, nullable = _unwrap(hints[key])
        items = value if isinstance(value, list) and typing.get_origin(base) is list else [value]
        if typing.get_origin(base) is list:
            if value is not None and not isinstance(value, list):
                raise SsalInputError(where, f"setting {path!r} must be {_type_name(hints[key])}, got {_shown(value)}")
            base = (typing.get_args(base) or (Any,))[0]
        for item in items:
            bad = ((item is None and not nullable)
                   or (item is not None and ((base is bool and not isinstance(item, bool))
                                             or (base in (int, float) and isinstance(item, bool))
                                             or (base is str and not isinstance(item, str)))))
            if bad:
                raise SsalInputError(where, f"setting {path!r} must be {_type_name(hints[key])}, got {_shown(value)}")


def _check_values(obj: Any, where: str | None, prefix: str) -> None:
    """The field metadata of the schema: ranges, choices, list lengths; numbers finite."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        path = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            _check_values(value, where, f"{path}.")
            continue
        meta = f.metadata
        if "choices" in meta and value not in meta["choices"]:
            raise SsalInputError(where, f"setting {path!r} must be one of {', '.join(meta['choices'])}, "
                                        f"got {_shown(value)}")
        if isinstance(value, list) and "length" in meta and len(value) != meta["length"]:
            raise SsalInputError(where, f"setting {path!r} must hold {meta['length']} numbers, got {value!r}")
        if isinstance(value, list) and len(value) > 10_000:
            raise SsalInputError(where, f"setting {path!r} holds more than 10000 entries")
        for item in (value if isinstance(value, list) else [value]):
            if not isinstance(item, (int, float)) or isinstance(item, bool):
                continue
            if not math.isfinite(item):
                raise SsalInputError(where, f"setting {path!r} must be a finite number, got {value!r}")
            lo, hi = meta.get("gt", meta.get("ge")), meta.get("le")
            if (("gt" in meta and item <= lo) or ("ge" in meta and item < lo) or (hi is not None and item > hi)):
                low = f"above {lo:g}" if "gt" in meta else f"at least {lo:g}"
                high = f" and at most {hi:g}" if hi is not None else ""
                raise SsalInputError(where, f"setting {path!r} must be {low}{high}, got {value!r}")


def _check_relations(cfg: Any, where: str | None, prefix: str) -> None:
    """Settings that constrain each other."""
    if isinstance(cfg, Config):
        _check_relations(cfg.data, where, "data.")
        _check_relations(cfg.model, where, "model.")
    elif isinstance(cfg, DataConfig):
        _check_data(cfg, where, prefix)
    elif isinstance(cfg, ModelConfig):
        if cfg.mining_topk > cfg.queue_size:
            raise SsalInputError(where, f"setting '{prefix}mining_topk' must not exceed '{prefix}queue_size'")
        _check_relations(cfg.augment, where, f"{prefix}augment.")
    elif isinstance(cfg, AugmentConfig):
        strong = cfg.strong
        if getattr(strong, "spatial_mask_min_parts", 0) > getattr(strong, "spatial_mask_max_parts", 0):
            raise SsalInputError(where, f"setting '{prefix}strong.spatial_mask_min_parts' must not exceed "
                                        f"'{prefix}strong.spatial_mask_max_parts'")


def _texts(value: Any, empty_ok: bool = True) -> bool:
    """A text or a (short) list of texts; ``None`` when ``empty_ok``."""
    if value is None:
        return empty_ok
    if isinstance(value, str):
        return True
    return isinstance(value, list) and len(value) <= 10_000 and all(isinstance(v, str) for v in value)


def _check_data(data: DataConfig, where: str | None, prefix: str) -> None:
    """The ``data`` section's settings that constrain each other."""
    if not _texts(data.label_map) or data.label_map == []:
        raise SsalInputError(where, f"setting '{prefix}label_map' must be a text or a list of texts, "
                                    f"got {_shown(data.label_map)}")
    if data.val_fraction + data.test_fraction >= 1.0:
        raise SsalInputError(where, f"settings '{prefix}val_fraction' + '{prefix}test_fraction' must be below 1")
    for key in ("where", "rename"):
        value = getattr(data, key)
        if isinstance(value, Mapping) and key == "rename":
            value = [f"{k}={v}" for k, v in value.items()]
            setattr(data, key, value)
        if not _texts(value):
            raise SsalInputError(where, f"setting '{prefix}{key}' must be a text or a list of texts, got {_shown(value)}")
    units = data.units
    if isinstance(units, bool) or not (isinstance(units, str) or (isinstance(units, (int, float)) and units > 0)):
        raise SsalInputError(where, f"setting '{prefix}units' must be auto, m, cm, mm, in, cmu or a positive number "
                                    f"of metres per unit, got {_shown(units)}")
    if data.stride is not None and data.window is None:
        raise SsalInputError(where, f"setting '{prefix}stride' needs '{prefix}window'")
    if data.labels_from_name is None:
        for key in ("label_field", "where", "rename"):
            if getattr(data, key):
                raise SsalInputError(where, f"setting '{prefix}{key}' needs '{prefix}labels_from_name'")
        if data.group_by not in (None, "recording", "session"):
            raise SsalInputError(where, f"setting '{prefix}group_by' must be recording, session or a field of "
                                        f"'{prefix}labels_from_name' (none is set), got {_shown(data.group_by)}")
    elif data.labels is not None:
        raise SsalInputError(where, f"labels come either from '{prefix}labels' or from '{prefix}labels_from_name', "
                                    "not both")


def _legacy(layer: Mapping[str, Any]) -> dict[str, Any]:
    """Values of earlier ssal versions read as today's (``run.amp: true``, ``strong_kind: null``)."""
    out = copy.deepcopy(dict(layer))
    run = out.get("run")
    if isinstance(run, dict) and isinstance(run.get("amp"), bool):
        run["amp"] = "auto" if run["amp"] else "off"
    model = out.get("model")
    augment = model.get("augment") if isinstance(model, dict) else None
    if isinstance(augment, dict) and "strong_kind" in augment and augment["strong_kind"] is None:
        augment["strong_kind"] = "none"
    return out


def merge_typed(schema: type[S], layers: Iterable[tuple[Mapping[str, Any], str | None]], prefix: str = "") -> S:
    """``layers`` (``(values, where)``, lowest priority first) merged into ``schema`` and typed.

    ``prefix`` is the section's place in the whole configuration (``"model."``), for messages.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

    given = []
    for values, where in layers:
        if not isinstance(values, Mapping):
            raise SsalInputError(where, f"settings {prefix.rstrip('.') or 'of a config'} must be a mapping, "
                                        f"got {_shown(values)}")
        given.append((_legacy(values) if schema is Config else copy.deepcopy(dict(values)), where))
    try:
        base = _choose_variants(schema(), [v for v, _ in given], prefix)
    except SsalInputError as exc:  # name the layer that chose the variant
        raise SsalInputError(exc.where or (given[-1][1] if given else None), exc.problem) from None
    merged = OmegaConf.structured(base)
    for values, where in given:
        _check_given_types(base, values, where, prefix)
        try:
            merged = OmegaConf.merge(merged, OmegaConf.create(values))
        except ConfigKeyError as exc:
            key = f"{prefix}{exc.full_key}"
            parent, _ = _node(base, str(exc.full_key).split(".")[:-1])
            known = ", ".join(f.name for f in dataclasses.fields(parent)) if dataclasses.is_dataclass(parent) else "none"
            raise SsalInputError(where, f"unknown setting {key!r} (known here: {known})") from None
        except ValidationError as exc:
            full = str(exc.full_key)
            _, hint = _node(base, full.split("[")[0].split("."))
            want = _type_name(hint) if hint is not None else "of another type"
            raise SsalInputError(where, f"setting {prefix + full!r} must be {want}, got {_shown(exc.value if hasattr(exc, 'value') else None)}") from None
        except (OmegaConfBaseException, ValueError, TypeError) as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            raise SsalInputError(where, f"settings {prefix.rstrip('.') or 'of the run'}: {first}") from None
    obj = OmegaConf.to_object(merged)
    last = given[-1][1] if given else None
    _check_values(obj, last, prefix)
    _check_relations(obj, last, prefix)
    return obj  # type: ignore[return-value]


def typed_section(schema: type[S], values: S | Mapping[str, Any] | None, where: str | None = None,
                  prefix: str = "") -> S:
    """``values`` as a checked ``schema`` instance.

    A mapping is typed (merged into the schema, :func:`merge_typed`). An instance of ``schema``
    was typed at the door (:func:`resolve_config`, the engine) and is passed on as it is, after
    the cheap checks a hand-made instance could fail (types, ranges, choices, relations): a
    configuration is typed once, not again in every component it reaches."""
    if isinstance(values, schema):
        _check_given_types(values, dataclasses.asdict(typing.cast(Any, values)), where, prefix)
        _check_values(values, where, prefix)
        _check_relations(values, where, prefix)
        return values
    given: Mapping[str, Any]
    if dataclasses.is_dataclass(values) and not isinstance(values, type):
        given = dataclasses.asdict(values)  # another schema's instance: typed as a mapping
    else:
        given = {} if values is None else typing.cast(Mapping[str, Any], values)
    return merge_typed(schema, [(given, where)], prefix)


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
    """Turn ``["train.epochs=5", "model.queue_size=512"]`` into a nested dict (YAML values; a
    value that is not YAML is taken as text).

    Each value is read by the one budgeted YAML reader (:mod:`ssal.config.yaml_safe`): a value
    past a budget (aliases, expanded size, depth, length) is one error naming ``--set KEY``."""
    result: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise SsalInputError(None, f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        where = f"--set {key.strip()}"
        try:
            value = yaml_safe.load_text(raw, where, what="value") if raw != "" else None
        except yaml_safe.YamlRefused:
            raise
        except SsalInputError:
            # Not YAML (a name template such as {actor}_{emotion}): the text itself; a wrong
            # type is then refused by the schema with the key's name.
            value = raw
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SsalInputError(None, f"override {item!r} conflicts with another override")
        node[parts[-1]] = value
    return result


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from ``path`` (clear one-line errors for missing, oversized, malformed or
    expanding files: :mod:`ssal.config.yaml_safe`)."""
    from ..errors import display_path

    where = display_path(Path(path))
    data = yaml_safe.load_file(path, where, what="config file", invalid="not a valid YAML file")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SsalInputError(where, "a config file must hold a mapping at the top level")
    return data


def resolve_config(method: str = "ssal", config_file: str | Path | None = None,
                   overrides: Mapping[str, Any] | Iterable[str] | None = None) -> dict[str, Any]:
    """Schema defaults <- method preset <- optional YAML file <- overrides, typed and checked.

    Returns the configuration as plain values (the ``config.yaml`` of a run)."""
    from .presets import load_method_config

    layers: list[tuple[Mapping[str, Any], str | None]] = [
        ({"method": method, **load_method_config(method)}, f"{method}.yaml")]
    if config_file is not None:
        from ..errors import display_path

        layers.append((read_yaml(config_file), display_path(Path(config_file))))
    if overrides:
        if not isinstance(overrides, Mapping):
            overrides = parse_overrides(overrides)
        layers.append((overrides, None))
    return as_plain(merge_typed(Config, layers))


def validate_config(cfg: Mapping[str, Any], where: str | None = None) -> dict[str, Any]:
    """A saved configuration (a run's ``config.yaml`` or a checkpoint's) typed and checked again."""
    return as_plain(merge_typed(Config, [(cfg, where)]))


def typed_config(cfg: Config | Mapping[str, Any]) -> Config:
    """The configuration as :class:`~ssal.config.schema.Config` dataclasses."""
    return cfg if isinstance(cfg, Config) else merge_typed(Config, [(cfg, None)])


def as_plain(cfg: Any) -> dict[str, Any]:
    """A schema instance as plain nested dicts and lists (field order kept)."""
    return dataclasses.asdict(cfg)


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
