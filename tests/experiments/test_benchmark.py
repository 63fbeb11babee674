"""``ssal benchmark SPEC``: the shipped bandai-affect spec end to end on the real data (quick
schedule; skips without ../shared), resume, and refusals of bad input."""

from __future__ import annotations

import json

import pytest

from ssal.cli.main import main


@pytest.mark.slow
def test_bandai_affect_quick(require_shared, tmp_path, capsys):
    data = require_shared("bandai-namco")
    require_shared("bandai-namco", "dataset-2", "data")
    out = tmp_path / "bench"
    code = main(["benchmark", "bandai-affect", "--data", str(data), "--schedule", "quick", "--out", str(out),
                 "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0 and "| raw-pose |" in printed
    res = json.loads((out / "results.json").read_text())
    reps = res["representations"]
    assert set(reps) == {"raw-pose", "random-stgcn", "scratch-stgcn", "skeletonclr"}
    # 5 affects x 11 recordings of session d1s0; quick keeps the test folds walk and run + 3 validation folds
    assert res["data"]["recordings_per_class"] == {c: 11 for c in ("happy", "sad", "angry", "proud", "not-confident")}
    assert res["data"]["sessions"] == ["d1s0"] and "d1s0" not in res["data"]["pretraining"]["sessions"]
    parts = {f["name"]: f["part"] for f in res["data"]["folds"]}
    assert parts == {"all/walk": "test", "all/run": "test", "all/bye": "val", "all/walk-right": "val",
                     "all/dash": "val"}
    n_test = sum(f["test_recordings"] for f in res["data"]["folds"] if f["part"] == "test")
    for rep in reps.values():
        st = rep["test"]["logistic"]
        assert st["n"] == n_test and st["lo"] <= st["mean"] <= st["hi"]
        assert 0.0 <= st["lo"] and st["hi"] <= 1.0
        assert {"few1", "few2", "macro_f1"} <= set(rep["test"])
    vs = reps["skeletonclr"]["vs"]["test"]
    assert set(vs) == {"raw-pose", "random", "scratch"}
    for diffs in vs.values():
        d = diffs["logistic"]
        word = "beats" if d["lo"] > 0 else "loses" if d["hi"] < 0 else "ties"
        assert d["verdict"] == word
    # the epoch-0 snapshot is the random-init reference: same features, same scores
    first = res["curves"]["skeletonclr"][0]
    assert first["epoch"] == 0 and first["test"]["mean"] == reps["random-stgcn"]["test"]["logistic"]["mean"]
    report = (out / "report.md").read_text()
    assert "## Headline: test folds" in report and "**" in report
    assert (out / "plots" / "learning_curves.png").is_file()
    # no recording of the task was pretrained on
    pre = json.loads((out / "pretrain" / "skeletonclr" / "split.json").read_text())
    assert not any("_d1s0_" in g for g in json.dumps(pre))
    # resume reuses every stage and gives the same table
    assert main(["benchmark", "bandai-affect", "--data", str(data), "--schedule", "quick", "--out", str(out),
                 "--no-progress", "--resume"]) == 0
    assert "reusing" in capsys.readouterr().err
    again = json.loads((out / "results.json").read_text())
    assert again["representations"]["skeletonclr"]["test"] == reps["skeletonclr"]["test"]


def test_benchmark_bad_data_folder(tmp_path, capsys):
    assert main(["benchmark", "bandai-affect", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "data folder not found" in capsys.readouterr().err


def test_benchmark_unknown_spec_and_schedule(tmp_path, capsys):
    assert main(["benchmark", "bandai-nothing", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unknown benchmark 'bandai-nothing'" in err and "bandai-affect" in err
    assert main(["benchmark", "bandai-affect", "--data", str(tmp_path), "--schedule", "long",
                 "--out", str(tmp_path / "o2")]) == 2
    assert "no schedule 'long'" in capsys.readouterr().err
