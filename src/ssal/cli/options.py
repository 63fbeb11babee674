"""Options shared by the commands: ``--config``/``--set``, ``--device`` and the data options of
every command that reads data, as shorthands for ``data.*`` keys.

``--data X`` is ``--set data.source=X``, ``--labels-from-name P`` is ``--set
data.labels_from_name=P``, and so on (:data:`DATA_FLAGS`); a ``--config`` file's ``data:``
section gives the same settings. Priority: flag > ``--set`` > ``--config`` > the base (a
checkpoint's data section, or the schema's defaults).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from ..errors import SsalInputError

LABEL_MAP_HELP = ("names of the label values 0, 1, ...: egait (default for numeric labels: happy, angry, sad, "
                  "neutral), step (angry, neutral, happy, sad) or comma-separated names")

#: Command-line flag (argparse dest) -> key of the ``data`` section.
DATA_FLAGS: dict[str, str] = {
    "data": "source", "labels": "labels", "label_map": "label_map", "labels_from_name": "labels_from_name",
    "label_field": "label_field", "where": "where", "rename": "rename", "window": "window", "stride": "stride",
    "units": "units", "joint_map": "joint_map", "group_by": "group_by",
}


def device_name(name: str) -> str:
    """``--device``: ``auto`` (CUDA when present, else the CPU: ``run.device``'s rule), ``cpu``,
    ``cuda``, ``cuda:1`` ... as the device it names.

    A name this machine cannot run (``meta``, ``cuda:99`` on a machine with fewer GPUs, a typo)
    is kept as given here and refused by :func:`check_device_flag` when the command starts, so
    the refusal is one ``error: --device: ...`` line (argparse would print its usage too)."""
    from ..errors import SsalInputError
    from ..training.engine import resolve_device

    try:
        return str(resolve_device(name, "--device"))
    except SsalInputError:
        return name


def check_device_flag(args: argparse.Namespace) -> None:
    """Refuse a ``--device`` this machine lacks (:func:`ssal.training.engine.resolve_device`):
    one line naming ``--device``. Run by :func:`settings_layers`, so by every command that reads
    settings, before it reads data; the loaders check the device again."""
    name = getattr(args, "device", None)
    if name is not None:
        from ..training.engine import resolve_device

        resolve_device(name, "--device")


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device`` with the default of ``run.device`` (``auto``)."""
    from ..config.schema import RunConfig

    parser.add_argument("--device", default=RunConfig.device, type=device_name,
                        help=f"auto (default: CUDA when present, else the CPU), cpu, cuda, cuda:1 ... "
                             f"(run.device: {RunConfig.device})")


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config`` and ``--set`` (a YAML file of settings and single overrides)."""
    parser.add_argument("--config", metavar="YAML", help="YAML file of settings (strict keys)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one setting, e.g. --set data.window=60 (repeatable)")


def add_data_arguments(parser: argparse.ArgumentParser, *, source: bool = True, source_help: str | None = None,
                       labels: bool = True) -> None:
    """The data flags: ``--data`` (unless ``source`` is false), labels and the reading settings."""
    if source:
        parser.add_argument("--data", help=source_help or "'builtin' or a dataset path (E-Gait .h5, BVH folder, "
                                                          ".npz, .ssal); same as --set data.source=...")
    if labels:
        parser.add_argument("--labels", help="labels file beside the data (data.labels)")
        parser.add_argument("--label-map", help=LABEL_MAP_HELP + " (data.label_map)")
    g = parser.add_argument_group("reading a folder (shorthands for data.* settings; docs/data.md)")
    g.add_argument("--labels-from-name", metavar="PATTERN", help="read labels from file names, e.g. "
                   "'{actor}_{emotion}_{take}' (or a regex with (?P<field>...) groups) (data.labels_from_name)")
    g.add_argument("--label-field", help="the pattern field holding the label (default: the first of label, "
                   "emotion, style, class) (data.label_field)")
    g.add_argument("--where", action="append", metavar="FIELD=V1,V2", help="keep files whose field has one of "
                   "the values (FIELD!=... drops them); repeatable (data.where)")
    g.add_argument("--rename", metavar="RAW=CLASS,...", help="map raw label values onto class names, e.g. "
                   "normal=neutral (data.rename)")
    g.add_argument("--window", type=int, help="cut each recording into clips of this many frames (at 30 fps); "
                   "default: one sequence per file (data.window)")
    g.add_argument("--stride", type=int, help="frames between clip starts (default: half the window) (data.stride)")
    g.add_argument("--units", help="length units of BVH files: auto (default: from the skeleton's height), m, "
                   "cm, mm, in, cmu or metres per unit (data.units)")
    g.add_argument("--joint-map", metavar="YAML", help="joint map 'target joint: source joint name' for rigs the "
                   "rule-based matching cannot place (data.joint_map)")
    g.add_argument("--group-by", help="what splits keep together: recording (default; a .ssal corpus: its "
                   "stored grouping), session (BVH capture session) or a field of the name pattern, e.g. actor "
                   "(data.group_by)")


def data_flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The ``data`` keys the command line's data flags set (flags not given are absent)."""
    out: dict[str, Any] = {}
    for dest, key in DATA_FLAGS.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        if key == "units":
            try:
                value = float(value)
            except ValueError:
                pass
        out[key] = value
    return out


def override_layers(args: argparse.Namespace) -> list[tuple[dict[str, Any], str | None]]:
    """``--set`` and the data flags, lowest priority first (the layers above a ``--config`` file)."""
    from ..config import parse_overrides

    layers: list[tuple[dict[str, Any], str | None]] = []
    if getattr(args, "overrides", None):
        layers.append((parse_overrides(args.overrides), None))
    flags = data_flag_values(args)
    if flags:
        layers.append(({"data": flags}, None))
    return layers


def settings_layers(args: argparse.Namespace) -> list[tuple[dict[str, Any], str | None]]:
    """The command line's settings, lowest priority first: ``--config`` file, ``--set``, flags
    (whole configurations; ``(values, where)`` as :func:`ssal.config.merge_typed` takes them).

    Read once per command line (kept on ``args``): the commands ask for several sections."""
    from pathlib import Path

    from ..config import read_yaml
    from ..errors import display_path

    cached = getattr(args, "_settings_layers", None)
    if cached is not None:
        return cached
    check_device_flag(args)
    layers: list[tuple[dict[str, Any], str | None]] = []
    if getattr(args, "config", None):
        layers.append((read_yaml(args.config), display_path(Path(args.config))))
    layers += override_layers(args)
    args._settings_layers = layers
    return layers


def section_layers(args: argparse.Namespace, section: str,
                   accepted: tuple[str, ...] = ("data",)) -> list[tuple[dict[str, Any], str | None]]:
    """One section's values given on the command line (``--config``, ``--set``, flags), lowest
    priority first. A ``--set`` outside ``accepted`` is an error (the command reads only those
    sections); a ``--config`` file may hold other sections (they are for other commands)."""
    out: list[tuple[dict[str, Any], str | None]] = []
    for values, where in settings_layers(args):
        other = sorted(k for k in values if k not in accepted)
        if other and where is None:
            keys = ", ".join(f"{a}.*" for a in accepted)
            raise SsalInputError("--set", f"this command reads only {keys} settings, got {other[0]}.*")
        part = values.get(section)
        if part is None:
            continue
        if not isinstance(part, Mapping):
            raise SsalInputError(where, f"settings {section} must be a mapping, got {type(part).__name__}")
        out.append((dict(part), where))
    return out


def data_config(args: argparse.Namespace, base: Mapping[str, Any] | None = None, *, source: str | None = None,
                accepted: tuple[str, ...] = ("data",)) -> Any:
    """The typed ``data`` section for this command line on top of ``base`` (a data section).

    ``source`` (a positional input) replaces ``data.source``; ``accepted``: the sections the
    command reads (:func:`section_layers`).
    """
    from ..config import DataConfig, merge_typed

    layers: list[tuple[Mapping[str, Any], str | None]] = [(dict(base or {}), None)]
    layers += section_layers(args, "data", accepted)
    if source is not None:
        layers.append(({"source": source}, None))
    return merge_typed(DataConfig, layers, "data.")


__all__ = ["DATA_FLAGS", "LABEL_MAP_HELP", "add_data_arguments", "add_device_argument", "check_device_flag",
           "device_name", "add_settings_arguments", "data_config", "data_flag_values", "section_layers",
           "settings_layers"]
