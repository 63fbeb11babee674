"""Typed YAML files of the experiments: benchmark specs (``specs/``) and run schedules
(``schedules/``), read by one loader.

A file is a shipped name (``bandai-affect``, ``quick``: a file of the package folder) or the
path of a ``.yaml`` file. ``extends: BASE`` merges the file over its base (mappings merge key by
key, anything else replaces; a relative path is relative to the file that extends it). YAML
anchors and aliases are refused (no billion-laughs expansion; the file is read by the one
budgeted YAML reader, :mod:`ssal.config.yaml_safe`, with an alias budget of 0), and
:func:`typed` builds a dataclass from a mapping, refusing unknown keys and mistyped values with
one line that names the file and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from ..config import deep_merge, yaml_safe
from ..errors import SsalInputError, display_path

YAML_SUFFIXES = (".yaml", ".yml")
#: Largest file read (a spec or a schedule is a page of text): the one YAML size budget.
MAX_YAML_BYTES = yaml_safe.MAX_YAML_BYTES
#: Levels of ``extends:`` followed.
MAX_EXTENDS = 4


@dataclass(frozen=True)
class YamlKind:
    """One kind of file: its package folder and the words of its messages."""

    folder: str   # the shipped files: ``ssal/experiments/<folder>/<name>.yaml``
    noun: str     # "benchmark spec"
    short: str    # "spec"
    unknown: str  # "benchmark" (in "unknown benchmark 'x'")
    arg: str      # where an unknown shipped name is reported ("SPEC")


def shipped(kind: YamlKind) -> list[str]:
    """Names of the files of ``kind`` shipped in the package."""
    folder = resources.files("ssal.experiments") / kind.folder
    return sorted(p.name.rsplit(".", 1)[0] for p in folder.iterdir() if p.name.endswith(YAML_SUFFIXES))


def _text(kind: YamlKind, name_or_path: str) -> tuple[str, str]:
    """``(text, where)`` of a shipped name or a path; ``where`` names it in messages."""
    p = Path(name_or_path)
    if p.suffix.lower() in YAML_SUFFIXES or p.exists():
        where = display_path(p)
        if not p.is_file():
            raise SsalInputError(where, f"{kind.noun} not found")
        return yaml_safe.read_text(p, where, what=kind.noun), where
    names = shipped(kind)
    if name_or_path not in names:
        raise SsalInputError(kind.arg, f"unknown {kind.unknown} {name_or_path!r}; shipped: {', '.join(names)} "
                                       f"(or give the path of a .yaml {kind.short})")
    f = resources.files("ssal.experiments") / kind.folder / f"{name_or_path}.yaml"
    return f.read_text(encoding="utf-8"), f"{kind.short} {name_or_path}"


def read_extending(kind: YamlKind, name_or_path: str, depth: int = 0) -> tuple[dict[str, Any], str]:
    """The file's mapping with ``extends: BASE`` merged over its base, and where it was read."""
    text, where = _text(kind, name_or_path)
    raw = yaml_safe.load_text(text, where, aliases=0, what=kind.short)
    if not isinstance(raw, Mapping):
        raise SsalInputError(where, f"a {kind.noun} is a mapping of keys")
    raw = dict(raw)
    base_name = raw.pop("extends", None)
    if base_name is None:
        return raw, where
    if not isinstance(base_name, str) or depth >= MAX_EXTENDS:
        raise SsalInputError(where, f"extends: expected the name or path of one {kind.short} "
                                    f"(at most {MAX_EXTENDS} levels)")
    here = Path(name_or_path)
    if Path(base_name).suffix.lower() in YAML_SUFFIXES and not Path(base_name).is_absolute() and here.is_file():
        base_name = str(here.parent / base_name)  # a path is relative to the file that extends it
    base, _ = read_extending(kind, base_name, depth + 1)
    return deep_merge(base, raw, strict=False), where


def typed(cls: type, data: Any, where: str, key: str) -> Any:
    """Build dataclass ``cls`` from a mapping, refusing unknown or missing keys and mistyped values.

    Values are checked by the field's annotation: whole numbers are ``>= 0``, numbers
    (``float``) positive, a ``tuple[int, ...]`` a list of whole numbers ``>= 0``, a
    ``tuple[float, ...]`` a list of positive numbers; ``... | None`` also takes ``null``.
    """
    if not isinstance(data, Mapping):
        raise SsalInputError(where, f"{key}: expected a mapping, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise SsalInputError(where, f"{key}: unknown key(s) {', '.join(map(str, unknown))} "
                                    f"(known: {', '.join(known)})")
    missing = [k for k, f in known.items()
               if k not in data and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise SsalInputError(where, f"{key}: missing key(s) {', '.join(missing)}")
    out = {k: coerce(known[k].type, v, where, f"{key}.{k}" if key else k) for k, v in data.items()}
    try:
        return cls(**out)
    except TypeError as exc:
        raise SsalInputError(where, f"{key}: {exc}") from None


def values(v: Any, where: str, key: str) -> tuple[str, ...]:
    """A value or a list of values (text or whole numbers), as text."""
    if isinstance(v, (str, int)) and not isinstance(v, bool):
        return (str(v),)
    if isinstance(v, list) and all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in v):
        return tuple(str(x) for x in v)
    raise SsalInputError(where, f"{key}: expected a value or a list of values")


def _whole(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _positive(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0


def coerce(annotation: Any, v: Any, where: str, key: str) -> Any:
    """``v`` checked against the (string) annotation of a dataclass field (:func:`typed`)."""
    t = str(annotation)
    if v is None and t.endswith("| None"):
        return None
    if t.startswith("dict[str, tuple[str"):
        if not isinstance(v, Mapping):
            raise SsalInputError(where, f"{key}: expected field -> values")
        return {str(k): values(x, where, f"{key}.{k}") for k, x in v.items()}
    if t.startswith("tuple[str, ...]"):
        return values(v, where, key)
    if t.startswith("tuple[int"):
        if not isinstance(v, list) or not all(_whole(x) for x in v):
            raise SsalInputError(where, f"{key}: expected a list of whole numbers >= 0")
        return tuple(v)
    if t.startswith("tuple[float"):
        if not isinstance(v, list) or not all(_positive(x) for x in v):
            raise SsalInputError(where, f"{key}: expected a list of positive numbers")
        return tuple(float(x) for x in v)
    if t.startswith("int"):
        if not _whole(v):
            raise SsalInputError(where, f"{key}: expected a whole number >= 0, got {v!r}")
        return v
    if t.startswith("float"):
        if not _positive(v):
            raise SsalInputError(where, f"{key}: expected a positive number, got {v!r}")
        return float(v)
    if t.startswith("str"):
        if not isinstance(v, str):
            raise SsalInputError(where, f"{key}: expected text, got {v!r}")
        return v
    if t.startswith("dict[str, str]"):
        if not isinstance(v, Mapping):
            raise SsalInputError(where, f"{key}: expected a mapping")
        return {str(a): str(b) for a, b in v.items()}
    if t.startswith("dict[str, Any]"):
        if not isinstance(v, Mapping):
            raise SsalInputError(where, f"{key}: expected a mapping")
        return dict(v)
    return v


__all__ = ["YamlKind", "YAML_SUFFIXES", "MAX_YAML_BYTES", "shipped", "read_extending", "typed", "coerce", "values"]
