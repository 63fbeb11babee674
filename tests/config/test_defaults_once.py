"""Each default is written once: in the schema (``ssal.config.schema``) or a preset file.

Every function signature, keyword argument and annotated assignment in ``src/ssal`` is read with
``ast``; a parameter or keyword named like a schema setting whose literal value equals that
setting's default (``temperature=0.07``, ``label_map="egait"``, ``queue_size=1024``) repeats the
default, and a change of the schema would silently not reach that place. Such a repeat fails
this test unless it is listed in :data:`KNOWN` (places the configuration issue has not reached
yet; the list may only shrink: a listed repeat that is gone fails too).

Names every random or reporting helper takes with its own meaning (``seed=0`` of a numpy draw,
``progress=True`` of a loop, ``method``, ``source``) are not settings of a run and are left out.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import ssal
from ssal.config import schema

#: Parameter names that many helpers take in their own sense (module docstring).
GENERIC = {"seed", "progress", "method", "source", "name"}

#: ``(file relative to src/ssal, name)`` repeats that exist today (the list only shrinks).
KNOWN: set[tuple[str, str]] = set()


def _leaf_defaults(cls: type, prefix: str) -> dict[str, object]:
    out: dict[str, object] = {}
    obj = cls()
    for f in dataclasses.fields(cls):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out.update(_leaf_defaults(type(value), f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = value
    return out


def schema_defaults() -> dict[str, list[tuple[str, object]]]:
    """Setting name -> ``[(path, default)]`` over every section and variant of the schema."""
    paths: dict[str, object] = {}
    for cls, prefix in ((schema.Config, ""), (schema.CFFNConfig, "model.encoder."),
                        (schema.SSAConfig, "model.augment.strong."), (schema.ExtremeConfig, "model.augment.strong.")):
        paths.update(_leaf_defaults(cls, prefix))
    by_name: dict[str, list[tuple[str, object]]] = {}
    for path, value in paths.items():
        name = path.rsplit(".", 1)[-1]
        if value is not None and name not in GENERIC:
            by_name.setdefault(name, []).append((path, value))
    return by_name


def _named_literals(node: ast.AST) -> list[tuple[str, ast.expr]]:
    """``(name, value expression)`` of a signature's defaults, a call's keywords, an ``x: T = v``."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        a = node.args
        positional = a.posonlyargs + a.args
        pairs = [(arg.arg, d) for arg, d in zip(positional[len(positional) - len(a.defaults):], a.defaults)]
        return pairs + [(arg.arg, d) for arg, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
    if isinstance(node, ast.Call):
        return [(k.arg, k.value) for k in node.keywords if k.arg]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
        return [(node.target.id, node.value)]
    return []


def repeats() -> set[tuple[str, str, str]]:
    """``(file, name, schema path)`` of every literal that repeats a schema default."""
    root = Path(ssal.__file__).parent
    defaults = schema_defaults()
    found = set()
    for path in sorted(root.rglob("*.py")):
        if path == Path(schema.__file__):
            continue
        rel = path.relative_to(root).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for name, expr in _named_literals(node):
                try:
                    value = ast.literal_eval(expr)
                except ValueError:
                    continue
                for setting, default in defaults.get(name, []):
                    if type(value) is type(default) and value == default:
                        found.add((rel, name, setting))
    return found


#: Command-line flags that are shorthands for a setting: their default must come from the
#: schema (``default=RunConfig.device``) or be absent, never a literal of its own.
SHORTHANDS = {"--device": "run.device", "--seed": "seed", "--method": "method", "--arch": "method",
              "--n": "data.builtin_n", "--fractions": "eval.semi.fractions", "--seeds": "eval.semi.seeds",
              "--lr": "eval.finetune.lr", "--label-map": "data.label_map", "--units": "data.units",
              "--window": "data.window", "--stride": "data.stride", "--group-by": "data.group_by"}


def literal_flag_defaults(source: str) -> list[tuple[str, object]]:
    """``(flag, literal default)`` of every ``add_argument(flag, default=<literal>)`` of a
    shorthand flag in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument" and node.args):
            continue
        flag = node.args[0].value if isinstance(node.args[0], ast.Constant) else None
        for k in node.keywords:
            if flag in SHORTHANDS and k.arg == "default":
                try:
                    value = ast.literal_eval(k.value)
                except ValueError:
                    continue  # taken from the schema
                if value is not None:
                    found.append((flag, value))
    return found


def test_command_line_shorthands_take_the_schema_defaults():
    root = Path(ssal.__file__).parent / "cli"
    found = {p.name: literal_flag_defaults(p.read_text(encoding="utf-8")) for p in sorted(root.glob("*.py"))}
    assert {k: v for k, v in found.items() if v} == {}
    assert literal_flag_defaults('p.add_argument("--device", default="cpu")') == [("--device", "cpu")]


def test_the_scan_finds_a_repeat(tmp_path):
    # the reading itself: a signature and a call that repeat model.temperature are found
    tree = ast.parse("def f(temperature=0.07): g(temperature=0.07, k=3)")
    names = [(n, ast.literal_eval(e)) for node in ast.walk(tree) for n, e in _named_literals(node)]
    assert names.count(("temperature", 0.07)) == 2
    assert ("model.temperature", 0.07) in schema_defaults()["temperature"]


def test_no_function_repeats_a_schema_default():
    found = {(f, n) for f, n, _ in repeats()}
    new, gone = found - KNOWN, KNOWN - found
    details = sorted(r for r in repeats() if (r[0], r[1]) in new)
    assert not new, f"literals repeating a schema default (take it from the schema instead): {details}"
    assert not gone, f"gone (remove from KNOWN): {sorted(gone)}"
