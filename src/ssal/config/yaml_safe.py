"""The one YAML reader of ssal, with budgets: config files, ``--set`` values, method presets,
schedule presets and benchmark specs (``ssal.experiments.typed_yaml``) and joint maps
(``ssal.jointmatch``) are all read here.

YAML can describe far more than it spells: a "billion laughs" document (anchors whose aliases
repeat other aliases) is a few hundred bytes that expand to ``9**10`` values in anything that
walks the result (OmegaConf, the schema checks, a deep copy), and sexagesimal numbers
(``1:2:3:...``) cost quadratic time to convert. Every document is therefore read within these
budgets, all checked while the document is composed, *before* any schema check, and each
broken budget is one :class:`~ssal.errors.SsalInputError` line naming the file (or the
``--set`` key):

* **size**: a file larger than :data:`MAX_YAML_BYTES` (1 MiB; a configuration, a spec or a
  joint map is a few kB) is refused from its size before it is read; a ``--set`` value too.
* **aliases**: at most :data:`MAX_ALIASES` (64) alias nodes (``*name``, merge keys ``<<: *name``
  included) per document. Anchors stay usable for a few repeated settings; benchmark specs and
  schedules allow none (``aliases=0``). An alias of a node that is still being read (a
  recursive structure) is refused whatever the budget.
* **expanded size**: at most :data:`MAX_NODES` (10,000) values once every alias is expanded,
  so the budget holds for everything that later walks the document, not only for the parser.
* **depth**: at most :data:`MAX_DEPTH` (64) levels of nested lists and mappings, also counted
  with aliases expanded (the later recursive walks stay far from Python's recursion limit).
* **numbers**: a scalar read as an int or a float has at most :data:`MAX_NUMBER_CHARS` (100)
  characters.

Time is linear in the text: a refused bomb stops at the first node past a budget.
"""

from __future__ import annotations

import os
import stat
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ..errors import SsalInputError, display_path, stat_input

#: Largest YAML file read (config files, specs, schedules, joint maps: a few kB each).
MAX_YAML_BYTES = 1 << 20
#: Most alias nodes (``*name``) in one document.
MAX_ALIASES = 64
#: Most values (scalars, lists, mappings) of one document with its aliases expanded.
MAX_NODES = 10_000
#: Most levels of nested lists and mappings (aliases expanded).
MAX_DEPTH = 64
#: Longest scalar converted to a number (longer ones: sexagesimal or 4000-digit integers).
MAX_NUMBER_CHARS = 100


class YamlBudgetError(yaml.YAMLError):
    """A document past one of the budgets of this module, while it is composed (turned into
    :class:`YamlRefused`)."""


class YamlRefused(SsalInputError):
    """A document or file past a budget (size, aliases, expanded size, depth, number length), as
    opposed to text that is not YAML at all."""


@lru_cache(maxsize=16)
def _loader(max_aliases: int, what: str) -> type[yaml.SafeLoader]:
    """A ``yaml.SafeLoader`` subclass counting aliases, expanded values and depth while composing."""

    class BudgetLoader(yaml.SafeLoader):
        def __init__(self, stream: Any) -> None:
            super().__init__(stream)
            self.aliases = 0
            self.parents: list[Any] = []     # the collections being composed, outermost first
            self.size: dict[int, int] = {}   # id(node) -> values with aliases expanded
            self.height: dict[int, int] = {}  # id(node) -> levels with aliases expanded

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                self.aliases += 1
                if self.aliases > max_aliases:
                    if max_aliases == 0:
                        raise YamlBudgetError(f"aliases are not allowed in a {what} (*{event.anchor})")
                    raise YamlBudgetError(f"more than {max_aliases} YAML aliases (*name) in one document "
                                          f"(ssal.config.yaml_safe.MAX_ALIASES)")
                target = self.anchors.get(event.anchor)
                if any(target is p for p in (*self.parents, parent)):
                    raise YamlBudgetError(f"recursive YAML alias *{event.anchor}")
                node = super().compose_node(parent, index)
                if len(self.parents) + self.height.get(id(node), 0) > MAX_DEPTH:
                    raise YamlBudgetError(f"nested more than {MAX_DEPTH} levels with aliases expanded "
                                          f"(ssal.config.yaml_safe.MAX_DEPTH)")
                return node
            if len(self.parents) >= MAX_DEPTH:
                raise YamlBudgetError(f"nested more than {MAX_DEPTH} levels (ssal.config.yaml_safe.MAX_DEPTH)")
            self.parents.append(parent)
            try:
                node = super().compose_node(parent, index)
            finally:
                self.parents.pop()
            self._measure(node)
            return node

        def _measure(self, node: Any) -> None:
            if isinstance(node, yaml.ScalarNode):
                self.size[id(node)], self.height[id(node)] = 1, 0
                return
            if isinstance(node, yaml.MappingNode):
                items = [n for pair in node.value for n in pair]
            else:
                items = list(node.value)
            size = 1 + sum(self.size.get(id(n), 1) for n in items)
            height = 1 + max((self.height.get(id(n), 0) for n in items), default=0)
            if size > MAX_NODES:
                raise YamlBudgetError(f"more than {MAX_NODES} values with aliases expanded "
                                      f"(ssal.config.yaml_safe.MAX_NODES)")
            if height > MAX_DEPTH:
                raise YamlBudgetError(f"nested more than {MAX_DEPTH} levels with aliases expanded "
                                      f"(ssal.config.yaml_safe.MAX_DEPTH)")
            self.size[id(node)], self.height[id(node)] = size, height

        def _number(self, node: Any, convert: Any) -> Any:
            if len(str(node.value)) > MAX_NUMBER_CHARS:
                raise YamlBudgetError(f"a number of more than {MAX_NUMBER_CHARS} characters "
                                      f"({str(node.value)[:20]}...)")
            return convert(self, node)

        def construct_budget_int(self, node: Any) -> Any:
            return self._number(node, yaml.SafeLoader.construct_yaml_int)

        def construct_budget_float(self, node: Any) -> Any:
            return self._number(node, yaml.SafeLoader.construct_yaml_float)

    BudgetLoader.add_constructor("tag:yaml.org,2002:int", BudgetLoader.construct_budget_int)
    BudgetLoader.add_constructor("tag:yaml.org,2002:float", BudgetLoader.construct_budget_float)
    return BudgetLoader


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def load_text(text: str, where: str | None, *, aliases: int = MAX_ALIASES, what: str = "YAML document",
              invalid: str = "not valid YAML") -> Any:
    """``text`` read as YAML within the budgets of this module (``aliases``: the alias budget).

    Raises:
        SsalInputError: ``where``: a broken budget, or ``invalid (first line of the parser's message)``.
    """
    if len(text) > MAX_YAML_BYTES:
        raise YamlRefused(where, f"{what} of {len(text)} characters is larger than the limit of "
                                    f"{MAX_YAML_BYTES} (ssal.config.yaml_safe.MAX_YAML_BYTES)")
    try:
        return yaml.load(text, Loader=_loader(aliases, what))  # noqa: S506 - a SafeLoader subclass
    except YamlBudgetError as exc:
        raise YamlRefused(where, f"{what} refused: {exc}") from None
    except RecursionError:
        raise YamlRefused(where, f"{what} refused: nested too deeply") from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        raise SsalInputError(where, f"{invalid} ({_first_line(exc)})") from None


def read_text(path: str | os.PathLike[str], where: str | None = None, *, what: str = "YAML file",
              limit: int = MAX_YAML_BYTES) -> str:
    """The text of a small YAML file: a regular file of at most ``limit`` bytes (checked from its
    size before anything is read), UTF-8 (a byte-order mark is dropped)."""
    p = Path(path)
    where = where if where is not None else display_path(p)
    st = stat_input(p, where)
    if not stat.S_ISREG(st.st_mode):
        raise SsalInputError(where, f"{what} is not a regular file")
    if st.st_size > limit:
        raise YamlRefused(where, f"{what} of {st.st_size} bytes is larger than the limit of {limit} bytes "
                                    f"(ssal.config.yaml_safe.MAX_YAML_BYTES)")
    try:
        with open(p, "rb") as fh:
            raw = fh.read(limit + 1)
    except OSError as exc:
        raise SsalInputError(where, f"cannot read the {what} ({exc.strerror or _first_line(exc)})") from None
    if len(raw) > limit:  # grew since the stat
        raise YamlRefused(where, f"{what} is larger than the limit of {limit} bytes "
                                    f"(ssal.config.yaml_safe.MAX_YAML_BYTES)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SsalInputError(where, f"{what} is not UTF-8 text ({_first_line(exc)})") from None


def load_file(path: str | os.PathLike[str], where: str | None = None, *, aliases: int = MAX_ALIASES,
              what: str = "YAML file", invalid: str = "not valid YAML") -> Any:
    """The YAML document of a small file (:func:`read_text`, then :func:`load_text`)."""
    where = where if where is not None else display_path(Path(path))
    return load_text(read_text(path, where, what=what), where, aliases=aliases, what=what, invalid=invalid)


__all__ = ["MAX_YAML_BYTES", "MAX_ALIASES", "MAX_NODES", "MAX_DEPTH", "MAX_NUMBER_CHARS", "YamlBudgetError", "YamlRefused",
           "load_text", "read_text", "load_file"]
