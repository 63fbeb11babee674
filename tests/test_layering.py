"""The architecture, checked: data -> augment -> models -> methods -> training -> evaluation ->
inference -> experiments -> CLI; nothing upstream imports downstream, and no import cycle
(docs/architecture.md).

Every ``import`` of an ssal module inside ``src/ssal`` is read with ``ast`` (including imports
inside functions) by ``scripts/code_shape.py``, whose layer table is the one checked here and
by import-linter (pyproject.toml, run in ``.ci/run``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import ssal

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("code_shape", ROOT / "scripts" / "code_shape.py")
shape = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("code_shape", shape)
_spec.loader.exec_module(shape)

SRC = Path(ssal.__file__).parent


def test_every_top_level_module_has_a_layer():
    names = {p.stem for p in SRC.glob("*.py")} | {p.name for p in SRC.iterdir() if (p / "__init__.py").is_file()}
    assert names <= set(shape.LAYERS), sorted(names - set(shape.LAYERS))


def test_nothing_upstream_imports_downstream():
    assert shape.back_arrows(shape.imports(SRC)) == []


def test_no_import_cycle():
    assert shape.cycles(shape.imports(SRC), SRC) == []


def test_no_private_name_crosses_a_module():
    assert shape.private_imports(SRC) == []


def test_the_checks_find_what_they_look_for(tmp_path):
    # a tiny package with one back-arrow (data -> cli) and one cycle (a <-> b)
    pkg = tmp_path / "ssal"
    (pkg / "data").mkdir(parents=True)
    (pkg / "cli").mkdir()
    for d in (pkg, pkg / "data", pkg / "cli"):
        (d / "__init__.py").write_text("")
    (pkg / "data" / "a.py").write_text("def f():\n    from ..cli import b\n")
    (pkg / "cli" / "b.py").write_text("from ..data import a\n")
    (pkg / "cli" / "c.py").write_text("from . import b\nfrom .b import _hidden\n")
    edges = shape.imports(pkg)
    assert ("ssal.data.a", "ssal.cli.b") in shape.back_arrows(edges)
    assert shape.cycles(edges, pkg) == [["ssal.cli.b", "ssal.data.a"]]
    assert shape.private_imports(pkg) == [("ssal.cli.c", "_hidden")]
