"""The dataset a configuration's ``data`` section names: source, reading settings, grouping.

Every command that reads data goes through :func:`load_configured_dataset`, so a folder is read
the same way by ``ssal data info``, ``pretrain``, the protocols, ``predict`` and ``data convert``:
labels from file names (``labels_from_name``, ``label_field``, ``where``, ``rename``), clips
(``window``, ``stride``), BVH ``units`` and ``joint_map``, and the unit that splits keep whole
(``group_by``: the recording, the BVH capture session, or a field of the file names).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config.schema import DataConfig
from ..errors import SsalInputError, display_path
from .dataset import GaitDataset


def data_section(data: DataConfig | Mapping[str, Any]) -> DataConfig:
    """``data`` as a checked :class:`DataConfig` (a mapping is typed; schema defaults fill gaps)."""
    from ..config.resolve import typed_section

    return typed_section(DataConfig, data, None, "data.")


def name_labels(data: DataConfig) -> Any:
    """The :class:`~ssal.data.names.NameLabels` of the section, or ``None`` without a pattern."""
    if not data.labels_from_name:
        return None
    from .egait import resolve_label_map
    from .names import NameLabels, parse_rename, parse_where

    classes = resolve_label_map(data.label_map) if data.label_map is not None else None
    return NameLabels(data.labels_from_name, label_field=data.label_field, where=parse_where(data.where),
                      rename=parse_rename(data.rename), classes=classes)


def reading_options(data: DataConfig | Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :func:`ssal.data.io.load_dataset` for the section's reading settings
    (source, labels file, preprocessing and label names excepted)."""
    data = data_section(data)
    return {"units": data.units, "joint_map": data.joint_map, "name_labels": name_labels(data),
            "window": data.window, "stride": data.stride}


def load_configured_dataset(data: DataConfig | Mapping[str, Any], *, preprocess: Any = None,
                            source: str | None = None, layout: Any = None) -> GaitDataset:
    """The dataset named by a configuration's ``data`` section, grouped by ``group_by``.

    ``preprocess`` (a :class:`~ssal.data.preprocess.PreprocessConfig`) replaces the section's
    ``center`` (an encoder's stored preprocessing); ``source`` replaces ``data.source``;
    ``layout`` (a :class:`~ssal.skeleton.SkeletonLayout`, default E-Gait-16) is the one files
    are mapped onto.
    """
    from .io import load_dataset
    from .preprocess import PreprocessConfig

    data = data_section(data)
    source = data.source if source is None else source
    prep = preprocess or PreprocessConfig(center=data.center)
    if source == "builtin":
        from .synthetic import load_builtin

        ds = load_builtin(n=int(data.builtin_n), seed=int(data.builtin_seed), center=prep.center)
    else:
        extra = {"layout": layout} if layout is not None else {}
        ds = load_dataset(source, labels=data.labels, preprocess=prep, label_map=data.label_map,
                          **reading_options(data), **extra)
    return regroup(ds, data, source)


def recording_files(ds: GaitDataset) -> list[str]:
    """The file (recording) of every sequence: its name without a clip's ``@<start frame>``."""
    out = []
    for name in ds.names:
        head, sep, tail = name.rpartition("@")
        out.append(head if sep and tail.isdigit() else name)
    return out


def regroup(ds: GaitDataset, data: DataConfig, source: str) -> GaitDataset:
    """``ds`` with ``groups`` set by ``data.group_by``.

    ``recording`` keeps the clips of one file together (as read); a ``.ssal`` corpus keeps the
    grouping it was converted with unless another one is asked for (``None``: the stored one).
    """
    stored = ds.meta.get("group_by", "recording")
    by = data.group_by or stored
    ds.meta["group_by"] = by
    if by == stored:
        return ds
    where = display_path(source)
    files = recording_files(ds)
    if by == "recording":
        ds.groups = files
        return ds
    if by == "session":
        folder = Path(source)
        if not folder.is_dir() or str(source).lower().endswith(".ssal"):
            raise SsalInputError(where, "data.group_by 'session' needs a folder of BVH files (the session is "
                                        "read from each file's header)")
        from .bvh_header import session_of

        sessions = {f: session_of(folder / f) for f in sorted(set(files))}
        ds.groups = [sessions[f] for f in files]
        return ds
    spec = name_labels(data)
    fields = list(spec.regex.groupindex)
    if by not in fields:
        raise SsalInputError(where, f"data.group_by {by!r} is not recording, session or a field of the "
                                    f"name pattern ({', '.join(fields)})")
    groups = []
    for f in files:
        values = spec.fields(Path(f).stem) if f.lower().endswith(".bvh") else spec.fields(f)
        if values is None or by not in values:
            raise SsalInputError(f"{where} [{f}]", f"name does not match the pattern {spec.pattern!r}")
        groups.append(f"{by}={values[by]}")
    ds.groups = groups
    return ds


__all__ = ["data_section", "load_configured_dataset", "name_labels", "reading_options", "recording_files", "regroup"]
