"""Labels from file names, recordings cut into clips, and splits that keep recordings whole."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bvh_rig import NAMES, OFFSETS, PARENTS, rig_motion
from ssal.cli.main import main
from ssal.data.bvh import cut_windows, read_bvh_folder, write_bvh
from ssal.data.io import load_dataset
from ssal.data.names import NameLabels, parse_rename, parse_where, select_and_label
from ssal.data.splits import kfold, label_fraction, save_split, stratified_split
from ssal.errors import SsalInputError

PATTERN = "dataset-1_{content}_{style}_{id}"


def test_template_fields_and_filters():
    spec = NameLabels(PATTERN, where=parse_where(["content=walk,walk-back", "style!=proud"]),
                      rename=parse_rename("normal=neutral"))
    assert spec.label_field == "style"
    f = spec.fields("dataset-1_walk-back_not-confident_001")
    assert f == {"content": "walk-back", "style": "not-confident", "id": "001"}
    assert spec.keeps(f) and spec.raw_label(f) == "not-confident"
    assert not spec.keeps(spec.fields("dataset-1_bow_happy_001"))
    assert not spec.keeps(spec.fields("dataset-1_walk_proud_002"))
    assert spec.raw_label(spec.fields("dataset-1_walk_normal_002")) == "neutral"
    assert spec.fields("other_file") is None


def test_regex_pattern_and_errors():
    spec = NameLabels(r"(?P<subject>s\d+)_(?P<emotion>[a-z]+)_take\d+")
    assert spec.label_field == "emotion" and spec.fields("s01_sad_take3") == {"subject": "s01", "emotion": "sad"}
    with pytest.raises(SsalInputError, match="label-field"):
        NameLabels("x_{a}_{b}")
    with pytest.raises(SsalInputError, match="unknown field"):
        NameLabels(PATTERN, where=parse_where("actor=a"))
    with pytest.raises(SsalInputError, match="FIELD=v1"):
        parse_where("content")
    kept, labels, classes = select_and_label(["dataset-1_walk_sad_001", "dataset-1_run_happy_001"], NameLabels(PATTERN))
    assert kept == [0, 1] and labels == ["sad", "happy"] and classes == ["happy", "sad"]
    with pytest.raises(SsalInputError, match="does not match"):
        select_and_label(["dataset-1_walk_sad_001", "notes"], NameLabels(PATTERN))
    with pytest.raises(SsalInputError, match="not one of the classes"):
        select_and_label(["dataset-1_walk_proud_001"], NameLabels(PATTERN, classes=["happy", "sad"]))


def test_cut_windows():
    assert cut_windows(10, 60, 30) == [0]
    assert cut_windows(60, 60, 30) == [0]
    assert cut_windows(100, 60, 30) == [0, 30, 40]  # the last clip ends at the last frame
    assert cut_windows(120, 60, 30) == [0, 30, 60]
    with pytest.raises(SsalInputError):
        cut_windows(100, 60, 0)


def _folder(tmp_path, lengths: dict[str, int]):
    for name, frames in lengths.items():
        write_bvh(tmp_path / f"{name}.bvh", NAMES, PARENTS, OFFSETS, rig_motion(frames), 1 / 30)
    return tmp_path


RECORDINGS = {
    "dataset-1_walk_happy_001": 50, "dataset-1_walk_happy_002": 20, "dataset-1_run_happy_001": 30,
    "dataset-1_walk_sad_001": 45, "dataset-1_walk_sad_002": 12, "dataset-1_run_sad_001": 33,
    "dataset-1_walk_normal_001": 40, "dataset-1_run_normal_001": 26, "dataset-1_walk_normal_002": 16,
    "dataset-1_bow_happy_001": 30,
}


def test_folder_labels_from_names_in_clips(tmp_path):
    folder = _folder(tmp_path, RECORDINGS)
    spec = NameLabels(PATTERN, where=parse_where("content=walk,run"), rename=parse_rename("normal=neutral"),
                      classes=["happy", "sad", "neutral"])
    ds = read_bvh_folder(folder, name_labels=spec, window=16, stride=8)
    assert ds.num_frames == 16 and ds.groups is not None
    assert "dataset-1_bow_happy_001.bvh" not in ds.groups  # filtered by content
    expected = {f"{n}.bvh": len(cut_windows(t, 16, 8)) for n, t in RECORDINGS.items() if "_bow_" not in n}
    assert {g: ds.groups.count(g) for g in set(ds.groups)} == expected
    for name, group, label in zip(ds.names, ds.groups, ds.y):
        assert name.startswith(group + "@")
        assert ds.classes[label] == {"normal": "neutral"}.get(group.split("_")[2], group.split("_")[2])
    # the same through load_dataset; a CSV and name labels are exclusive
    ds2 = load_dataset(folder, name_labels=spec, window=16, stride=8)
    assert ds2.names == ds.names and np.array_equal(ds2.y, ds.y)
    with pytest.raises(SsalInputError, match="not both"):
        read_bvh_folder(folder, tmp_path / "labels.csv", name_labels=spec)


def test_clips_of_one_recording_never_straddle_a_split(tmp_path):
    folder = _folder(tmp_path, RECORDINGS)
    ds = read_bvh_folder(folder, name_labels=NameLabels(PATTERN, where=parse_where("content=walk,run")),
                         window=10, stride=5)
    groups = np.asarray(ds.groups)

    def recs(idx):
        return set(groups[idx])

    for seed in range(5):
        split = stratified_split(ds.y, val=0.2, test=0.3, seed=seed, groups=ds.groups)
        parts = [recs(split[k]) for k in ("train", "val", "test")]
        assert sum(len(p) for p in parts) == len(set(ds.groups))
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert sorted(np.concatenate(list(split.values()))) == list(range(len(ds)))
        folds = kfold(ds.y, k=3, seed=seed, groups=ds.groups)
        tests = [recs(te) for _, te in folds]
        for tr, te in folds:
            assert not recs(tr) & recs(te) and len(tr) + len(te) == len(ds)
        assert set.union(*tests) == set(ds.groups) and sum(len(t) for t in tests) == len(set(ds.groups))
        picked = label_fraction(ds.y, 0.3, seed=seed, groups=ds.groups)
        chosen = recs(picked)
        # whole recordings: every clip of a chosen recording is in, one recording per class
        assert set(picked) == set(np.flatnonzero(np.isin(groups, list(chosen))))
        assert len(chosen) == ds.num_classes
    path = save_split(split, tmp_path / "split.json", groups=ds.groups)
    doc = json.loads(path.read_text())
    assert set(doc["groups"]) == {"train", "val", "test"}
    assert set(doc["groups"]["test"]) == recs(split["test"])
    with pytest.raises(SsalInputError, match="labelled recordings"):
        kfold(ds.y, k=10, seed=0, groups=ds.groups)  # 9 recordings
    # Groups holding several labels (actors, sessions) are drawn whole, without strata.
    y = np.tile([0, 1, 2, 0], 6)  # every actor has clips of three classes
    actors = np.repeat([f"actor{i}" for i in range(6)], 4)
    for seed in range(4):
        split = stratified_split(y, val=1 / 6, test=1 / 6, seed=seed, groups=actors)
        sides = [set(actors[split[k]]) for k in ("train", "val", "test")]
        assert [len(p) for p in sides] == [4, 1, 1] and not (sides[0] & sides[1] or sides[0] & sides[2])
        folds = kfold(y, k=3, seed=seed, groups=actors)
        assert all(not set(actors[tr]) & set(actors[te]) for tr, te in folds)
        assert sorted(np.concatenate([te for _, te in folds])) == list(range(len(y)))
        # inside a training part the labelled examples are drawn per index
        assert np.array_equal(label_fraction(y, 0.25, seed=seed, groups=actors), label_fraction(y, 0.25, seed=seed))


def test_cli_info_prints_class_counts_of_recordings(tmp_path, capsys):
    folder = _folder(tmp_path, RECORDINGS)
    code = main(["data", "info", str(folder), "--labels-from-name", PATTERN, "--where", "content=walk,run",
                 "--rename", "normal=neutral", "--label-map", "happy,sad,neutral", "--window", "16"])
    out = capsys.readouterr().out
    assert code == 0
    assert "recordings: 9 (happy 3, sad 3, neutral 3)" in out and "every 8" in out
    assert main(["data", "info", str(folder), "--where", "content=walk"]) == 2
    assert "'data.where' needs 'data.labels_from_name'" in capsys.readouterr().err


def test_cli_info_on_real_bandai_locomotion(require_shared, capsys):
    folder = require_shared("bandai-namco", "dataset-1", "data")
    code = main(["data", "info", str(folder), "--labels-from-name", PATTERN,
                 "--where", "content=walk,walk-back,walk-left,walk-right,run,dash",
                 "--where", "style=happy,sad,angry,normal", "--rename", "normal=neutral"])
    out = capsys.readouterr().out
    assert code == 0 and "sequences: 28" in out
    for cls in ("angry", "happy", "neutral", "sad"):
        assert f"  {cls:<12}      7" in out
