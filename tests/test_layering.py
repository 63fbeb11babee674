"""The architecture, checked: data -> augment -> models -> methods -> engine -> evaluation ->
experiments -> CLI; nothing upstream imports downstream (docs/architecture.md).

Every ``import`` of an ssal module inside ``src/ssal`` is read with ``ast`` (including imports
inside functions) and ranked by the layer of its top-level module. The back-arrows that exist
today are listed in :data:`KNOWN` (the configuration/registry issue removes them); a new one
fails this test, and so does a listed one that is gone (so the list only shrinks, knowingly).
"""

from __future__ import annotations

import ast
from pathlib import Path

import ssal

LAYERS = {
    # foundations, importable from anywhere
    "errors": 0, "skeleton": 0, "jointmatch": 0, "checkpoint": 0, "outputs": 0, "allocator": 0, "config": 0,
    "__version__": 0,
    "data": 1, "augment": 2, "models": 3, "methods": 4, "distributed": 4, "engine": 5, "checkpoint_fields": 5,
    "evaluation": 6, "api": 7, "export": 7, "pipeline": 7, "visualisation": 7,
    "experiments": 8, "cli": 9, "__main__": 9, "__init__": 9,
}

#: (importing module, imported module) pairs that point upstream today.
KNOWN = {
    ("ssal.engine", "ssal.evaluation.monitor"),
}


def _imports() -> list[tuple[str, str]]:
    root = Path(ssal.__file__).parent
    out = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root.parent).with_suffix("").parts
        module = ".".join(rel[:-1] if rel[-1] == "__init__" else rel)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                targets = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            out += [(module, t) for t in targets if t == "ssal" or t.startswith("ssal.")]
    return out


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS["__init__"] if len(parts) == 1 else LAYERS[parts[1]]


def test_every_top_level_module_has_a_layer():
    root = Path(ssal.__file__).parent
    names = {p.stem for p in root.glob("*.py")} | {p.name for p in root.iterdir() if (p / "__init__.py").is_file()}
    assert names <= set(LAYERS), sorted(names - set(LAYERS))


def test_nothing_upstream_imports_downstream():
    back = {(m, t) for m, t in _imports() if _layer(t) > _layer(m)}
    found = back
    assert found == KNOWN, f"new: {sorted(found - KNOWN)}; gone (update KNOWN): {sorted(KNOWN - found)}"
