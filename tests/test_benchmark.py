"""The Bandai-Namco benchmark command on a small subset of the real data (skips without it)."""

from __future__ import annotations

import json

from ssal.cli.main import main


def test_benchmark_bandai_small_subset(require_shared, tmp_path, capsys):
    data = require_shared("bandai-namco")
    require_shared("bandai-namco", "dataset-2", "data")
    out = tmp_path / "bench"
    code = main(["benchmark", "bandai", "--data", str(data), "--out", str(out), "--quick", "--folds", "2",
                 "--limit", "3", "--methods", "skeletonclr", "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0 and "emotion:" in printed and "style:" in printed
    results = json.loads((out / "results.json").read_text())
    emo = results["emotion"]["methods"]
    assert set(emo) == {"skeletonclr", "supervised-stgcn", "random-stgcn"}
    for proto in ("knn", "linear", "finetune"):
        entry = emo["skeletonclr"][proto]
        assert len(entry["runs"]) == 2 and 0.0 <= entry["mean"] <= 1.0  # one run per fold
    assert set(emo["skeletonclr"]["semi"]) == {"0.2", "0.5"}
    assert set(results["style"]["methods"]["skeletonclr"]) >= {"knn", "linear", "semi"}
    # 28 emotion recordings, 7 per class; the pretraining corpus never holds one of them
    assert results["data"]["emotion"]["recordings_per_class"] == {"happy": 7, "sad": 7, "angry": 7, "neutral": 7}
    pre = json.loads((out / "pretrain" / "split.json").read_text())["groups"]
    emotion_recs = set()
    for f in range(2):
        groups = json.loads((out / "emotion" / f"fold{f}" / "split.json").read_text())["groups"]
        train, val, test = (set(groups[k]) for k in ("train", "val", "test"))
        assert not (train & test or val & test or train & val)
        emotion_recs |= train | val | test
    assert len(emotion_recs) == 28 and not emotion_recs & (set(pre["train"]) | set(pre["val"]))
    style = json.loads((out / "style" / "split.json").read_text())["groups"]
    assert not set(style["test"]) & set(pre["train"])
    report = (out / "report.md").read_text()
    assert "Emotion, 4 classes: mean ± std over 2 folds" in report and "(n=2)" in report
    assert (out / "plots" / "pretrain_loss.png").is_file()
    # a non-empty output directory is refused without --overwrite / --resume; --resume reuses
    # the pretrained encoders and the finished folds
    assert main(["benchmark", "bandai", "--data", str(data), "--out", str(out), "--quick"]) == 2
    capsys.readouterr()
    assert main(["benchmark", "bandai", "--data", str(data), "--out", str(out), "--quick", "--folds", "2",
                 "--limit", "3", "--methods", "skeletonclr", "--resume"]) == 0
    log = capsys.readouterr().err
    assert "reusing" in log and "[emotion fold 1] reusing" in log


def test_benchmark_bad_data_folder(tmp_path, capsys):
    assert main(["benchmark", "bandai", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "folder not found" in capsys.readouterr().err
