"""A lab's own BVH folder, labelled by file names, through every command with ``--config`` and
no Python: data info, convert, pretrain, linear, semi and predict read it the same way, and
every split keeps a group (here: an actor) on one side."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from bvh_rig import NAMES, OFFSETS, PARENTS, rig_motion
from ssal.cli.main import main
from ssal.data.bvh import cut_windows, write_bvh

ACTORS = ("a1", "a2", "a3", "a4")
EMOTIONS = ("happy", "sad", "neutral")
FRAMES, WINDOW, STRIDE = 40, 16, 8

TINY_MODEL = """
train: {epochs: 1, batch_size: 16}
model:
  queue_size: 32
  encoder: {channels: [8, 16], strides: [1, 2]}
  augment: {general: {clip_len: 16}}
run: {knn_every: 1, progress: false}
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Path:
    """``mocap/{actor}_{emotion}_{take}.bvh`` (plus a calibration take the filter drops) and
    ``mocap.yaml`` naming it with its reading settings."""
    root = tmp_path_factory.mktemp("lab")
    folder = root / "mocap"
    folder.mkdir()
    for i, actor in enumerate(ACTORS):
        for j, emotion in enumerate(EMOTIONS):
            for take in (1, 2):
                motion = rig_motion(FRAMES)
                motion[:, 1] += 3.0 * j + i  # emotions (and actors) differ in height
                write_bvh(folder / f"{actor}_{emotion}_{take}.bvh", NAMES, PARENTS, OFFSETS, motion, 1 / 30)
        write_bvh(folder / f"{actor}_tpose_0.bvh", NAMES, PARENTS, OFFSETS, rig_motion(FRAMES), 1 / 30)
    (root / "mocap.yaml").write_text(
        f"data:\n  source: {folder}\n  labels_from_name: '{{actor}}_{{emotion}}_{{take}}'\n"
        f"  where: emotion!=tpose\n  window: {WINDOW}\n  stride: {STRIDE}\n  units: cm\n  group_by: actor\n"
        "  val_fraction: 0.25\n  test_fraction: 0.25\n" + TINY_MODEL)
    return root


def _cli(argv, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _actor(name: str) -> str:
    return name.split("_", 1)[0]


CLIPS = len(ACTORS) * len(EMOTIONS) * 2 * len(cut_windows(FRAMES, WINDOW, STRIDE))


def test_info_reads_the_config_as_the_flags_do(lab, capsys):
    rc, by_config, err = _cli(["data", "info", lab / "mocap", "--config", lab / "mocap.yaml"], capsys)
    assert rc == 0, err
    rc, by_flags, err = _cli(["data", "info", lab / "mocap", "--labels-from-name", "{actor}_{emotion}_{take}",
                              "--where", "emotion!=tpose", "--window", WINDOW, "--stride", STRIDE, "--units", "cm",
                              "--group-by", "actor"], capsys)
    assert rc == 0, err
    assert by_config == by_flags
    assert f"sequences: {CLIPS}" in by_config and "recordings: 24 (happy 8, neutral 8, sad 8)" in by_config
    assert "groups:    4 by actor" in by_config
    # a flag overrides the file: without the filter the T-poses are a fourth class
    rc, out, _ = _cli(["data", "info", lab / "mocap", "--config", lab / "mocap.yaml", "--set", "data.where=[]"],
                      capsys)
    assert rc == 0 and "tpose" in out


def test_pretrain_probe_and_predict_with_the_config_alone(lab, capsys):
    cfg = lab / "mocap.yaml"
    pre = lab / "pre"
    rc, _, err = _cli(["pretrain", "--method", "skeletonclr", "--config", cfg, "--out", pre], capsys)
    assert rc == 0, err
    split = json.loads((pre / "split.json").read_text())
    parts = split.get("parts", split)
    # the dataset is the clips of the 24 labelled recordings; each actor on one side only
    names = [f"{a}_{e}_{t}.bvh@{s}" for a in ACTORS for e in sorted(EMOTIONS) for t in (1, 2)
             for s in cut_windows(FRAMES, WINDOW, STRIDE)]
    names.sort()
    sides = {k: {_actor(names[i]) for i in parts[k]} for k in ("train", "val", "test")}
    assert [len(sides[k]) for k in ("train", "val", "test")] == [2, 1, 1]
    assert not (sides["train"] & sides["val"] or sides["train"] & sides["test"] or sides["val"] & sides["test"])

    lin = lab / "linear"
    rc, _, err = _cli(["linear", "--checkpoint", pre / "encoder.pt", "--out", lin, "--epochs", "2"], capsys)
    assert rc == 0, err
    entry = json.loads((lin / "results.json").read_text())["methods"]
    (result,) = entry.values()
    assert result["linear"]["n"] == len(parts["test"]) == CLIPS // 4  # the test actor's clips

    semi = lab / "semi"  # eval.* keys through --set (the flags --fractions / --seeds are shorthands)
    rc, _, err = _cli(["semi", "--checkpoint", pre / "encoder.pt", "--out", semi, "--set", "eval.finetune.epochs=1",
                       "--set", "eval.semi.fractions=[0.5]", "--set", "eval.semi.seeds=[0]"], capsys)
    assert rc == 0, err
    (entry,) = json.loads((semi / "results.json").read_text())["methods"].values()
    assert list(entry["semi"]) == ["0.5"] and len(entry["semi"]["0.5"]["runs"]) == 1
    rc, _, err = _cli(["semi", "--checkpoint", pre / "encoder.pt", "--out", lab / "semi-bad",
                       "--set", "eval.semi.fractions=[2]"], capsys)
    assert rc == 2 and "'eval.semi.fractions' must be above 0 and at most 1" in err

    out = lab / "pred.csv"
    rc, _, err = _cli(["predict", "--checkpoint", lin / "classifier.pt", lab / "mocap", "--config", cfg,
                       "--out", out], capsys)
    assert rc == 0, err
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == CLIPS and {r["emotion"] for r in rows} <= set(EMOTIONS)
    assert not any("tpose" in r["name"] for r in rows)  # the config's filter applies to predict too
    probs = np.array([[float(r[e]) for e in sorted(EMOTIONS)] for r in rows])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)


def test_convert_keeps_labels_classes_and_groups(lab, capsys):
    corpus = lab / "mocap.ssal"
    rc, out, err = _cli(["data", "convert", lab / "mocap", "--config", lab / "mocap.yaml", "--out", corpus], capsys)
    assert rc == 0, err
    assert f"wrote {CLIPS} sequences" in out and "in 4 groups (actor)" in out
    rc, from_corpus, _ = _cli(["data", "info", corpus], capsys)
    rc2, from_folder, _ = _cli(["data", "info", lab / "mocap", "--config", lab / "mocap.yaml"], capsys)
    assert rc == rc2 == 0
    drop = ("source:", "format:", "units:")  # provenance lines name the source
    assert [ln for ln in from_corpus.splitlines() if not ln.startswith(drop)] == \
           [ln for ln in from_folder.splitlines() if not ln.startswith(drop)]
    # pretraining on the corpus splits by its stored groups, as on the folder
    pre = lab / "pre-corpus"
    (lab / "tiny.yaml").write_text(TINY_MODEL + "data: {val_fraction: 0.25, test_fraction: 0.25}\n")
    rc, _, err = _cli(["pretrain", "--method", "skeletonclr", "--data", corpus, "--config", lab / "tiny.yaml",
                       "--out", pre], capsys)
    assert rc == 0, err
    split = json.loads((pre / "split.json").read_text())
    parts = split.get("parts", split)
    groups = json.loads((corpus / "meta.json").read_text())["groups"]
    sides = [{groups[i] for i in parts[k]} for k in ("train", "val", "test")]
    assert [len(p) for p in sides] == [2, 1, 1] and len(set.union(*sides)) == 4
    # converting onto the source folder itself is refused, nothing is lost
    rc, _, err = _cli(["data", "convert", corpus, "--out", corpus, "--overwrite"], capsys)
    assert rc == 2 and "the output is the input" in err and (corpus / "meta.json").is_file()


def test_reading_settings_are_checked_with_their_key(lab, capsys):
    rc, _, err = _cli(["data", "info", lab / "mocap", "--config", lab / "mocap.yaml", "--group-by", "mood"], capsys)
    assert rc == 2 and "data.group_by 'mood'" in err and "(actor, emotion, take)" in err
    rc, _, err = _cli(["data", "info", lab / "mocap", "--stride", "4"], capsys)
    assert rc == 2 and "'data.stride' needs 'data.window'" in err
    rc, _, err = _cli(["data", "info", lab / "mocap", "--set", "train.epochs=3"], capsys)
    assert rc == 2 and "reads only data.* settings" in err
