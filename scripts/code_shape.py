#!/usr/bin/env python
"""The shape of the code, measured: biggest modules, longest functions, import cycles and
back-arrows between the layers of docs/architecture.md.

Every ``import`` of an ssal module inside ``src/ssal`` is read with ``ast`` (imports inside
functions included, as they run all the same; those under ``if TYPE_CHECKING:`` left out, as
they never run). A *back-arrow* is an import from a module to one
in a later layer of :data:`LAYERS`; an *import cycle* is a set of modules that reach each other
(a strongly connected component of the import graph, where importing from a package is an
edge to its ``__init__``, which imports its own modules). ``tests/test_layering.py``
checks the same figures (no back-arrow, no cycle); the closing notes of the configuration issue
quote this script's output before and after.

Usage::

    python scripts/code_shape.py [--top 10] [--json]
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "ssal"

#: Layer of each top-level module or package of ``ssal`` (docs/architecture.md): data flows
#: from lower to higher numbers, and nothing imports a higher layer. Layer 0 is the foundation
#: every layer may import.
LAYERS: dict[str, int] = {
    "errors": 0, "skeleton": 0, "jointmatch": 0, "checkpoint": 0, "outputs": 0, "config": 0, "__version__": 0,
    "data": 1, "augment": 2, "models": 3, "methods": 4,
    "training": 5, "evaluation": 6, "inference": 7, "visualisation": 7, "experiments": 8, "cli": 9,
    "__main__": 9, "__init__": 9,
}


def module_name(path: Path, root: Path = SRC) -> str:
    """``src/ssal/data/io.py`` -> ``ssal.data.io`` (a package's ``__init__`` is the package)."""
    rel = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(rel[:-1] if rel[-1] == "__init__" else rel)


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` (imports for the type
    checker only, never run)."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return out


def imports(root: Path = SRC) -> list[tuple[str, str]]:
    """``(importing module, imported module)`` for every ssal import in the package."""
    out = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                # ``from X import y``: the module X.y when y is one, else X (resolved in cycles())
                targets = [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            out += [(module, t) for t in targets if t == "ssal" or t.startswith("ssal.")]
    return out


def private_imports(root: Path = SRC) -> list[tuple[str, str]]:
    """``(importing module, name)`` for every ``from <ssal module> import _name``: a private name
    used outside its module (make it public where another module needs it)."""
    out = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            ours = isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] == "ssal")
            if ours:
                out += [(module, a.name) for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    return out


def layer(module: str) -> int:
    """The layer of a module (of its top-level module or package)."""
    parts = module.split(".")
    return LAYERS["__init__"] if len(parts) == 1 else LAYERS[parts[1]]


def back_arrows(edges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Imports that point to a later layer."""
    return sorted({(m, t) for m, t in edges if layer(t) > layer(m)})


def _known_modules(root: Path) -> set[str]:
    return {module_name(p, root) for p in root.rglob("*.py")}


def cycles(edges: list[tuple[str, str]], root: Path = SRC) -> list[list[str]]:
    """Sets of modules that import each other (Tarjan's strongly connected components, size > 1).

    An import of a name from a package (``from ..config import x``) points at the package's
    ``__init__``, whose own imports are edges like any other (module docstring).
    """
    known = _known_modules(root)
    graph: dict[str, set[str]] = {m: set() for m in known}
    for src, dst in edges:
        while dst not in known and "." in dst:
            dst = dst.rsplit(".", 1)[0]  # an imported name, not a module
        if dst in known and dst != src:
            graph[src].add(dst)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def module_sizes(root: Path = SRC) -> list[tuple[str, int]]:
    """``(module, lines)``, biggest first."""
    return sorted(((module_name(p, root), len(p.read_text(encoding="utf-8").splitlines()))
                   for p in root.rglob("*.py")), key=lambda x: -x[1])


def function_lengths(root: Path = SRC) -> list[tuple[str, int]]:
    """``(module:function, lines)`` of every function and method, longest first."""
    out = []
    for path in root.rglob("*.py"):
        module = module_name(path, root)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((f"{module}:{node.name}", (node.end_lineno or node.lineno) - node.lineno + 1))
    return sorted(out, key=lambda x: -x[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    edges = imports()
    report = {
        "modules": len(module_sizes()),
        "biggest_modules": module_sizes()[: args.top],
        "longest_functions": function_lengths()[: args.top],
        "import_cycles": cycles(edges),
        "back_arrows": back_arrows(edges),
        "private_imports": private_imports(),
    }
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"{report['modules']} modules")
    print("biggest modules:   " + ", ".join(f"{m} {n}" for m, n in report["biggest_modules"]))
    print("longest functions: " + ", ".join(f"{f} {n}" for f, n in report["longest_functions"]))
    print(f"import cycles: {len(report['import_cycles'])}")
    for comp in report["import_cycles"]:
        print("  " + " <-> ".join(comp))
    print(f"back-arrows: {len(report['back_arrows'])}")
    for m, t in report["back_arrows"]:
        print(f"  {m} -> {t}")
    print(f"private names imported across modules: {len(report['private_imports'])}")
    for m, name in report["private_imports"]:
        print(f"  {m} imports {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
