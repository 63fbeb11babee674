"""Labels and structure from file names: ``dataset-1_{content}_{style}_{id}.bvh``.

A :class:`NameLabels` spec reads fields out of each file's name (without its extension) with a
template (``{field}`` stands for one or more characters, everything else is literal; fields
match as few characters as possible, the whole name must match) or a regular expression with
named groups (``(?P<style>[a-z-]+)``). One field is the label (``label_field``; by default
the first of ``label``, ``emotion``, ``style``, ``class`` the pattern has), others filter
(``where``: ``content=walk,walk-back`` keeps those values, ``content!=bow`` drops them), and
``rename`` maps raw values onto class names (``normal=neutral``).

Choices where a user could expect either: a ``.bvh`` whose name does not match the pattern is
an error (a typo in the pattern would otherwise silently drop files); ``where`` filters
apply before labelling; without an explicit class list the classes are the distinct renamed
values in sorted order; with one, a value outside it is an error naming the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import SsalInputError

LABEL_FIELD_DEFAULTS = ("label", "emotion", "style", "class")


def compile_name_pattern(pattern: str) -> re.Pattern[str]:
    """A regular expression for a template (``{field}``) or a regex with named groups."""
    if "(?P<" in pattern:
        try:
            rx = re.compile(pattern)
        except re.error as exc:
            raise SsalInputError("--labels-from-name", f"invalid regular expression ({exc})") from None
    else:
        parts = re.split(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", pattern)
        if len(parts) == 1:
            raise SsalInputError("--labels-from-name", f"pattern {pattern!r} has no {{field}}")
        out, seen = [], set()
        for k, part in enumerate(parts):
            if k % 2:
                if part in seen:
                    raise SsalInputError("--labels-from-name", f"field {{{part}}} appears twice")
                seen.add(part)
                out.append(f"(?P<{part}>.+?)")
            else:
                out.append(re.escape(part))
        rx = re.compile("".join(out))
    if not rx.groupindex:
        raise SsalInputError("--labels-from-name", f"pattern {pattern!r} names no field")
    return rx


def parse_where(items: Sequence[str] | str | None) -> dict[str, tuple[bool, frozenset[str]]]:
    """``["content=walk,run", "style!=old"]`` -> ``{field: (keep?, values)}``."""
    if items is None:
        return {}
    if isinstance(items, str):
        items = [items]
    out: dict[str, tuple[bool, frozenset[str]]] = {}
    for item in items:
        m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(!=|=)\s*(.+)", item)
        if not m:
            raise SsalInputError("--where", f"expected FIELD=v1,v2 or FIELD!=v1,v2, got {item!r}")
        values = frozenset(v.strip() for v in m.group(3).split(",") if v.strip())
        out[m.group(1)] = (m.group(2) == "=", values)
    return out


def parse_rename(items: Sequence[str] | str | None) -> dict[str, str]:
    """``"normal=neutral,tired=sad"`` (or a list of such) -> ``{raw: class}``."""
    if items is None:
        return {}
    if isinstance(items, str):
        items = [items]
    out: dict[str, str] = {}
    for item in items:
        for pair in item.split(","):
            if not pair.strip():
                continue
            raw, sep, new = pair.partition("=")
            if not sep or not raw.strip() or not new.strip():
                raise SsalInputError("--rename", f"expected RAW=CLASS, got {pair!r}")
            out[raw.strip()] = new.strip()
    return out


@dataclass
class NameLabels:
    """How to read labels (and filters) from file names; see the module docstring."""

    pattern: str
    label_field: str | None = None
    where: Mapping[str, tuple[bool, frozenset[str]]] = field(default_factory=dict)
    rename: Mapping[str, str] = field(default_factory=dict)
    classes: Sequence[str] | None = None

    def __post_init__(self) -> None:
        self.regex = compile_name_pattern(self.pattern)
        fields = list(self.regex.groupindex)
        if self.label_field is None:
            self.label_field = next((f for f in LABEL_FIELD_DEFAULTS if f in fields), None)
            if self.label_field is None:
                raise SsalInputError("--labels-from-name", f"which field is the label? the pattern has "
                                     f"{', '.join(fields)}; name one with --label-field")
        if self.label_field not in fields:
            raise SsalInputError("--label-field", f"{self.label_field!r} is not a field of the pattern "
                                 f"({', '.join(fields)})")
        unknown = [f for f in self.where if f not in fields]
        if unknown:
            raise SsalInputError("--where", f"unknown field(s) {', '.join(unknown)}; the pattern has {', '.join(fields)}")

    def fields(self, stem: str) -> dict[str, str] | None:
        """The fields of a file name without extension, or ``None`` if it does not match."""
        m = self.regex.fullmatch(stem)
        return None if m is None else {k: v for k, v in m.groupdict().items() if v is not None}

    def keeps(self, fields: Mapping[str, str]) -> bool:
        """Whether a file with these fields passes the ``where`` filters."""
        return all((fields.get(f) in values) == keep for f, (keep, values) in self.where.items())

    def raw_label(self, fields: Mapping[str, str]) -> str:
        """The renamed value of the label field."""
        raw = fields[str(self.label_field)]
        return self.rename.get(raw, raw)


def select_and_label(stems: Sequence[str], spec: NameLabels, where: str = "folder") -> tuple[list[int], list[str], list[str]]:
    """Apply ``spec`` to file names: ``(kept positions, label names of the kept, classes)``.

    Raises:
        SsalInputError: a name that does not match the pattern, no file left after the
            filters, a label outside an explicit class list.
    """
    kept: list[int] = []
    labels: list[str] = []
    for i, stem in enumerate(stems):
        f = spec.fields(stem)
        if f is None:
            raise SsalInputError(f"{where} [{stem}]", f"file name does not match the pattern {spec.pattern!r}")
        if spec.keeps(f):
            kept.append(i)
            labels.append(spec.raw_label(f))
    if not kept:
        raise SsalInputError(where, "no file is left after the --where filters")
    if spec.classes is not None:
        classes = [str(c) for c in spec.classes]
        bad = [(stems[i], lab) for i, lab in zip(kept, labels) if lab not in classes]
        if bad:
            raise SsalInputError(f"{where} [{bad[0][0]}]", f"label {bad[0][1]!r} is not one of the classes "
                                 f"{classes} (filter with --where or map it with --rename)")
    else:
        classes = sorted(set(labels))
    return kept, labels, classes


__all__ = ["NameLabels", "compile_name_pattern", "parse_where", "parse_rename", "select_and_label"]
